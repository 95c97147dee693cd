"""The remote backend: the SDK talking to ``modelyard server`` over HTTP.

It raises the same error classes as the embedded backend: the server sends the
error's kind and message, and this module rebuilds the exception::

    yard = modelyard.connect("http://127.0.0.1:8700", api_key="...")
    yard.runs.get("f00d")   # NotFound: run 'f00d' does not exist -- as embedded

One ``httpx.Client`` is kept per backend (keep-alive connections, a timeout);
a server that cannot be reached is a ``ModelyardError`` naming its URL.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
import orjson
import pandas as pd
import pyarrow as pa
from pydantic import TypeAdapter

from modelyard.artifacts.keys import safe_key
from modelyard.artifacts.store import iter_files
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.endpoints import Endpoint, Revision, endpoint_from_dict, revision_from_dict
from modelyard.domain.identity import check_workspace_name
from modelyard.domain.models import Inventory, ModelRef, ModelVersion, RegisteredModel
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage
from modelyard.domain.secrets import SecretRecord, check_secret_name
from modelyard.errors import BRANCHES, ERROR_KINDS, InvalidInput, ModelyardError, NotFound
from modelyard.governance.lineage import LineageGraph, graph_from_dict
from modelyard.packaging import verify_package
from modelyard.serving.journal import canonical
from modelyard.serving.predictlog import LabelResult
from modelyard.tracking.runs import PACKAGE_PATH, run_artifact_key

T = TypeVar("T")
CHUNK = 1 << 20


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def parse(kind: type[T] | Any, data: Any) -> T:
    """JSON data as the domain record ``kind`` (dataclasses, lists of them)."""
    result: T = _adapter(kind).validate_python(data)  # type: ignore[arg-type]
    return result


def _selector(ref: str) -> tuple[str, str]:
    parsed = ModelRef.parse(ref)
    if parsed.alias:
        return parsed.name, f"@{parsed.alias}"
    return parsed.name, "latest" if parsed.version is None else str(parsed.version)


def _quoted_selector(ref: str) -> tuple[str, str]:
    name, selector = _selector(ref)
    return _path(name), _path(selector)


def _path(text: str) -> str:
    return quote(text, safe="")


class RemoteBackend:
    """``Backend`` over HTTP to a modelyard server."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        home: Path | None = None,
        timeout: float = 60,
        workspace: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.location = self.url if workspace is None else f"{self.url} (workspace {workspace})"
        self.home = home or Path(".modelyard").absolute()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if workspace is not None:
            headers["X-Modelyard-Workspace"] = check_workspace_name(workspace)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        self._stored_environments: set[str] = set()

    # -- transport ---------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        except httpx.InvalidURL as exc:
            raise InvalidInput(f"cannot build a request to {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @contextlib.contextmanager
    def _stream(self, method: str, path: str) -> Iterator[httpx.Response]:
        """A response whose body is read in chunks (downloads never sit whole in memory)."""
        try:
            with self._http.stream(method, f"/api/v1{path}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: httpx.TransportError) -> ModelyardError:
        return ModelyardError(f"cannot reach modelyard server at {self.url}: {exc}")

    def _error(self, response: httpx.Response) -> ModelyardError:
        try:
            error = response.json()["error"]
            kind, message = str(error["kind"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            return ModelyardError(f"server answered {response.status_code}: {response.text[:200]}")
        return error_class(kind, response.status_code)(message)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # -- experiments and runs ----------------------------------------------

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        body = {"name": name, "description": description}
        return parse(Experiment, self._json("POST", "/experiments", json=body))

    def get_experiment(self, name: str) -> Experiment:
        return parse(Experiment, self._json("GET", f"/experiments/{_path(name)}"))

    def list_experiments(self) -> list[Experiment]:
        return parse(list[Experiment], self._json("GET", "/experiments"))

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
        body = {
            "experiment": experiment,
            "name": name,
            "params": {k: _text(v) for k, v in params.items()},
            "tags": {k: _text(v) for k, v in tags.items()},
            "user": user,
        }
        if environment is None:
            return parse(Run, self._json("POST", "/runs", json=body))
        if environment.id in self._stored_environments:
            with contextlib.suppress(NotFound):  # the server lost it: send it in full below
                return parse(
                    Run,
                    self._json("POST", "/runs", json={**body, "environment_id": environment.id}),
                )
        full = {**body, "environment": environment.as_dict()}
        run: Run = parse(Run, self._json("POST", "/runs", json=full))
        self._stored_environments.add(environment.id)
        return run

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricPoint] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        columns = {
            "keys": [p.key for p in metrics],
            "values": [_finite_or_none(p.value) for p in metrics],
            "steps": [int(p.step) for p in metrics],
            "timestamps": [int(p.timestamp) for p in metrics],
        }
        body = {
            "metrics": columns,
            "params": {k: _text(v) for k, v in (params or {}).items()},
            "tags": {k: _text(v) for k, v in (tags or {}).items()},
        }
        self._send(
            "POST",
            f"/runs/{_path(run_id)}/batch",
            content=json.dumps(body),
            headers={"content-type": "application/json"},
        )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> Run:
        body = {"status": status, "error": error}
        return parse(Run, self._json("POST", f"/runs/{_path(run_id)}/finish", json=body))

    def get_run(self, run_id: str) -> Run:
        return parse(Run, self._json("GET", f"/runs/{_path(run_id)}"))

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        data = self._json("GET", f"/runs/{_path(run_id)}/metrics/{quote(key)}")
        return parse(list[MetricPoint], data)

    def get_environment(self, environment_id: str) -> Environment:
        return parse(Environment, self._json("GET", f"/environments/{_path(environment_id)}"))

    def search_runs(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
        max_results: int,
        cursor: str | None,
    ) -> RunPage:
        body = {
            "experiments": list(experiments) if experiments is not None else None,
            "filter": filter,
            "order_by": order_by
            if isinstance(order_by, str) or order_by is None
            else list(order_by),
            "max_results": max_results,
            "cursor": cursor,
        }
        return parse(RunPage, self._json("POST", "/runs/search", json=body))

    def runs_frame(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
    ) -> pd.DataFrame:
        body = {
            "experiments": list(experiments) if experiments is not None else None,
            "filter": filter,
            "order_by": order_by
            if isinstance(order_by, str) or order_by is None
            else list(order_by),
        }
        payload = self._send("POST", "/runs/frame", json=body).content
        with pa.ipc.open_stream(payload) as reader:
            return reader.read_all().to_pandas()

    # -- artifacts and datasets --------------------------------------------

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        url = f"/runs/{_path(run_id)}/artifacts/{quote(safe_key(path))}"
        return parse(Artifact, self._json("PUT", url, content=_body(source)))

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return parse(list[Artifact], self._json("GET", f"/runs/{_path(run_id)}/artifacts"))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        url = f"/runs/{_path(run_id)}/artifacts/{quote(safe_key(path))}"
        return self._send("GET", url).content

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
        meta = {
            "name": name,
            "role": role,
            "fingerprint": fingerprint,
            "row_count": row_count,
            "columns": [{"name": c.name, "type": c.type} for c in columns],
            "uri": uri,
            "stored": content is not None,
        }
        if content is not None:
            self._send("PUT", f"/datasets/{_path(fingerprint)}/content", content=_body(content))
        return parse(Dataset, self._json("POST", f"/runs/{_path(run_id)}/datasets", json=meta))

    def run_datasets(self, run_id: str) -> list[DatasetUse]:
        return parse(list[DatasetUse], self._json("GET", f"/runs/{_path(run_id)}/datasets"))

    # -- catalog -----------------------------------------------------------

    def upload_package(self, directory: Path, run_id: str | None) -> str:
        if run_id is not None:
            for relative, path in iter_files(directory):
                with path.open("rb") as handle:
                    self.log_artifact(run_id, f"{PACKAGE_PATH}/{relative}", handle)
            return run_artifact_key(run_id, PACKAGE_PATH)
        upload_id = uuid.uuid4().hex
        for relative, path in iter_files(directory):
            with path.open("rb") as handle:
                self._send("PUT", f"/uploads/{upload_id}/{quote(relative)}", content=_body(handle))
        return f"uploads/{upload_id}"

    def fetch_package(self, version: ModelVersion) -> Path:
        """Download a version's package into ``home/cache/packages/<digest>`` (once per digest).

        Files land in a staging folder that is checked against the version's
        package digest before it is renamed into the cache, so the cache never
        holds a partial or tampered package.
        """
        target = self.home / "cache" / "packages" / version.package_digest
        if (target / "manifest.json").is_file():
            return target
        base = f"/models/{_path(version.model)}/versions/{version.version}/package"
        listing = self._json("GET", base)
        staging = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            for relative in listing["files"]:
                self._download(f"{base}/{quote(safe_key(relative))}", staging / relative)
            verify_package(staging, expected_digest=version.package_digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():  # else another process fetched it meanwhile
                staging.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _download(self, path: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with self._stream("GET", path) as response, destination.open("wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": _texts(tags)}
        return parse(RegisteredModel, self._json("POST", "/models", json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return parse(RegisteredModel, self._json("GET", f"/models/{_path(name)}"))

    def list_models(
        self, name_contains: str | None = None, tag: str | None = None
    ) -> list[RegisteredModel]:
        params = {k: v for k, v in {"name_contains": name_contains, "tag": tag}.items() if v}
        return parse(list[RegisteredModel], self._json("GET", "/models", params=params))

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"description": description, "tags": _texts(tags)}
        return parse(RegisteredModel, self._json("PATCH", f"/models/{_path(name)}", json=body))

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
        body = {
            "source": source,
            "run_id": run_id,
            "description": description,
            "tags": _texts(tags),
            "created_by": created_by,
        }
        return parse(ModelVersion, self._json("POST", f"/models/{_path(name)}/versions", json=body))

    def get_version(self, ref: str) -> ModelVersion:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}"
        return parse(ModelVersion, self._json("GET", url))

    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
    ) -> list[ModelVersion]:
        query = {
            "name": name,
            "stage": stage,
            "run_id": run_id,
            "tag": tag,
            "sensitivity": sensitivity,
        }
        params = {k: v for k, v in query.items() if v}
        return parse(list[ModelVersion], self._json("GET", "/versions", params=params))

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        name, selector = _selector(ref)
        body = {"description": description, "tags": _texts(tags)}
        url = f"/models/{_path(name)}/versions/{_path(selector)}"
        return parse(ModelVersion, self._json("PATCH", url, json=body))

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        url = f"/models/{_path(name)}/aliases/{_path(alias)}"
        return parse(ModelVersion, self._json("PUT", url, json={"version": version}))

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", f"/models/{_path(name)}/aliases/{_path(alias)}")

    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        actor: str = "",
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        name, selector = _selector(ref)
        body = {
            "stage": stage,
            "actor": actor,
            "comment": comment,
            "archive_others": archive_others,
        }
        url = f"/models/{_path(name)}/versions/{_path(selector)}/stage"
        return parse(ModelVersion, self._json("POST", url, json=body))

    def stage_history(self, ref: str) -> list[dict[str, Any]]:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/stages"
        result: list[dict[str, Any]] = self._json("GET", url)
        return result

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
        body = {
            "name": name,
            "routes": routes,
            "shadows": shadows,
            "batching": batching,
            "description": description,
            "comment": comment,
        }
        return endpoint_from_dict(self._json("POST", "/endpoints", json=body))

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
        body = {
            "routes": routes,
            "shadows": shadows,
            "batching": batching,
            "description": description,
            "comment": comment,
        }
        return endpoint_from_dict(self._json("PATCH", f"/endpoints/{_path(name)}", json=body))

    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint:
        body = {"to": to, "comment": comment}
        answer = self._json("POST", f"/endpoints/{_path(name)}/rollback", json=body)
        return endpoint_from_dict(answer)

    def get_endpoint(self, name: str) -> Endpoint:
        return endpoint_from_dict(self._json("GET", f"/endpoints/{_path(name)}"))

    def list_endpoints(self) -> list[Endpoint]:
        return [endpoint_from_dict(e) for e in self._json("GET", "/endpoints")]

    def endpoint_revisions(self, name: str) -> list[Revision]:
        answer = self._json("GET", f"/endpoints/{_path(name)}/revisions")
        return [revision_from_dict(r) for r in answer]

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        answer = self._json("PUT", f"/endpoints/{_path(name)}/retention", json={"days": days})
        return endpoint_from_dict(answer)

    def prune_predictions(self, name: str) -> int:
        return int(self._json("POST", f"/endpoints/{_path(name)}/prune")["deleted"])

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        answer = self._json("PUT", f"/endpoints/{_path(name)}/subject", json={"column": column})
        return endpoint_from_dict(answer)

    def erase_subject(self, name: str, subject: Any) -> int:
        body = {"subject": orjson.loads(canonical(subject))}
        return int(self._json("POST", f"/endpoints/{_path(name)}/erase", json=body)["deleted"])

    def predictions(self, name: str, **filters: Any) -> pa.Table:
        params: list[tuple[str, Any]] = []
        if "limit" in filters and filters["limit"] is None:
            filters = {**filters, "limit": 0}  # the API's "no limit"
        for key, value in filters.items():
            if value is None or key == "with_labels":
                continue
            if key == "ids":
                params.extend(("id", item) for item in value)
            else:
                params.append((key, value))
        payload = self._send("GET", f"/endpoints/{_path(name)}/predictions", params=params)
        with pa.ipc.open_stream(payload.content) as reader:
            return reader.read_all()

    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult:
        body = {"labels": [{"id": i, "label": orjson.loads(canonical(v))} for i, v in labels]}
        answer = self._json("POST", f"/endpoints/{_path(name)}/labels", json=body)
        return LabelResult(recorded=answer["recorded"], unknown=answer["unknown"])

    def endpoint_accuracy(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        return list(self._json("GET", f"/endpoints/{_path(name)}/accuracy", params=params))

    def endpoint_compare(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        return list(self._json("GET", f"/endpoints/{_path(name)}/compare", params=params))

    # -- approvals ----------------------------------------------------------------

    def approval_decision(self, ref: str, decision: str, comment: str) -> dict[str, Any]:
        name, selector = _quoted_selector(ref)
        body = {"comment": comment}
        if decision == "request":
            path = f"/models/{name}/versions/{selector}/approval-requests"
        else:
            path = f"/models/{name}/versions/{selector}/approvals"
            body["decision"] = decision
        return dict(self._json("POST", path, json=body))

    def approval_status(self, ref: str) -> dict[str, Any]:
        name, selector = _quoted_selector(ref)
        return dict(self._json("GET", f"/models/{name}/versions/{selector}/approvals"))

    def approval_policy(self, required: int | None) -> int:
        if required is None:
            return int(self._json("GET", "/policies/approvals")["required"])
        answer = self._json("PUT", "/policies/approvals", json={"required": required})
        return int(answer["required"])

    # -- monitoring ---------------------------------------------------------------

    def create_monitor(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "spec": spec}
        return dict(self._json("POST", "/monitors", json=body))

    def update_monitor(
        self, name: str, changes: dict[str, Any], enabled: bool | None
    ) -> dict[str, Any]:
        body = {"changes": changes, "enabled": enabled}
        return dict(self._json("PATCH", f"/monitors/{_path(name)}", json=body))

    def get_monitor(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/monitors/{_path(name)}"))

    def list_monitors(self, endpoint: str | None) -> list[dict[str, Any]]:
        params = {"endpoint": endpoint} if endpoint else {}
        return list(self._json("GET", "/monitors", params=params))

    def run_monitor(self, name: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/monitors/{_path(name)}/run"))

    def monitor_windows(self, name: str, limit: int) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/monitors/{_path(name)}/windows", params={"limit": limit}))

    def monitor_results(self, name: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._json("GET", f"/monitors/{_path(name)}/results", params=params))

    def monitor_alerts(
        self, name: str | None, status: str | None, since: int | None
    ) -> list[dict[str, Any]]:
        params = {"monitor": name, "status": status, "since": since}
        return list(
            self._json("GET", "/alerts", params={k: v for k, v in params.items() if v is not None})
        )

    def retraining_requests(self, name: str | None, status: str | None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"monitor": name, "status": status}.items() if v is not None}
        return list(self._json("GET", "/retraining-requests", params=params))

    def close_retraining_request(self, request_id: str, comment: str) -> dict[str, Any]:
        path = f"/retraining-requests/{_path(request_id)}/close"
        return dict(self._json("POST", path, json={"comment": comment}))

    def monitor_report(self, name: str) -> str:
        response = self._send("GET", f"/monitors/{_path(name)}/report")
        return str(response.text)

    def get_reference(self, ref: str) -> dict[str, Any]:
        return dict(self._json("GET", "/references", params={"version": ref}))

    def build_reference(self, ref: str, dataset: str | None, target: str | None) -> dict[str, Any]:
        body = {"version": ref, "dataset": dataset, "target": target}
        return dict(self._json("POST", "/references", json=body))

    def lineage(self, node: str) -> LineageGraph:
        return graph_from_dict(self._json("GET", "/lineage", params={"node": node}))

    def classify_dataset(self, name: str, tags: list[str]) -> list[str]:
        answer = self._json("PUT", f"/datasets/{_path(name)}/classes", json={"classes": tags})
        return list(answer["classes"])

    def dataset_classes(self, name: str) -> list[str]:
        return list(self._json("GET", f"/datasets/{_path(name)}/classes")["classes"])

    def set_secret(self, name: str, value: str) -> SecretRecord:
        check_secret_name(name)  # a name like '..' would change the URL's path
        answer = self._json("PUT", f"/secrets/{_path(name)}", json={"value": value})
        return parse(SecretRecord, answer)

    def list_secrets(self) -> list[SecretRecord]:
        return parse(list[SecretRecord], self._json("GET", "/secrets"))

    def delete_secret(self, name: str) -> None:
        check_secret_name(name)
        self._send("DELETE", f"/secrets/{_path(name)}")

    def retire_version(self, ref: str, comment: str) -> ModelVersion:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/retire"
        return parse(ModelVersion, self._json("POST", url, json={"comment": comment}))

    def retire_model(self, name: str, comment: str) -> list[ModelVersion]:
        answer = self._json("POST", f"/models/{_path(name)}/retire", json={"comment": comment})
        return parse(list[ModelVersion], answer)

    def model_card(self, ref: str, form: str) -> str:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/card"
        return self._send("GET", url, params={"format": form}).text

    def get_inventory(self, name: str) -> Inventory:
        return parse(Inventory, self._json("GET", f"/models/{_path(name)}/inventory"))

    def update_inventory(self, name: str, changes: dict[str, Any]) -> Inventory:
        answer = self._json("PATCH", f"/models/{_path(name)}/inventory", json=changes)
        return parse(Inventory, answer)

    def search_inventory(self, **filters: str | None) -> list[Inventory]:
        params = {k: v for k, v in filters.items() if v is not None}
        return parse(list[Inventory], self._json("GET", "/inventory", params=params))

    def close(self) -> None:
        self._http.close()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _texts(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if values is None else {k: _text(v) for k, v in values.items()}


def _finite_or_none(value: float) -> float | None:
    return None if value != value else value  # NaN is not JSON; the server reads None as NaN


def _body(source: BinaryIO) -> bytes | Iterator[bytes]:
    """A request body that streams ``source`` in chunks (in-memory bytes go as they are)."""
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    return iter(lambda: source.read(CHUNK), b"")


def error_class(kind: str, status_code: int) -> type[ModelyardError]:
    """The error class for a server's error ``kind``; unknown kinds fall back to the branch
    with the same status code (so a newer server's sub-kinds still land on the right branch)."""
    if kind in ERROR_KINDS:
        return ERROR_KINDS[kind]
    for candidate in BRANCHES:
        if candidate.status_code == status_code:
            return candidate
    return ModelyardError
