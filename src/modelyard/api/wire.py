"""What travels over HTTP: request bodies, and fast JSON for domain records."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field

from modelyard.jsonable import plain

LARGEST = 2**53  # past any moment, id, count or version modelyard stores; exact in JSON
Moment = Annotated[int | None, Query(ge=0, le=LARGEST, description="epoch milliseconds (UTC)")]
Limit = Annotated[int, Query(ge=0, le=LARGEST, description="at most this many (0: all)")]
Cursor = Annotated[int | None, Query(ge=0, le=LARGEST, description="after this id")]
VersionNumber = Annotated[int | None, Query(ge=1, le=LARGEST)]
"""Query parameters that are whole numbers, bounded so that a huge one is a 422 that names
it rather than a number the database cannot hold."""

NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
"""How a number JSON cannot hold travels: as a string (a metric may be NaN or infinite).
The SDK reads these strings back as floats wherever a float is expected."""


def respond(value: Any, status_code: int = 200) -> Response:
    """``value`` as strict JSON: never a bare ``NaN`` or ``Infinity``."""
    data = plain(value)
    try:
        body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValueError:  # rare: walk the answer only when it holds a non-finite number
        body = json.dumps(finite(data), separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status_code, media_type="application/json")


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string (``NON_FINITE``)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return NON_FINITE["nan" if value != value else "inf" if value > 0 else "-inf"]
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


class Body(BaseModel):
    """A request body: a field the route does not know is refused (422 naming it), so a
    client can never believe it set something the server ignored, such as who acted:
    the actor always comes from the API key."""

    model_config = ConfigDict(extra="forbid")


class ExperimentIn(Body):
    name: str
    description: str = ""


class RunIn(Body):
    experiment: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] | None = None
    environment_id: str | None = None


class MetricColumns(Body):
    """Metric points as parallel arrays: compact to send, fast to read."""

    keys: list[str] = Field(default_factory=list)
    values: list[float | None] = Field(default_factory=list)
    steps: list[int] = Field(default_factory=list)
    timestamps: list[int] = Field(default_factory=list)


class BatchIn(Body):
    metrics: MetricColumns = Field(default_factory=MetricColumns)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)


class FinishIn(Body):
    status: str
    error: str | None = None


class SearchIn(Body):
    experiments: list[str] | None = None
    filter: str | None = None
    order_by: str | list[str] | None = None
    max_results: int = Field(default=100, ge=1, le=LARGEST)
    cursor: str | None = None


class ModelIn(Body):
    name: str
    description: str = ""
    tags: dict[str, Any] | None = None


class ModelUpdate(Body):
    description: str | None = None
    tags: dict[str, Any] | None = None


class VersionIn(Body):
    source: str
    run_id: str | None = None
    description: str = ""
    tags: dict[str, Any] | None = None


class AliasIn(Body):
    version: int


class StageIn(Body):
    stage: str
    comment: str = ""
    archive_others: bool = False


class ColumnIn(Body):
    name: str
    type: str


class DatasetIn(Body):
    """What a run records of a dataset: content fingerprint, schema and size; ``stored``
    when its Parquet content was uploaded first (``PUT /datasets/{fingerprint}/content``)."""

    name: str
    role: str
    fingerprint: str
    row_count: int
    columns: list[ColumnIn]
    uri: str | None = None
    stored: bool = False


class EndpointIn(Body):
    name: str
    routes: list[dict[str, Any]]
    shadows: list[dict[str, Any]] = Field(default_factory=list)
    batching: dict[str, Any] | None = None
    description: str = ""
    comment: str = ""


class EndpointUpdate(Body):
    routes: list[dict[str, Any]] | None = None
    shadows: list[dict[str, Any]] | None = None
    batching: dict[str, Any] | None = None
    description: str | None = None
    comment: str = ""


class RollbackIn(Body):
    to: int | None = Field(default=None, ge=-LARGEST, le=LARGEST)
    comment: str = ""


class LabelIn(Body):
    id: str
    label: Any


class LabelsIn(Body):
    labels: list[LabelIn]
