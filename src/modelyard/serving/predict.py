"""The plain JSON prediction route: ``POST /endpoints/{name}/predict``::

    POST /endpoints/churn/predict
    {"records": [{"age": 41, "plan": "pro"}], "scores": true, "sticky_key": "customer-7"}

    {"endpoint": "churn", "revision": 3, "model": "churn", "version": 4,
     "ids": ["3f9c0a1b2c3d-0000002a"], "predictions": [1], "scores": [[0.2, 0.8]]}

Rows come as ``records`` (one object per row) or ``columns`` (one list per
column). The route among weighted ones is random, unless the request names a
sticky key (``sticky_key``): the same key always reaches the same version.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import InvalidInput
from modelyard.serving.wire import json_body, respond, runtime_of

STICKY_HEADER = "X-Sticky-Key"
STICKY_FIELD = "sticky_key"
STICKY_HELP = (
    "Sends every request with the same key to the same version of a split endpoint "
    "while its weights stay the same (the key's CRC-32 modulo 100 falls in one route's "
    "weight band), e.g. a customer id for a stable A/B split. The X-Sticky-Key header "
    "wins over the sticky_key field; with neither, each request picks a route at "
    "random by weight. No other header is read."
)


async def predict(request: Request) -> Response:
    """Answer rows with the version chosen by weight or sticky key, one id per row."""
    runtime = runtime_of(request)
    state = runtime.endpoint(request.path_params["name"])
    body = await json_body(request)
    rows = rows_of(body)
    lane, ids, outputs, scores = await runtime.predict(state, rows, sticky_key(request, body))
    answer: dict[str, Any] = {
        "endpoint": state.name,
        "revision": state.revision,
        "model": lane.model.model,
        "version": lane.model.version,
        "ids": ids,
        "predictions": outputs,
    }
    if scores is not None and isinstance(body, dict) and body.get("scores"):
        answer["scores"] = scores
    return respond(answer, headers={"x-modelyard-version": lane.model.ref})


def sticky_key(request: Request, fields: Any) -> str | None:
    """The request's sticky key: the ``X-Sticky-Key`` header, else ``fields["sticky_key"]``."""
    header = request.headers.get(STICKY_HEADER)
    if header:
        return header
    value = fields.get(STICKY_FIELD) if isinstance(fields, dict) else None
    return str(value) if value is not None else None


def rows_of(body: Any) -> list[dict[str, Any]]:
    """Rows from ``{"records": [...]}`` or ``{"columns": {...}}``."""
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object with 'records' or 'columns'")
    if "records" in body:
        rows = _records(body["records"])
    elif "columns" in body:
        rows = _columns(body["columns"])
    else:
        raise InvalidInput("expected a JSON object with 'records' or 'columns'")
    if not rows:
        raise InvalidInput("the request has no rows")
    return rows


def _records(records: Any) -> list[dict[str, Any]]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput("'records' must be a list of objects, one per row")
    return records


def _columns(columns: Any) -> list[dict[str, Any]]:
    if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
        raise InvalidInput("'columns' must be an object of equally long lists")
    if len({len(v) for v in columns.values()}) > 1:
        sizes = ", ".join(f"'{k}': {len(v)}" for k, v in columns.items())
        raise InvalidInput(f"'columns' lists differ in length ({sizes})")
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
