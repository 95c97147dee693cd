"""Routes for experiments, runs, metrics, artifacts and datasets."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.dependencies import services_of
from modelyard.api.security import guard
from modelyard.api.uploads import spooled_body
from modelyard.api.wire import (
    BatchIn,
    DatasetIn,
    ExperimentIn,
    FinishIn,
    RunIn,
    SearchIn,
    respond,
)
from modelyard.domain.datasets import Column
from modelyard.domain.identity import Permission
from modelyard.domain.runs import Environment, MetricPoint
from modelyard.errors import InvalidInput
from modelyard.tracking.environment import environment_id

router = APIRouter(prefix="/api/v1", tags=["tracking"])


@router.post("/experiments", status_code=201, **guard(Permission.TRACK))
def create_experiment(body: ExperimentIn, request: Request) -> Response:
    return respond(
        services_of(request).tracking.create_experiment(body.name, body.description), 201
    )


@router.get("/experiments", **guard(Permission.READ))
def list_experiments(request: Request) -> Response:
    return respond(services_of(request).tracking.list_experiments())


@router.get("/experiments/{name}", **guard(Permission.READ))
def get_experiment(name: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_experiment(name))


def _environment(data: dict[str, Any] | None) -> Environment | None:
    if data is None:
        return None
    texts = ("python", "platform", "host", "user")
    fields: dict[str, Any] = {
        k: data.get(k) for k in (*texts, "packages", "git_commit", "git_dirty")
    }
    bad = [k for k in texts if not isinstance(fields[k], str)]
    if bad or not isinstance(fields["packages"], dict):
        wrong = ", ".join(bad or ["packages"])
        raise InvalidInput(f"environment: {wrong} missing or of the wrong type")
    return Environment(id=environment_id(fields), **fields)


@router.post("/runs", status_code=201, **guard(Permission.TRACK))
def create_run(body: RunIn, request: Request) -> Response:
    run = services_of(request).tracking.create_run(
        body.experiment,
        name=body.name,
        params=body.params,
        tags=body.tags,
        environment=_environment(body.environment),
        environment_id=body.environment_id,
        user=body.user,
    )
    return respond(run, 201)


@router.get("/runs/{run_id}", **guard(Permission.READ))
def get_run(run_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_run(run_id))


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


@router.post("/runs/{run_id}/batch", status_code=204, **guard(Permission.TRACK))
def log_batch(run_id: str, body: BatchIn, request: Request) -> Response:
    services_of(request).tracking.log_batch(
        run_id, metrics=_points(body), params=body.params, tags=body.tags
    )
    return Response(status_code=204)


@router.post("/runs/{run_id}/finish", **guard(Permission.TRACK))
def finish_run(run_id: str, body: FinishIn, request: Request) -> Response:
    return respond(
        services_of(request).tracking.finish_run(run_id, _status(body.status), body.error)
    )


def _status(value: str) -> str:
    from modelyard.domain.runs import RunStatus

    try:
        return RunStatus(value.upper()).value
    except ValueError:
        raise InvalidInput(
            f"unknown run status {value!r} (expected FINISHED, FAILED or KILLED)"
        ) from None


@router.get("/runs/{run_id}/metrics/{key:path}", **guard(Permission.READ))
def metric_history(run_id: str, key: str, request: Request) -> Response:
    return respond(services_of(request).tracking.metric_history(run_id, key))


@router.get("/environments/{environment_id}", **guard(Permission.READ))
def get_environment(environment_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_environment(environment_id))


def _experiment_ids(request: Request, names: list[str] | None) -> list[int] | None:
    if names is None:
        return None
    tracking = services_of(request).tracking
    return [tracking.get_experiment(name).id for name in names]


@router.post("/runs/search", **guard(Permission.READ))
def search_runs(body: SearchIn, request: Request) -> Response:
    ids = _experiment_ids(request, body.experiments)
    page = services_of(request).queries.search(
        ids, body.filter, body.order_by, body.max_results, body.cursor
    )
    return respond(page)


ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.post(
    "/runs/frame",
    response_class=Response,
    responses={200: {"content": {ARROW_STREAM: {}}}},
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


@router.put("/runs/{run_id}/artifacts/{path:path}", status_code=201, **guard(Permission.TRACK))
async def log_artifact(run_id: str, path: str, request: Request) -> Response:
    body = await spooled_body(request)
    with body:
        artifact = await run_in_threadpool(
            services_of(request).tracking.log_artifact, run_id, path, body
        )
    return respond(artifact, 201)


@router.get("/runs/{run_id}/artifacts", **guard(Permission.READ))
def list_artifacts(run_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.list_artifacts(run_id))


@router.get("/runs/{run_id}/artifacts/{path:path}", **guard(Permission.READ))
def read_artifact(run_id: str, path: str, request: Request) -> StreamingResponse:
    handle = services_of(request).tracking.open_artifact(run_id, path)
    return StreamingResponse(_chunks(handle), media_type="application/octet-stream")


def _chunks(handle: Any) -> Any:
    with handle:
        while chunk := handle.read(1 << 20):
            yield chunk


@router.put("/datasets/{fingerprint}/content", status_code=201, **guard(Permission.TRACK))
async def store_dataset_content(fingerprint: str, request: Request) -> Response:
    """Upload a dataset's Parquet content (raw body) before recording it against a run."""
    body = await spooled_body(request)
    with body:
        datasets = services_of(request).datasets
        key = await run_in_threadpool(datasets.store_content, fingerprint, body)
    return respond({"uri": key}, 201)


@router.post("/runs/{run_id}/datasets", status_code=201, **guard(Permission.TRACK))
def log_dataset(run_id: str, body: DatasetIn, request: Request) -> Response:
    """Record a dataset against a run; ``stored`` if its content was uploaded first."""
    dataset = services_of(request).datasets.log_dataset(
        run_id,
        name=body.name,
        role=body.role,
        fingerprint=body.fingerprint,
        row_count=body.row_count,
        columns=[Column(**c) for c in body.columns],
        uri=body.uri,
        stored=body.stored,
    )
    return respond(dataset, 201)


@router.get("/runs/{run_id}/datasets", **guard(Permission.READ))
def run_datasets(run_id: str, request: Request) -> Response:
    return respond(services_of(request).datasets.run_datasets(run_id))
