"""Routes for batch scoring job records (the scoring runs where the data is: the client).

    POST /api/v1/models/{name}/batch-jobs          {"ref": "churn@champion", ...}  start
    POST /api/v1/batch-jobs/{job_id}/finish        {"status": "succeeded", ...}   finish
    POST /api/v1/batch-jobs/{job_id}/heartbeat     still scoring (else: abandoned)
    GET  /api/v1/batch-jobs/{job_id}
    GET  /api/v1/batch-jobs?model=&status=&limit=  the request's workspace, newest first

Starting and finishing need the ``track`` permission in the model's workspace (a job
is a record of work done, like a run); only whoever started a job may finish it.
Reading needs ``read``. No input or output data ever reaches these routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import Field

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, lease_only, workspace_of
from modelyard.api.wire import Body, Limit, respond
from modelyard.batch.jobs import BatchJobs
from modelyard.domain.batch import BatchJob, JobOutcome, parse_status
from modelyard.domain.identity import Permission
from modelyard.domain.models import ModelRef
from modelyard.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["batch"], responses=ERROR_RESPONSES)


class JobIn(Body):
    ref: str
    input_uri: str
    output_uri: str
    output_format: str = "parquet"
    keep: list[str] = Field(default_factory=list)
    workers: int = 1
    engine: str | None = None  # local or ray; a client that does not say is recorded so
    log_to: str | None = None


class OutcomeIn(Body):
    status: str
    rows_in: int = Field(default=0, ge=0)
    rows_out: int = Field(default=0, ge=0)
    input_fingerprint: str | None = None
    output_fingerprint: str | None = None
    input_columns: list[tuple[str, str]] = Field(default_factory=list)
    output_columns: list[tuple[str, str]] = Field(default_factory=list)
    error: str | None = None
    workers: int | None = None  # how many scored, when the engine chose while scoring


def _jobs(request: Request) -> BatchJobs:
    services = services_of(request)
    return BatchJobs(services.db, services.catalog)


@router.post(
    "/models/{name}/batch-jobs",
    status_code=201,
    response_model=BatchJob,
    **guard(Permission.TRACK),
)
def start_job(name: str, body: JobIn, request: Request) -> Response:
    if ModelRef.parse(body.ref).name != name:
        raise InvalidInput(f"ref '{body.ref}' names another model than '{name}'")
    job = _jobs(request).start(
        body.ref,
        input_uri=body.input_uri,
        output_uri=body.output_uri,
        output_format=body.output_format,
        keep=body.keep,
        workers=body.workers,
        engine=body.engine,
        log_to=body.log_to,
    )
    return respond(job, 201)


@router.post("/batch-jobs/{job_id}/finish", response_model=BatchJob, **guard(Permission.TRACK))
def finish_job(job_id: str, body: OutcomeIn, request: Request) -> Response:
    outcome = JobOutcome(
        parse_status(body.status),
        rows_in=body.rows_in,
        rows_out=body.rows_out,
        input_fingerprint=body.input_fingerprint,
        output_fingerprint=body.output_fingerprint,
        input_columns=list(body.input_columns),
        output_columns=list(body.output_columns),
        error=body.error,
        workers=body.workers,
    )
    return respond(_jobs(request).finish(job_id, outcome))


@router.post("/batch-jobs/{job_id}/heartbeat", response_model=BatchJob, **guard(Permission.TRACK))
def heartbeat_job(job_id: str, request: Request) -> Response:
    """The job's process is still scoring: without this for a while, it shows abandoned."""
    lease_only(request)
    return respond(_jobs(request).heartbeat(job_id))


@router.get("/batch-jobs/{job_id}", response_model=BatchJob, **guard(Permission.READ))
def get_job(job_id: str, request: Request) -> Response:
    return respond(_jobs(request).get(job_id))


@router.get("/batch-jobs", response_model=list[BatchJob], **guard(Permission.READ))
def list_jobs(
    request: Request, model: str | None = None, status: str | None = None, limit: Limit = 100
) -> Response:
    jobs = _jobs(request).list(
        workspace=workspace_of(request), model=model, status=status, limit=limit
    )
    return respond(jobs)
