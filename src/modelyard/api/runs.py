"""Routes for runs: create, log, finish, read, search; ``/api/v1/runs``.

Wire formats chosen for speed:

- ``POST /runs/{id}/batch`` takes metric points as parallel arrays,
  ``{"metrics": {"keys": [...], "values": [...], "steps": [...], "timestamps": [...]},
  "params": {...}, "tags": {...}}`` (a ``null`` value is NaN);
- ``POST /runs/frame`` answers with the runs DataFrame as an Arrow IPC stream
  (``application/vnd.apache.arrow.stream``): column types, including tz-aware
  timestamps, survive the trip and the client rebuilds it without parsing JSON.
"""

from __future__ import annotations

import io
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import LARGEST, BatchIn, FinishIn, RunIn, SearchIn, respond
from modelyard.domain.identity import Permission
from modelyard.domain.runs import Environment, MetricPoint, Run, RunPage, RunStatus
from modelyard.errors import InvalidInput
from modelyard.tracking.environment import environment_id

router = APIRouter(prefix="/api/v1", tags=["runs"], responses=ERROR_RESPONSES)

ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.post("/runs", status_code=201, response_model=Run, **guard(Permission.TRACK))
def create_run(body: RunIn, request: Request) -> Response:
    run = services_of(request).tracking.create_run(
        body.experiment,
        name=body.name,
        params=body.params,
        tags=body.tags,
        environment=_environment(body.environment),
        environment_id=body.environment_id,
        workspace=workspace_of(request),
    )  # the run's user is the key's (the current actor), never a name the client claims
    return respond(run, 201)


def _environment(data: dict[str, Any] | None) -> Environment | None:
    if data is None:
        return None
    texts = ("python", "platform", "host", "user")
    fields: dict[str, Any] = {
        k: data.get(k) for k in (*texts, "packages", "git_commit", "git_dirty", "entry_point")
    }
    bad = [k for k in texts if not isinstance(fields[k], str)]
    if not isinstance(fields["entry_point"], dict | None):
        bad.append("entry_point")
    if bad or not isinstance(fields["packages"], dict):
        wrong = ", ".join(bad or ["packages"])
        raise InvalidInput(f"environment: {wrong} missing or of the wrong type")
    return Environment(id=environment_id(fields), **fields)


# The search routes come before /runs/{run_id}, or "search" would be taken for a run id.
@router.post("/runs/search", response_model=RunPage, **guard(Permission.READ))
def search_runs(body: SearchIn, request: Request) -> Response:
    """One page of runs matching ``filter``; send ``next_cursor`` back for the next page."""
    return respond(_search(request, body))


@router.get("/runs/search", response_model=RunPage, **guard(Permission.READ))
def search_runs_by_query(
    request: Request,
    experiments: Annotated[list[str] | None, Query()] = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int, Query(ge=1, le=LARGEST)] = 100,
    cursor: str | None = None,
) -> Response:
    """``POST /runs/search`` as a query string (``experiments`` and ``order_by`` repeat)."""
    body = SearchIn(
        experiments=experiments,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        cursor=cursor,
    )
    return respond(_search(request, body))


def _search(request: Request, body: SearchIn) -> RunPage:
    services = services_of(request)
    ids = _experiment_ids(request, body.experiments)
    return services.queries.search(ids, body.filter, body.order_by, body.max_results, body.cursor)


def _experiment_ids(request: Request, names: list[str] | None) -> list[int] | None:
    """The named experiments, or all of the request's workspace."""
    return services_of(request).tracking.experiment_ids(names, workspace_of(request))


@router.post(
    "/runs/frame",
    response_class=Response,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "An Arrow IPC stream"}},
    **guard(Permission.READ),
)
def runs_frame(body: SearchIn, request: Request) -> Response:
    """Every matching run as one Arrow table (IPC stream): fast to send and to rebuild."""
    ids = _experiment_ids(request, body.experiments)
    frame = services_of(request).queries.frame(ids, body.filter, body.order_by)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue(), media_type=ARROW_STREAM)


@router.get("/runs/{run_id}", response_model=Run, **guard(Permission.READ))
def get_run(run_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_run(run_id))


@router.post(
    "/runs/{run_id}/batch", status_code=204, response_class=Response, **guard(Permission.TRACK)
)
def log_batch(run_id: str, body: BatchIn, request: Request) -> Response:
    """Metrics (parallel arrays), params and tags, written in one transaction."""
    points = _points(body)
    services_of(request).tracking.log_batch(
        run_id, metrics=points, params=body.params, tags=body.tags
    )
    return Response(status_code=204)


def _points(body: BatchIn) -> list[MetricPoint]:
    columns = body.metrics
    lengths = {len(columns.keys), len(columns.values), len(columns.steps), len(columns.timestamps)}
    if len(lengths) > 1:
        raise InvalidInput("metrics.keys, values, steps and timestamps must have the same length")
    return [
        MetricPoint(key, float("nan") if value is None else value, step, stamp)
        for key, value, step, stamp in zip(
            columns.keys, columns.values, columns.steps, columns.timestamps, strict=True
        )
    ]


@router.post("/runs/{run_id}/finish", response_model=Run, **guard(Permission.TRACK))
def finish_run(run_id: str, body: FinishIn, request: Request) -> Response:
    status = _status(body.status)
    return respond(services_of(request).tracking.finish_run(run_id, status, body.error))


def _status(value: str) -> RunStatus:
    try:
        return RunStatus(value.upper())
    except ValueError:
        raise InvalidInput(
            f"unknown run status {value!r} (expected FINISHED, FAILED or KILLED)"
        ) from None


@router.get(
    "/runs/{run_id}/metrics/{key:path}", response_model=list[MetricPoint], **guard(Permission.READ)
)
def metric_history(run_id: str, key: str, request: Request) -> Response:
    return respond(services_of(request).tracking.metric_history(run_id, key))


@router.get("/environments/{environment_id}", response_model=Environment, **guard(Permission.READ))
def get_environment(environment_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_environment(environment_id))
