"""Every route names the permission it needs; every write and every refusal is audited.

``guard(Permission.X)`` goes into a route decorator: it authenticates the bearer
key, finds the workspace the request acts in, checks the caller's role there,
and records the permission in the OpenAPI schema
(``x-permission``) so a test can walk every route for every role. It also sets
the request's actor (``domain.actors``): the services record what a write changed,
as that actor; ``AuditMiddleware`` records refusals, failed writes and audited reads.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from modelyard.api.dependencies import services_of
from modelyard.api.session import CSRF_HEADER, SESSION_COOKIE, csrf_matches
from modelyard.bootstrap import Services
from modelyard.domain.actors import Actor, act_as
from modelyard.domain.identity import (
    DEFAULT_WORKSPACE,
    Permission,
    Principal,
    check_workspace_name,
)
from modelyard.errors import PermissionDenied, StorageUnavailable
from modelyard.governance.identity import KEY_PREFIX, bearer_key
from modelyard.governance.lineage import KINDS as LINEAGE_KINDS
from modelyard.governance.workspaces import check_same

log = logging.getLogger(__name__)

PERMISSION_KEY = "x-permission"
WORKSPACE_HEADER = "x-modelyard-workspace"
_READS = ("GET", "HEAD", "OPTIONS")
_WORKSPACES = "/api/v1/workspaces"
# platform-wide: users, keys and package signing keys span workspaces and the audit log
# is one chain; only admins of ``default`` manage them
PLATFORM_ROUTES = ("/api/v1/users", "/api/v1/keys", "/api/v1/audit", "/api/v1/signing-keys")
# a route naming a resource acts in the workspace that owns it
_OWNED_BY = (
    ("/api/v1/models/{name}", "model", "name"),
    ("/api/v1/endpoints/{name}", "endpoint", "name"),
    ("/api/v1/monitors/{name}", "monitor", "name"),
    ("/api/v1/experiments/{name}", "experiment", "name"),
    ("/api/v1/datasets/{name}", "dataset", "name"),
    ("/api/v1/runs/{run_id}", "run", "run_id"),
    ("/api/v1/retraining-requests/{request_id}", "retraining_request", "request_id"),
    ("/api/v1/alerts/{alert_id}", "alert", "alert_id"),
    ("/api/v1/secrets/{name}", "secret", "name"),
    ("/api/v1/batch-jobs/{job_id}", "batch_job", "job_id"),
)


def bearer_token(request: Request) -> str | None:
    """The request's key: its bearer key, else the web UI's session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        return bearer_key(header)
    return request.cookies.get(SESSION_COOKIE)


def _check_csrf(request: Request) -> None:
    """A write authenticated by the session cookie carries the session's CSRF token."""
    if request.method in _READS or "authorization" in request.headers:
        return
    key = request.cookies.get(SESSION_COOKIE)
    if key and not csrf_matches(key, request.headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            "a write from a browser session needs the session's CSRF token "
            "(header X-CSRF-Token); reload the page and try again"
        )


def _checker(permission: Permission) -> Any:
    async def check(request: Request) -> Principal:
        principal = await run_in_threadpool(_authorize, request, permission)
        # async, so the actor is set in the request's own context: the route (run in a
        # worker thread with a copy of it) and the services it calls see it
        actor = Actor(principal.user, key_id=principal.key_id, client=_client_of(request))
        act_as(actor)
        request.state.actor = actor
        return principal

    return check


def _authorize(request: Request, permission: Permission) -> Principal:
    request.state.permission = permission.value
    services = services_of(request)
    principal = services.identity.authenticate(bearer_token(request))
    request.state.principal = principal
    if principal.endpoint is not None:
        raise PermissionDenied(
            f"an endpoint key for '{principal.endpoint}' may only predict on that endpoint, "
            "not call the API server"
        )
    _check_csrf(request)
    request.state.workspace = _workspace_for(request, services, principal)
    principal = principal.acting_in(request.state.workspace)
    request.state.principal = principal
    if not principal.can(permission):
        raise PermissionDenied(
            f"user '{principal.user}' has the {principal.role.value} role, "
            f"which does not allow '{permission.value}'"
        )
    return principal


def _client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _workspace_for(request: Request, services: Services, principal: Principal) -> str:
    """The workspace a request acts in: the owner of the resource its path names, the
    platform's ``default`` for users, keys and the audit log, else the one chosen."""
    route = request.scope.get("route")
    template: str = route.path if route is not None else request.url.path
    if template == _WORKSPACES or template.startswith(PLATFORM_ROUTES):
        return DEFAULT_WORKSPACE
    if template.startswith(_WORKSPACES + "/{workspace}"):
        return check_workspace_name(request.path_params["workspace"])
    owner = _owner(request, services, template)
    if owner is not None:
        return owner
    chosen = request.headers.get(WORKSPACE_HEADER)
    return check_workspace_name(chosen) if chosen else principal.home_workspace()


def _owner(request: Request, services: Services, template: str) -> str | None:
    for prefix, kind, param in _OWNED_BY:
        if template.startswith(prefix):
            return services.workspaces.owner(kind, request.path_params[param])
    if template == "/api/v1/lineage":
        kind, _, key = request.query_params.get("node", "").partition(":")
        if kind in LINEAGE_KINDS and key:
            return services.workspaces.owner(kind, key)
    if template == "/api/v1/references" and request.query_params.get("version"):
        return services.workspaces.owner("version", request.query_params["version"])
    return None


def require_owned(request: Request, kind: str, key: str) -> None:
    """Refuse a request whose body names ``kind`` ``key`` of another workspace."""
    owner = services_of(request).workspaces.owner(kind, key)
    check_same(f"{kind} '{key}'", owner, workspace_of(request))


def workspace_of(request: Request) -> str:
    """The workspace a guarded request acts in (where it creates, what it lists)."""
    principal: Principal = request.state.principal
    return principal.workspace


def guard(permission: Permission) -> dict[str, Any]:
    """Keyword arguments for a route decorator that require ``permission``."""
    return {
        "dependencies": [Depends(_checker(permission))],
        "openapi_extra": {PERMISSION_KEY: permission.value},
    }


def staging_only(request: Request) -> None:
    """Mark a write that only stages files for a later change (a package's files before
    its version is registered): the later change is what the audit log records."""
    request.state.staging_only = True


def lease_only(request: Request) -> None:
    """Mark a write that only renews a lease (a batch job's heartbeat, every 30 s while it
    scores): the job's start and finish are what the audit log records."""
    request.state.lease_only = True


def _key_id_of(request: Request) -> str | None:
    token = bearer_token(request) or ""
    if not token.startswith(KEY_PREFIX):
        return None
    return token[len(KEY_PREFIX) :].partition("_")[0][:16] or None


class AuditMiddleware:
    """Record every write and every refused request before its response starts.

    A plain ASGI middleware: the event is written when the status is known and
    before the client sees the answer, so nothing is acknowledged unaudited.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # the web UI's pages call /api/v1 in-process, and those calls are audited
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def audited_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                await self._record(scope, int(message["status"]))
            await send(message)

        await self.app(scope, receive, audited_send)

    async def _record(self, scope: Any, status: int) -> None:
        request = Request(scope)
        state = request.scope.get("state", {})
        refused = status in (401, 403)
        is_read = request.method in _READS or state.get("permission") == "read"
        if is_read and not refused and not state.get("audit_read"):
            return
        quiet = state.get("staging_only") or state.get("lease_only")
        if status < 400 and (_recorded_by_services(request) or quiet):
            return
        event = _event(request, status, refused)
        services = services_of(request)
        try:
            await run_in_threadpool(lambda: services.audit.record(**event))
        except StorageUnavailable as exc:
            if status < 400:
                raise  # a change may not be acknowledged unaudited
            # a refusal or a failed write changed nothing: its answer still goes out
            log.warning("%s %s (%s) was not audited: %s", request.method, request.url.path,
                        status, exc)  # fmt: skip


def _recorded_by_services(request: Request) -> bool:
    """Whether the services recorded what this request changed (in their transactions)."""
    actor: Actor | None = request.scope.get("state", {}).get("actor")
    return bool(actor and actor.recorded)


def _event(request: Request, status: int, refused: bool) -> dict[str, Any]:
    state = request.scope.get("state", {})
    principal: Principal | None = state.get("principal")
    route = request.scope.get("route")
    outcome = "denied" if refused else "ok" if status < 400 else "error"
    return {
        "actor": principal.user if principal else "anonymous",
        "key_id": principal.key_id if principal else _key_id_of(request),
        "action": f"{request.method} {route.path if route else request.url.path}",
        "resource": request.url.path,
        "outcome": outcome,
        "status": status,
        "client": request.client.host if request.client else "",
        "summary": {
            "permission": state.get("permission"),
            "workspace": state.get("workspace"),  # where it acted, or tried to
            "path": dict(request.scope.get("path_params", {})),
            "query": dict(request.query_params),
        },
    }
