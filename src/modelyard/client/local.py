"""The embedded backend: the SDK calling the services in this process."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from modelyard.artifacts.store import download_tree, iter_files
from modelyard.bootstrap import Services
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.models import ModelVersion, RegisteredModel
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage
from modelyard.tracking.runs import PACKAGE_PATH, run_artifact_key


class LocalBackend:
    """``Backend`` over in-process services (SQLite or PostgreSQL, local or fsspec files)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.location = f"{services.db.describe()} + {services.artifacts.root}"
        self._tracking = services.tracking
        self._catalog = services.catalog

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        return self._tracking.create_experiment(name, description)

    def get_experiment(self, name: str) -> Experiment:
        return self._tracking.get_experiment(name)

    def list_experiments(self) -> list[Experiment]:
        return self._tracking.list_experiments()

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
        return self._tracking.create_run(
            experiment, name=name, params=params, tags=tags, environment=environment, user=user
        )

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricPoint] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self._tracking.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> Run:
        return self._tracking.finish_run(run_id, status, error)

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
        if experiments is None:
            return None
        return [self._tracking.get_experiment(name).id for name in experiments]

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        return self._tracking.log_artifact(run_id, path, source)

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
        return self.services.datasets.log_dataset(
            run_id,
            name=name,
            role=role,
            fingerprint=fingerprint,
            row_count=row_count,
            columns=columns,
            uri=uri,
            content=content,
        )

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
        store = self.services.artifacts
        local = store.local_path(version.source)
        if local is not None:
            return local
        target = self.services.settings.home / "cache" / "packages" / version.package_digest
        if not (target / "manifest.json").is_file():
            download_tree(store, version.source, target)
        return target

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._catalog.create_model(name, description, tags)

    def get_model(self, name: str) -> RegisteredModel:
        return self._catalog.get_model(name)

    def list_models(
        self, name_contains: str | None = None, tag: str | None = None
    ) -> list[RegisteredModel]:
        return self._catalog.list_models(name_contains, tag)

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._catalog.update_model(name, description=description, tags=tags)

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
        return self._catalog.register_version(
            name,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags,
            created_by=created_by,
        )

    def get_version(self, ref: str) -> ModelVersion:
        return self._catalog.get_version(ref)

    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
    ) -> list[ModelVersion]:
        return self._catalog.search_versions(name, stage=stage, run_id=run_id, tag=tag)

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        return self._catalog.update_version(ref, description=description, tags=tags)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self._catalog.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._catalog.delete_alias(name, alias)

    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        actor: str = "",
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        return self._catalog.transition_stage(
            ref, stage, actor=actor, comment=comment, archive_others=archive_others
        )

    def stage_history(self, ref: str) -> list[dict[str, Any]]:
        return self._catalog.stage_history(ref)

    def close(self) -> None:
        self.services.close()
