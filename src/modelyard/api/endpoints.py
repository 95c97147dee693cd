"""Routes for endpoints (the serving control plane) and their prediction log.

Changing an endpoint needs the deploy permission and makes a new revision;
reading predictions is a read of prediction data and is audited like a write::

    POST  /api/v1/endpoints                      {"name", "routes", "shadows", "batching"}
    PATCH /api/v1/endpoints/churn                {"routes": [...], "comment": "canary 10%"}
    POST  /api/v1/endpoints/churn/rollback       {"to": 3}
    GET   /api/v1/endpoints/churn/predictions?version=3&since=...   (Arrow IPC stream)
    POST  /api/v1/endpoints/churn/labels         {"labels": [{"id": "...", "label": 1}]}
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import (
    LARGEST,
    Body,
    EndpointIn,
    EndpointUpdate,
    LabelsIn,
    Limit,
    Moment,
    RollbackIn,
    VersionNumber,
    respond,
)
from modelyard.domain.endpoints import Endpoint, batching_from, requests_from
from modelyard.domain.identity import Permission

router = APIRouter(prefix="/api/v1", tags=["endpoints"], responses=ERROR_RESPONSES)
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.post("/endpoints", status_code=201, response_model=Endpoint, **guard(Permission.DEPLOY))
def create_endpoint(body: EndpointIn, request: Request) -> Response:
    created = services_of(request).endpoints.create(
        body.name,
        routes=requests_from(body.routes, shadow=False) or [],
        shadows=requests_from(body.shadows, shadow=True),
        batching=batching_from(body.batching),
        description=body.description,
        comment=body.comment,
        workspace=workspace_of(request),
    )
    return respond(created, 201)


@router.get("/endpoints", response_model=list[Endpoint], **guard(Permission.READ))
def list_endpoints(request: Request) -> Response:
    return respond(services_of(request).endpoints.list(workspace_of(request)))


@router.get("/endpoints/{name}", response_model=Endpoint, **guard(Permission.READ))
def get_endpoint(name: str, request: Request) -> Response:
    return respond(services_of(request).endpoints.get(name))


@router.patch("/endpoints/{name}", response_model=Endpoint, **guard(Permission.DEPLOY))
def update_endpoint(name: str, body: EndpointUpdate, request: Request) -> Response:
    """A new revision: what the body leaves out is carried over from the current one."""
    updated = services_of(request).endpoints.update(
        name,
        routes=requests_from(body.routes, shadow=False),
        shadows=requests_from(body.shadows, shadow=True),
        batching=body.batching,
        description=body.description,
        comment=body.comment,
    )
    return respond(updated)


@router.post("/endpoints/{name}/rollback", response_model=Endpoint, **guard(Permission.DEPLOY))
def rollback_endpoint(name: str, body: RollbackIn, request: Request) -> Response:
    """A new revision with the routes of revision ``to`` (default: the previous one)."""
    endpoints = services_of(request).endpoints
    return respond(endpoints.rollback(name, to=body.to, comment=body.comment))


@router.get("/endpoints/{name}/revisions", **guard(Permission.READ))
def endpoint_revisions(name: str, request: Request) -> Response:
    return respond(services_of(request).endpoints.revisions(name))


@router.get(
    "/endpoints/{name}/predictions",
    response_class=Response,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "An Arrow IPC stream"}},
    **guard(Permission.READ),
)
def endpoint_predictions(
    name: str,
    request: Request,
    version: VersionNumber = None,
    model: str | None = None,
    role: str | None = None,
    since: Moment = None,
    until: Moment = None,
    id: list[str] | None = Query(default=None),  # noqa: B008
    limit: Limit = 10_000,
    newest_first: bool = False,
) -> Response:
    """Logged predictions (with their newest label) as an Arrow IPC stream. Audited.

    ``limit=0`` means every matching row; oldest first unless ``newest_first``."""
    request.state.audit_read = True
    services = services_of(request)
    services.endpoints.get(name)
    table = services.predictions.query(
        name,
        version=version,
        model=model,
        role=role,
        since=since,
        until=until,
        ids=id,
        limit=limit or None,
        newest_first=newest_first,
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue(), media_type=ARROW_STREAM)


@router.post("/endpoints/{name}/labels", **guard(Permission.LABEL))
def post_labels(name: str, body: LabelsIn, request: Request) -> Response:
    """Ground truth by prediction id; ids the log does not hold come back in ``unknown``."""
    labels = [(item.id, item.label) for item in body.labels]
    return respond(services_of(request).feedback.record(name, labels))


@router.get("/endpoints/{name}/accuracy", **guard(Permission.READ))
def endpoint_accuracy(
    name: str, request: Request, since: Moment = None, until: Moment = None
) -> Response:
    services = services_of(request)
    services.endpoints.get(name)
    return respond(services.predictions.accuracy(name, since=since, until=until))


@router.get("/endpoints/{name}/compare", **guard(Permission.READ))
def endpoint_compare(
    name: str, request: Request, since: Moment = None, until: Moment = None
) -> Response:
    services = services_of(request)
    services.endpoints.get(name)
    return respond(services.predictions.compare(name, since=since, until=until))


class RetentionIn(Body):
    days: int | None = Field(default=None, ge=0, le=LARGEST)


@router.put("/endpoints/{name}/retention", response_model=Endpoint, **guard(Permission.ADMIN))
def set_retention(name: str, body: RetentionIn, request: Request) -> Response:
    """Keep the endpoint's prediction log ``days`` days (null: forever)."""
    return respond(services_of(request).endpoints.set_retention(name, body.days))


@router.post("/endpoints/{name}/prune", **guard(Permission.ADMIN))
def prune_predictions(name: str, request: Request) -> Response:
    """Apply the retention policy now: delete older predictions and labels (audited)."""
    return respond({"deleted": services_of(request).retention.prune(name)})


class SubjectColumnIn(Body):
    column: str | None = None


class EraseIn(Body):
    subject: Any


@router.put("/endpoints/{name}/subject", response_model=Endpoint, **guard(Permission.ADMIN))
def set_subject_column(name: str, body: SubjectColumnIn, request: Request) -> Response:
    """The input field that identifies a data subject, for erasure requests."""
    return respond(services_of(request).endpoints.set_subject_column(name, body.column))


@router.post("/endpoints/{name}/erase", **guard(Permission.ADMIN))
def erase(name: str, body: EraseIn, request: Request) -> Response:
    """Delete every prediction and label of one subject (audited by digest, not value)."""
    return respond({"deleted": services_of(request).retention.erase(name, body.subject)})
