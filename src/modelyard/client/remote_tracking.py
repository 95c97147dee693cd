"""Experiments, runs, artifacts and datasets of the remote backend."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from modelyard.artifacts.keys import safe_key
from modelyard.client.remote_base import (
    CHUNK,
    RemoteBase,
    _body,
    _finite_or_none,
    _path,
    _text,
    parse,
)
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage
from modelyard.errors import NotFound


class RemoteTracking(RemoteBase):
    """Experiments, runs (params, metrics, tags), their artifacts and datasets, over HTTP."""

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
    ) -> Run:
        body = {
            "experiment": experiment,
            "name": name,
            "params": {k: _text(v) for k, v in params.items()},
            "tags": {k: _text(v) for k, v in tags.items()},
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

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        url = f"/runs/{_path(run_id)}/artifacts/{quote(safe_key(path))}"
        return parse(Artifact, self._json("PUT", url, content=_body(source)))

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return parse(list[Artifact], self._json("GET", f"/runs/{_path(run_id)}/artifacts"))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        url = f"/runs/{_path(run_id)}/artifacts/{quote(safe_key(path))}"
        return self._send("GET", url).content

    def download_artifact(self, run_id: str, path: str, target: BinaryIO) -> None:
        url = f"/runs/{_path(run_id)}/artifacts/{quote(safe_key(path))}"
        with self._stream("GET", url) as response:
            for chunk in response.iter_bytes(CHUNK):
                target.write(chunk)

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

    def dataset_versions(self, key: str) -> list[Dataset]:
        return parse(list[Dataset], self._json("GET", f"/datasets/{_path(key)}"))

    def download_dataset(self, name: str, fingerprint: str, target: BinaryIO) -> None:
        url = f"/datasets/{_path(name)}/content"
        with self._stream("GET", url, params={"fingerprint": fingerprint}) as response:
            for chunk in response.iter_bytes(CHUNK):
                target.write(chunk)
