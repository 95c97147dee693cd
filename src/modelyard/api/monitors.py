"""Monitors, their results and alerts, retraining requests and reference profiles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, require_owned, workspace_of
from modelyard.api.wire import Body, Limit, Moment, respond
from modelyard.domain.identity import Permission

router = APIRouter(prefix="/api/v1", tags=["monitoring"], responses=ERROR_RESPONSES)


class MonitorIn(Body):
    name: str
    spec: dict[str, Any]


class MonitorUpdate(Body):
    changes: dict[str, Any] = Field(default_factory=dict)
    enabled: bool | None = None


class CommentIn(Body):
    comment: str = ""


class ReferenceIn(Body):
    version: str
    dataset: str | None = None
    target: str | None = None


@router.post("/monitors", status_code=201, **guard(Permission.MONITOR))
def create_monitor(body: MonitorIn, request: Request) -> Response:
    monitors = services_of(request).monitors
    monitor = monitors.create(body.name, body.spec, workspace=workspace_of(request))
    return respond(monitor.to_dict(), 201)


@router.get("/monitors", **guard(Permission.READ))
def list_monitors(request: Request, endpoint: str | None = None) -> Response:
    found = services_of(request).monitors.list(endpoint=endpoint, workspace=workspace_of(request))
    return respond([m.to_dict() for m in found])


@router.get("/monitors/{name}", **guard(Permission.READ))
def get_monitor(name: str, request: Request) -> Response:
    return respond(services_of(request).monitors.get(name).to_dict())


@router.patch("/monitors/{name}", **guard(Permission.MONITOR))
def update_monitor(name: str, body: MonitorUpdate, request: Request) -> Response:
    monitor = services_of(request).monitors.update(
        name, body.changes, enabled=body.enabled, workspace=workspace_of(request)
    )
    return respond(monitor.to_dict())


@router.post("/monitors/{name}/run", **guard(Permission.MONITOR))
def run_monitor(name: str, request: Request) -> Response:
    """Compute every due window of the monitor now (as a worker would)."""
    return respond(services_of(request).monitors.run(name).to_dict())


@router.get("/monitors/{name}/windows", **guard(Permission.READ))
def monitor_windows(name: str, request: Request, limit: Limit = 100) -> Response:
    return respond(services_of(request).monitors.windows(name, limit=limit))


@router.get("/monitors/{name}/results", **guard(Permission.READ))
def monitor_results(
    name: str,
    request: Request,
    check: str | None = None,
    column: str | None = None,
    metric: str | None = None,
    version: str | None = None,
    since: Moment = None,
    until: Moment = None,
) -> Response:
    """Results as a time series, oldest window first."""
    return respond(
        services_of(request).monitors.results(
            name,
            check=check,
            column=column,
            metric=metric,
            version=version,
            since=since,
            until=until,
        )
    )


@router.get("/monitors/{name}/report", response_class=HTMLResponse, **guard(Permission.READ))
def monitor_report(name: str, request: Request) -> Response:
    """A self-contained HTML report: distributions, drift and accuracy over time, alerts."""
    return HTMLResponse(services_of(request).monitors.report(name))


@router.get("/alerts", **guard(Permission.READ))
def list_alerts(
    request: Request,
    monitor: str | None = None,
    status: str | None = None,
    since: Moment = None,
) -> Response:
    services = services_of(request)
    ids = services.monitors.monitor_ids(monitor, workspace_of(request))
    return respond(services.alerts.alerts(ids, status=status, since=since))


@router.post("/alerts/{alert_id}/acknowledge", **guard(Permission.MONITOR))
def acknowledge_alert(alert_id: str, body: CommentIn, request: Request) -> Response:
    """Acknowledge an alert by hand (once): who is on it, with a comment."""
    return respond(services_of(request).alerts.acknowledge(alert_id, comment=body.comment))


@router.get("/retraining-requests", **guard(Permission.READ))
def list_requests(
    request: Request, monitor: str | None = None, status: str | None = None
) -> Response:
    services = services_of(request)
    ids = services.monitors.monitor_ids(monitor, workspace_of(request))
    return respond(services.alerts.requests(ids, status=status))


@router.post("/retraining-requests/{request_id}/close", **guard(Permission.MONITOR))
def close_request(request_id: str, body: CommentIn, request: Request) -> Response:
    return respond(services_of(request).alerts.close_request(request_id, comment=body.comment))


@router.get("/references", **guard(Permission.READ))
def get_reference(version: str, request: Request) -> Response:
    """The reference profile of a version (``model/number`` or ``model@alias``)."""
    return respond(services_of(request).references.get(version).to_dict())


@router.post("/references", status_code=201, **guard(Permission.MONITOR))
def build_reference(body: ReferenceIn, request: Request) -> Response:
    require_owned(request, "version", body.version)
    built = services_of(request).references.build(
        body.version, dataset=body.dataset, target=body.target
    )
    return respond(built.to_dict(), 201)
