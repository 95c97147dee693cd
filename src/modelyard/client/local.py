"""The embedded backend: the SDK calling the services in this process."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa

from modelyard.artifacts.store import iter_files
from modelyard.bootstrap import Services
from modelyard.catalog.packages import package_directory
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.endpoints import Endpoint, Revision, batching_from, requests_from
from modelyard.domain.identity import DEFAULT_WORKSPACE, check_workspace_name
from modelyard.domain.models import Inventory, ModelVersion, RegisteredModel
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage
from modelyard.domain.secrets import SecretRecord
from modelyard.errors import InvalidInput
from modelyard.governance.cards import model_card
from modelyard.governance.lineage import LineageGraph
from modelyard.serving.predictlog import LabelResult
from modelyard.serving.retention import erase_subject, prune_endpoint
from modelyard.tracking.environment import current_user
from modelyard.tracking.runs import PACKAGE_PATH, run_artifact_key


class LocalBackend:
    """``Backend`` over in-process services (SQLite or PostgreSQL, local or fsspec files)."""

    def __init__(self, services: Services, *, workspace: str | None = None) -> None:
        self.services = services
        self.location = f"{services.db.describe()} + {services.artifacts.root}"
        self._tracking = services.tracking
        self._catalog = services.catalog
        # embedded mode acts as the OS user, who owns the store: without a workspace it
        # lists every workspace's resources and creates in ``default``
        self.workspace = workspace
        self._checked_workspace = workspace is None

    @property
    def _home(self) -> str:
        """The workspace new resources go to (it must exist)."""
        if not self._checked_workspace:
            with self.services.db.read() as conn:
                self.services.workspaces.require(conn, check_workspace_name(self.workspace or ""))
            self._checked_workspace = True
        return self.workspace or DEFAULT_WORKSPACE

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        created = self._tracking.create_experiment(name, description, workspace=self._home)
        self._audit("create experiment", f"experiments/{name}", after={"id": created.id})
        return created

    def get_experiment(self, name: str) -> Experiment:
        return self._tracking.get_experiment(name)

    def list_experiments(self) -> list[Experiment]:
        return self._tracking.list_experiments(self.workspace)

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        environment: Environment | None,
        user: str,
    ) -> Run:
        run = self._tracking.create_run(
            experiment,
            name=name,
            params=params,
            tags=tags,
            environment=environment,
            user=user,
            workspace=self._home,
        )
        self._audit(
            "create run",
            f"runs/{run.id}",
            after={"experiment": experiment, "params": sorted(params), "tags": sorted(tags)},
        )
        return run

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricPoint] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self._tracking.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        # what was written, never the values: keys and how many metric points
        written: dict[str, Any] = {"points": len(metrics)}
        if metrics:
            written["metrics"] = sorted({point.key for point in metrics})
        if params:
            written["params"] = sorted(params)
        if tags:
            written["tags"] = sorted(tags)
        self._audit("log batch", f"runs/{run_id}", after=written)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> Run:
        finished = self._tracking.finish_run(run_id, status, error)
        self._audit("finish run", f"runs/{run_id}", after={"status": finished.status.value})
        return finished

    def get_run(self, run_id: str) -> Run:
        return self._tracking.get_run(run_id)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return self._tracking.metric_history(run_id, key)

    def get_environment(self, environment_id: str) -> Environment:
        return self._tracking.get_environment(environment_id)

    def search_runs(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
        max_results: int,
        cursor: str | None,
    ) -> RunPage:
        ids = self._experiment_ids(experiments)
        return self.services.queries.search(ids, filter, order_by, max_results, cursor)

    def runs_frame(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
    ) -> pd.DataFrame:
        return self.services.queries.frame(self._experiment_ids(experiments), filter, order_by)

    def _experiment_ids(self, experiments: Sequence[str] | None) -> list[int] | None:
        return self._tracking.experiment_ids(experiments, self.workspace)

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        artifact = self._tracking.log_artifact(run_id, path, source)
        self._audit(
            "log artifact",
            f"runs/{run_id}/artifacts/{path}",
            after={"size": artifact.size, "sha256": artifact.sha256},
        )
        return artifact

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return self._tracking.list_artifacts(run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        with self._tracking.open_artifact(run_id, path) as handle:
            return handle.read()

    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        role: str,
        fingerprint: str,
        row_count: int,
        columns: list[Column],
        uri: str | None,
        content: BinaryIO | None,
    ) -> Dataset:
        dataset = self.services.datasets.log_dataset(
            run_id,
            name=name,
            role=role,
            fingerprint=fingerprint,
            row_count=row_count,
            columns=columns,
            uri=uri,
            content=content,
        )
        self._audit(
            "log dataset",
            f"runs/{run_id}/datasets/{name}",
            after={
                "role": role,
                "fingerprint": fingerprint,
                "rows": row_count,
                "stored": dataset.stored,
            },
        )
        return dataset

    def run_datasets(self, run_id: str) -> list[DatasetUse]:
        return self.services.datasets.run_datasets(run_id)

    def upload_package(self, directory: Path, run_id: str | None) -> str:
        if run_id is not None:
            for relative, path in iter_files(directory):
                with path.open("rb") as handle:
                    self._tracking.log_artifact(run_id, f"{PACKAGE_PATH}/{relative}", handle)
            return run_artifact_key(run_id, PACKAGE_PATH)
        prefix = f"uploads/{uuid.uuid4().hex}"
        for relative, path in iter_files(directory):
            with path.open("rb") as handle:
                self.services.artifacts.put(f"{prefix}/{relative}", handle)
        return prefix

    def fetch_package(self, version: ModelVersion) -> Path:
        return package_directory(
            self.services.artifacts,
            version.source,
            version.package_digest,
            self.services.settings.home / "cache" / "packages",
        )

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        created = self._catalog.create_model(name, description, tags, workspace=self._home)
        self._audit("create model", f"models/{name}", after={"description": description})
        return created

    def get_model(self, name: str) -> RegisteredModel:
        return self._catalog.get_model(name)

    def list_models(
        self, name_contains: str | None = None, tag: str | None = None
    ) -> list[RegisteredModel]:
        return self._catalog.list_models(name_contains, tag, workspace=self.workspace)

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        updated = self._catalog.update_model(name, description=description, tags=tags)
        changes = {"description": description, "tags": dict(tags or {})}
        self._audit("update model", f"models/{name}", after=changes)
        return updated

    def register_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        created_by: str = "",
    ) -> ModelVersion:
        version = self._catalog.register_version(
            name,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags,
            created_by=created_by,
            workspace=self._home,
        )
        self._audit(
            "register version",
            f"models/{version.ref}",
            after={"run_id": run_id, "digest": version.package_digest, "source": source},
        )
        return version

    def get_version(self, ref: str) -> ModelVersion:
        return self._catalog.get_version(ref)

    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
    ) -> list[ModelVersion]:
        return self._catalog.search_versions(
            name,
            stage=stage,
            run_id=run_id,
            tag=tag,
            sensitivity=sensitivity,
            workspace=self.workspace,
        )

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        updated = self._catalog.update_version(ref, description=description, tags=tags)
        changes = {"description": description, "tags": dict(tags or {})}
        self._audit("update version", f"models/{updated.ref}", after=changes)
        return updated

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        before = self._catalog.get_model(name).aliases.get(alias)
        moved = self._catalog.set_alias(name, alias, version)
        self._audit(
            "set alias",
            f"models/{name}@{alias}",
            before={"version": before},
            after={"version": version},
        )
        return moved

    def delete_alias(self, name: str, alias: str) -> None:
        before = self._catalog.get_model(name).aliases.get(alias)
        self._catalog.delete_alias(name, alias)
        self._audit("delete alias", f"models/{name}@{alias}", before={"version": before})

    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        actor: str = "",
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        before = self._catalog.get_version(ref)
        moved = self._catalog.transition_stage(
            ref, stage, actor=actor, comment=comment, archive_others=archive_others
        )
        self._audit(
            "transition stage",
            f"models/{moved.ref}",
            before={"stage": before.stage.value},
            after={
                "stage": moved.stage.value,
                "comment": comment,
                "archive_others": archive_others,
            },
        )
        return moved

    def stage_history(self, ref: str) -> list[dict[str, Any]]:
        return self._catalog.stage_history(ref)

    def retire_version(self, ref: str, comment: str) -> ModelVersion:
        before = self._catalog.get_version(ref)
        retired = self.services.retirement.retire_version(
            ref, actor=current_user(), comment=comment
        )
        self._audit(
            "retire version",
            f"models/{retired.ref}",
            before={"stage": before.stage.value},
            after={"stage": retired.stage.value, "comment": comment},
        )
        return retired

    def retire_model(self, name: str, comment: str) -> list[ModelVersion]:
        retired = self.services.retirement.retire_model(name, actor=current_user(), comment=comment)
        self._audit(
            "retire model",
            f"models/{name}",
            after={"versions": [v.version for v in retired], "comment": comment},
        )
        return retired

    def model_card(self, ref: str, form: str) -> str:
        return model_card(self.services, ref, form)

    def get_inventory(self, name: str) -> Inventory:
        return self.services.inventory.get(name)

    def update_inventory(self, name: str, changes: dict[str, Any]) -> Inventory:
        inventory = self.services.inventory
        before = inventory.get(name)
        after = inventory.update(name, actor=current_user(), **changes)
        self._audit(
            "update inventory",
            f"models/{name}/inventory",
            before={k: getattr(before, k) for k in changes},
            after={k: getattr(after, k) for k in changes},
        )
        return after

    def search_inventory(self, **filters: str | None) -> list[Inventory]:
        return self.services.inventory.search(**filters, workspace=self.workspace)

    def close(self) -> None:
        self.services.close()

    # -- audit ---------------------------------------------------------------

    def _audit(
        self,
        action: str,
        resource: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Every embedded write, as the OS user: the catalog, endpoints, labels,
        monitors, approvals and tracking (runs, batches by key and count, artifacts,
        datasets; never the values)."""
        summary: dict[str, Any] = {"plane": "embedded"}
        if before is not None:
            summary["before"] = before
        if after is not None:
            summary["after"] = after
        self.services.audit.record(
            actor=current_user(),
            action=action,
            resource=resource,
            outcome="ok",
            status=200,
            client="embedded",
            summary=summary,
        )

    def _audit_revision(self, endpoint: Endpoint) -> None:
        revision = self.services.endpoints.revisions(endpoint.name)[-1]
        self._audit(
            "change endpoint" if revision.revision > 1 else "create endpoint",
            f"endpoints/{endpoint.name}",
            after={"revision": revision.revision, "changes": revision.changes},
        )

    # -- endpoints and predictions ------------------------------------------

    def create_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]],
        shadows: list[dict[str, Any]],
        batching: dict[str, Any] | None,
        description: str,
        comment: str,
    ) -> Endpoint:
        created = self.services.endpoints.create(
            name,
            routes=requests_from(routes, shadow=False) or [],
            shadows=requests_from(shadows, shadow=True),
            batching=batching_from(batching),
            description=description,
            actor=current_user(),
            comment=comment,
            workspace=self._home,
        )
        self._audit_revision(created)
        return created

    def update_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]] | None,
        shadows: list[dict[str, Any]] | None,
        batching: dict[str, Any] | None,
        description: str | None,
        comment: str,
    ) -> Endpoint:
        updated = self.services.endpoints.update(
            name,
            routes=requests_from(routes, shadow=False),
            shadows=requests_from(shadows, shadow=True),
            batching=batching,
            description=description,
            actor=current_user(),
            comment=comment,
        )
        self._audit_revision(updated)
        return updated

    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint:
        return self.services.endpoints.rollback(name, to=to, actor=current_user(), comment=comment)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.services.endpoints.get(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.services.endpoints.list(self.workspace)

    def endpoint_revisions(self, name: str) -> list[Revision]:
        return self.services.endpoints.revisions(name)

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        before = self.services.endpoints.get(name).retention_days
        after = self.services.endpoints.set_retention(name, days)
        self._audit(
            "set retention",
            f"endpoints/{name}",
            before={"retention_days": before},
            after={"retention_days": days},
        )
        return after

    def prune_predictions(self, name: str) -> int:
        return prune_endpoint(self.services, name, actor=current_user(), client="embedded")

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        before = self.services.endpoints.get(name).subject_column
        after = self.services.endpoints.set_subject_column(name, column)
        self._audit(
            "set subject column",
            f"endpoints/{name}",
            before={"subject_column": before},
            after={"subject_column": column},
        )
        return after

    def erase_subject(self, name: str, subject: Any) -> int:
        return erase_subject(self.services, name, subject, actor=current_user(), client="embedded")

    def predictions(self, name: str, **filters: Any) -> pa.Table:
        self.services.endpoints.get(name)
        return self.services.predictions.query(name, **filters)

    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult:
        self.services.endpoints.get(name)
        result = self.services.predictions.record_labels(name, labels, actor=current_user())
        self._audit(
            "post labels",
            f"endpoints/{name}/labels",
            after={"recorded": result.recorded, "unknown": len(result.unknown)},
        )
        return result

    def endpoint_accuracy(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        self.services.endpoints.get(name)
        return self.services.predictions.accuracy(name, since=since, until=until)

    def endpoint_compare(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        self.services.endpoints.get(name)
        return self.services.predictions.compare(name, since=since, until=until)

    def lineage(self, node: str) -> LineageGraph:
        return self.services.lineage.of(node)

    # -- approvals ----------------------------------------------------------------

    def approval_decision(self, ref: str, decision: str, comment: str) -> dict[str, Any]:
        approvals = self.services.approvals
        act = {
            "request": approvals.request,
            "approve": approvals.approve,
            "reject": approvals.reject,
        }.get(decision)
        if act is None:
            raise InvalidInput(f"decision must be request, approve or reject, got {decision!r}")
        status = act(ref, actor=current_user(), comment=comment)
        self._audit(
            f"{decision} approval",
            f"models/{status.version}/approvals",
            after={"decision": decision, "digest": status.digest, "state": status.state},
        )
        return status.to_dict()

    def approval_status(self, ref: str) -> dict[str, Any]:
        return self.services.approvals.status(ref).to_dict()

    def approval_policy(self, required: int | None) -> int:
        approvals = self.services.approvals
        if required is None:
            return approvals.policy(self._home)
        before = approvals.policy(self._home)
        approvals.set_policy(required, actor=current_user(), workspace=self._home)
        self._audit(
            "set approval policy",
            "policies/approvals",
            before={"required": before},
            after={"required": required},
        )
        return required

    # -- monitoring ---------------------------------------------------------------

    def create_monitor(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        monitor = self.services.monitors.create(
            name, spec, actor=current_user(), workspace=self.workspace
        )
        self._audit("create monitor", f"monitors/{name}", after=monitor.spec.to_dict())
        return monitor.to_dict()

    def update_monitor(
        self, name: str, changes: dict[str, Any], enabled: bool | None
    ) -> dict[str, Any]:
        before = self.services.monitors.get(name)
        after = self.services.monitors.update(
            name, changes, enabled=enabled, actor=current_user(), workspace=self.workspace
        )
        self._audit(
            "update monitor",
            f"monitors/{name}",
            before={"enabled": before.enabled, "spec": before.spec.to_dict()},
            after={"enabled": after.enabled, "changes": changes},
        )
        return after.to_dict()

    def get_monitor(self, name: str) -> dict[str, Any]:
        return self.services.monitors.get(name).to_dict()

    def list_monitors(self, endpoint: str | None) -> list[dict[str, Any]]:
        found = self.services.monitors.list(endpoint=endpoint, workspace=self.workspace)
        return [m.to_dict() for m in found]

    def run_monitor(self, name: str) -> dict[str, Any]:
        report = self.services.monitors.run(name)
        self._audit(
            "run monitor",
            f"monitors/{name}",
            after={"windows": len(report.computed), "alerts": len(report.alerts)},
        )
        return report.to_dict()

    def monitor_windows(self, name: str, limit: int) -> list[dict[str, Any]]:
        return self.services.monitors.windows(name, limit=limit)

    def monitor_results(self, name: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.services.monitors.results(name, **filters)

    def monitor_alerts(
        self, name: str | None, status: str | None, since: int | None
    ) -> list[dict[str, Any]]:
        ids = self.services.monitors.monitor_ids(name, self.workspace)
        return self.services.alerts.alerts(ids, status=status, since=since)

    def retraining_requests(self, name: str | None, status: str | None) -> list[dict[str, Any]]:
        ids = self.services.monitors.monitor_ids(name, self.workspace)
        return self.services.alerts.requests(ids, status=status)

    def close_retraining_request(self, request_id: str, comment: str) -> dict[str, Any]:
        closed = self.services.alerts.close_request(
            request_id, comment=comment, actor=current_user()
        )
        self._audit(
            "close retraining request",
            f"retraining-requests/{request_id}",
            after={"comment": comment},
        )
        return closed

    def monitor_report(self, name: str) -> str:
        return self.services.monitors.report(name)

    def get_reference(self, ref: str) -> dict[str, Any]:
        return self.services.references.get(ref).to_dict()

    def build_reference(self, ref: str, dataset: str | None, target: str | None) -> dict[str, Any]:
        built = self.services.references.build(
            ref, dataset=dataset, target=target, actor=current_user()
        )
        self._audit(
            "build reference",
            f"models/{built.ref}/reference",
            after={"dataset": built.dataset, "target": built.target},
        )
        return built.to_dict()

    def classify_dataset(self, name: str, tags: list[str]) -> list[str]:
        registry = self.services.datasets
        before = registry.classes(name)
        after = registry.classify(name, tags, actor=current_user())
        self._audit(
            "classify dataset",
            f"datasets/{name}",
            before={"classes": before},
            after={"classes": after},
        )
        return after

    def dataset_classes(self, name: str) -> list[str]:
        return self.services.datasets.classes(name)

    # -- secrets (audited by the service, with the name and never the value) --

    def set_secret(self, name: str, value: str) -> SecretRecord:
        return self.services.secrets.set(
            name, value, current_user(), client="embedded", workspace=self._home
        )

    def list_secrets(self) -> list[SecretRecord]:
        return self.services.secrets.names(self.workspace)

    def delete_secret(self, name: str) -> None:
        self.services.secrets.delete(name, current_user(), client="embedded")
