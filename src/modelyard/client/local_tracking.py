"""Experiments, runs, artifacts and datasets of the embedded backend."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import pandas as pd

from modelyard.client.local_base import LocalBase
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage

CHUNK = 1 << 20


class LocalTracking(LocalBase):
    """Experiments, runs (params, metrics, tags), their artifacts and datasets, in-process."""

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        return self._tracking.create_experiment(name, description, workspace=self._home)

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
    ) -> Run:
        return self._tracking.create_run(
            experiment,
            name=name,
            params=params,
            tags=tags,
            environment=environment,
            workspace=self._home,
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
        return self._tracking.experiment_ids(experiments, self.workspace)

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        return self._tracking.log_artifact(run_id, path, source)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return self._tracking.list_artifacts(run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        with self._tracking.open_artifact(run_id, path) as handle:
            return handle.read()

    def download_artifact(self, run_id: str, path: str, target: BinaryIO) -> None:
        with self._tracking.open_artifact(run_id, path) as handle:
            shutil.copyfileobj(handle, target, CHUNK)

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

    def dataset_versions(self, key: str) -> list[Dataset]:
        return self.services.datasets.versions(key, workspace=self.workspace)

    def download_dataset(self, name: str, fingerprint: str, target: BinaryIO) -> None:
        datasets = self.services.datasets
        with datasets.open_content(name, fingerprint, workspace=self.workspace) as handle:
            shutil.copyfileobj(handle, target, CHUNK)
