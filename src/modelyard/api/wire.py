"""What travels over HTTP: request bodies, and fast JSON for domain records."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from modelyard.jsonable import plain


def respond(value: Any, status_code: int = 200) -> Response:
    body = json.dumps(plain(value), separators=(",", ":"), allow_nan=True)
    return Response(body, status_code=status_code, media_type="application/json")


class ExperimentIn(BaseModel):
    name: str
    description: str = ""


class RunIn(BaseModel):
    experiment: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] | None = None
    environment_id: str | None = None
    user: str = ""


class MetricColumns(BaseModel):
    """Metric points as parallel arrays: compact to send, fast to read."""

    keys: list[str] = Field(default_factory=list)
    values: list[float | None] = Field(default_factory=list)
    steps: list[int] = Field(default_factory=list)
    timestamps: list[int] = Field(default_factory=list)


class BatchIn(BaseModel):
    metrics: MetricColumns = Field(default_factory=MetricColumns)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)


class FinishIn(BaseModel):
    status: str
    error: str | None = None


class SearchIn(BaseModel):
    experiments: list[str] | None = None
    filter: str | None = None
    order_by: str | list[str] | None = None
    max_results: int = 100
    cursor: str | None = None


class ModelIn(BaseModel):
    name: str
    description: str = ""
    tags: dict[str, Any] | None = None


class ModelUpdate(BaseModel):
    description: str | None = None
    tags: dict[str, Any] | None = None


class VersionIn(BaseModel):
    source: str
    run_id: str | None = None
    description: str = ""
    tags: dict[str, Any] | None = None
    created_by: str = ""


class AliasIn(BaseModel):
    version: int


class StageIn(BaseModel):
    stage: str
    actor: str = ""
    comment: str = ""
    archive_others: bool = False


class ColumnIn(BaseModel):
    name: str
    type: str


class DatasetIn(BaseModel):
    """What a run records of a dataset: content fingerprint, schema and size; ``stored``
    when its Parquet content was uploaded first (``PUT /datasets/{fingerprint}/content``)."""

    name: str
    role: str
    fingerprint: str
    row_count: int
    columns: list[ColumnIn]
    uri: str | None = None
    stored: bool = False


class EndpointIn(BaseModel):
    name: str
    routes: list[dict[str, Any]]
    shadows: list[dict[str, Any]] = Field(default_factory=list)
    batching: dict[str, Any] | None = None
    description: str = ""
    comment: str = ""


class EndpointUpdate(BaseModel):
    routes: list[dict[str, Any]] | None = None
    shadows: list[dict[str, Any]] | None = None
    batching: dict[str, Any] | None = None
    description: str | None = None
    comment: str = ""


class RollbackIn(BaseModel):
    to: int | None = None
    comment: str = ""


class LabelIn(BaseModel):
    id: str
    label: Any


class LabelsIn(BaseModel):
    labels: list[LabelIn]
