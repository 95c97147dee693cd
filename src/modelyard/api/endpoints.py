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

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import actor_of, guard, record_change, workspace_of
from modelyard.api.wire import Body, EndpointIn, EndpointUpdate, LabelsIn, RollbackIn, respond
from modelyard.domain.endpoints import Endpoint, batching_from, requests_from, spec_summary
from modelyard.domain.identity import Permission
from modelyard.serving.journal import subject_digest
from modelyard.serving.retention import erase_subject, prune_endpoint

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
        actor=actor_of(request),
        comment=body.comment,
        workspace=workspace_of(request),
    )
    record_change(request, after=_serving(created))
    return respond(created, 201)


def _serving(endpoint: Endpoint) -> dict[str, Any]:
    return {"revision": endpoint.revision, **spec_summary(endpoint.spec)}


@router.get("/endpoints", response_model=list[Endpoint], **guard(Permission.READ))
def list_endpoints(request: Request) -> Response:
    return respond(services_of(request).endpoints.list(workspace_of(request)))


@router.get("/endpoints/{name}", response_model=Endpoint, **guard(Permission.READ))
def get_endpoint(name: str, request: Request) -> Response:
    return respond(services_of(request).endpoints.get(name))


@router.patch("/endpoints/{name}", response_model=Endpoint, **guard(Permission.DEPLOY))
def update_endpoint(name: str, body: EndpointUpdate, request: Request) -> Response:
    """A new revision: what the body leaves out is carried over from the current one."""
    endpoints = services_of(request).endpoints
    before = endpoints.get(name)
    updated = endpoints.update(
        name,
        routes=requests_from(body.routes, shadow=False),
        shadows=requests_from(body.shadows, shadow=True),
        batching=body.batching,
        description=body.description,
        actor=actor_of(request),
        comment=body.comment,
    )
    record_change(request, before=_serving(before), after=_serving(updated))
    return respond(updated)


@router.post("/endpoints/{name}/rollback", response_model=Endpoint, **guard(Permission.DEPLOY))
def rollback_endpoint(name: str, body: RollbackIn, request: Request) -> Response:
    """A new revision with the routes of revision ``to`` (default: the previous one)."""
    endpoints = services_of(request).endpoints
    before = endpoints.get(name)
    after = endpoints.rollback(name, to=body.to, actor=actor_of(request), comment=body.comment)
    record_change(request, before=_serving(before), after=_serving(after))
    return respond(after)


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
    version: int | None = None,
    model: str | None = None,
    role: str | None = None,
    since: int | None = None,
    until: int | None = None,
    id: list[str] | None = Query(default=None),  # noqa: B008
    limit: int = 10_000,
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
    services = services_of(request)
    services.endpoints.get(name)
    result = services.predictions.record_labels(
        name, [(item.id, item.label) for item in body.labels], actor=actor_of(request)
    )
    record_change(request, after={"recorded": result.recorded, "unknown": len(result.unknown)})
    return respond(result)


@router.get("/endpoints/{name}/accuracy", **guard(Permission.READ))
def endpoint_accuracy(
    name: str, request: Request, since: int | None = None, until: int | None = None
) -> Response:
    services = services_of(request)
    services.endpoints.get(name)
    return respond(services.predictions.accuracy(name, since=since, until=until))


@router.get("/endpoints/{name}/compare", **guard(Permission.READ))
def endpoint_compare(
    name: str, request: Request, since: int | None = None, until: int | None = None
) -> Response:
    services = services_of(request)
    services.endpoints.get(name)
    return respond(services.predictions.compare(name, since=since, until=until))


class RetentionIn(Body):
    days: int | None = None


@router.put("/endpoints/{name}/retention", response_model=Endpoint, **guard(Permission.ADMIN))
def set_retention(name: str, body: RetentionIn, request: Request) -> Response:
    """Keep the endpoint's prediction log ``days`` days (null: forever)."""
    endpoints = services_of(request).endpoints
    before = endpoints.get(name).retention_days
    after = endpoints.set_retention(name, body.days)
    record_change(
        request, before={"retention_days": before}, after={"retention_days": after.retention_days}
    )
    return respond(after)


@router.post("/endpoints/{name}/prune", **guard(Permission.ADMIN))
def prune_predictions(name: str, request: Request) -> Response:
    """Apply the retention policy now: delete older predictions and labels (audited)."""
    client = request.client.host if request.client else ""
    deleted = prune_endpoint(services_of(request), name, actor=actor_of(request), client=client)
    record_change(request, after={"deleted": deleted})
    return respond({"deleted": deleted})


class SubjectColumnIn(Body):
    column: str | None = None


class EraseIn(Body):
    subject: Any


@router.put("/endpoints/{name}/subject", response_model=Endpoint, **guard(Permission.ADMIN))
def set_subject_column(name: str, body: SubjectColumnIn, request: Request) -> Response:
    """The input field that identifies a data subject, for erasure requests."""
    endpoints = services_of(request).endpoints
    before = endpoints.get(name).subject_column
    after = endpoints.set_subject_column(name, body.column)
    record_change(
        request, before={"subject_column": before}, after={"subject_column": after.subject_column}
    )
    return respond(after)


@router.post("/endpoints/{name}/erase", **guard(Permission.ADMIN))
def erase(name: str, body: EraseIn, request: Request) -> Response:
    """Delete every prediction and label of one subject (audited by digest, not value)."""
    client = request.client.host if request.client else ""
    deleted = erase_subject(
        services_of(request), name, body.subject, actor=actor_of(request), client=client
    )
    record_change(
        request, after={"deleted": deleted, "subject_sha256": subject_digest(body.subject)}
    )
    return respond({"deleted": deleted})
