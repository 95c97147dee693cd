"""The one interface the SDK talks to, with two implementations.

``LocalBackend`` calls the services in-process (embedded mode); ``RemoteBackend``
makes the same calls over HTTP to ``modelyard server``. A single contract test
suite runs against both, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pandas as pd
import pyarrow as pa

from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.endpoints import Endpoint, Revision
from modelyard.domain.models import Inventory, ModelVersion, RegisteredModel
from modelyard.domain.runs import Artifact, Environment, Experiment, MetricPoint, Run, RunPage
from modelyard.governance.lineage import LineageGraph
from modelyard.serving.predictlog import LabelResult


class Backend(Protocol):
    """Every operation the SDK needs from a yard, embedded or remote."""

    location: str

    # experiments and runs
    def create_experiment(self, name: str, description: str = "") -> Experiment: ...
    def get_experiment(self, name: str) -> Experiment: ...
    def list_experiments(self) -> list[Experiment]: ...
    def create_run(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        environment: Environment | None,
        user: str,
    ) -> Run: ...
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricPoint] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None: ...
    def finish_run(self, run_id: str, status: str, error: str | None = None) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...
    def get_environment(self, environment_id: str) -> Environment: ...
    def search_runs(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
        max_results: int,
        cursor: str | None,
    ) -> RunPage: ...
    def runs_frame(
        self,
        experiments: Sequence[str] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
    ) -> pd.DataFrame: ...

    # artifacts and datasets
    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact: ...
    def list_artifacts(self, run_id: str) -> list[Artifact]: ...
    def read_artifact(self, run_id: str, path: str) -> bytes: ...
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
    ) -> Dataset: ...
    def run_datasets(self, run_id: str) -> list[DatasetUse]: ...

    # catalog
    def upload_package(self, directory: Path, run_id: str | None) -> str: ...
    def fetch_package(self, version: ModelVersion) -> Path: ...
    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(
        self, name_contains: str | None = None, tag: str | None = None
    ) -> list[RegisteredModel]: ...
    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel: ...
    def register_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        created_by: str = "",
    ) -> ModelVersion: ...
    def get_version(self, ref: str) -> ModelVersion: ...
    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
    ) -> list[ModelVersion]: ...
    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion: ...
    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        actor: str = "",
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion: ...
    def stage_history(self, ref: str) -> list[dict[str, Any]]: ...
    def model_card(self, ref: str, form: str) -> str: ...
    def retire_version(self, ref: str, comment: str) -> ModelVersion: ...
    def retire_model(self, name: str, comment: str) -> list[ModelVersion]: ...
    def get_inventory(self, name: str) -> Inventory: ...
    def update_inventory(self, name: str, changes: dict[str, Any]) -> Inventory: ...
    def search_inventory(self, **filters: str | None) -> list[Inventory]: ...

    # endpoints (routes and shadows as the API dicts: target_to_request) and predictions
    def create_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]],
        shadows: list[dict[str, Any]],
        batching: dict[str, Any] | None,
        description: str,
        comment: str,
    ) -> Endpoint: ...
    def update_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]] | None,
        shadows: list[dict[str, Any]] | None,
        batching: dict[str, Any] | None,
        description: str | None,
        comment: str,
    ) -> Endpoint: ...
    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint: ...
    def get_endpoint(self, name: str) -> Endpoint: ...
    def list_endpoints(self) -> list[Endpoint]: ...
    def endpoint_revisions(self, name: str) -> list[Revision]: ...
    def set_retention(self, name: str, days: int | None) -> Endpoint: ...
    def prune_predictions(self, name: str) -> int: ...
    def set_subject_column(self, name: str, column: str | None) -> Endpoint: ...
    def erase_subject(self, name: str, subject: Any) -> int: ...
    def predictions(self, name: str, **filters: Any) -> pa.Table: ...
    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult: ...
    def endpoint_accuracy(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]: ...
    def endpoint_compare(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]: ...

    # governance
    def lineage(self, node: str) -> LineageGraph: ...
    def classify_dataset(self, name: str, tags: list[str]) -> list[str]: ...
    def dataset_classes(self, name: str) -> list[str]: ...

    def close(self) -> None: ...
