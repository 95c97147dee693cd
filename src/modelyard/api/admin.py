"""Routes for users, workspaces and their members, API keys and the audit log (admins),
and ``whoami`` (everyone)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.security import actor_of, guard, record_change
from modelyard.api.wire import Body, respond
from modelyard.domain.identity import DEFAULT_WORKSPACE, ApiKey, Permission, Role

router = APIRouter(prefix="/api/v1", tags=["governance"])


class UserIn(Body):
    name: str
    role: str
    workspace: str = DEFAULT_WORKSPACE


class WorkspaceIn(Body):
    name: str


class RoleIn(Body):
    role: str


class KeyIn(Body):
    name: str = ""
    expires_in_days: float | None = None
    endpoint: str | None = None  # a key that may only call this endpoint's predict routes


@router.get("/whoami", **guard(Permission.READ))
def whoami(request: Request) -> Response:
    return respond(request.state.principal)


@router.post("/users", status_code=201, **guard(Permission.ADMIN))
def create_user(body: UserIn, request: Request) -> Response:
    user = services_of(request).identity.create_user(body.name, body.role, workspace=body.workspace)
    record_change(
        request, after={"name": user.name, "role": user.role, "workspace": body.workspace}
    )
    return respond(user, 201)


@router.get("/users", **guard(Permission.ADMIN))
def list_users(request: Request) -> Response:
    return respond(services_of(request).identity.list_users())


@router.patch("/users/{name}", **guard(Permission.ADMIN))
def set_role(name: str, body: RoleIn, request: Request) -> Response:
    """The user's role in the ``default`` workspace (other workspaces: ``/workspaces``)."""
    return _set_member(request, DEFAULT_WORKSPACE, name, body.role)


@router.post("/workspaces", status_code=201, **guard(Permission.ADMIN))
def create_workspace(body: WorkspaceIn, request: Request) -> Response:
    """A new workspace, administered by its creator; give it members with
    ``PUT /workspaces/{workspace}/members/{user}``."""
    services = services_of(request)
    created = services.workspaces.create(body.name, actor=actor_of(request))
    # its creator administers it, so someone can add its first members
    services.identity.set_role(actor_of(request), Role.ADMIN, workspace=created.name)
    record_change(request, after={"workspace": created.name, "admin": actor_of(request)})
    return respond(services.workspaces.get(created.name), 201)


@router.get("/workspaces", **guard(Permission.ADMIN))
def list_workspaces(request: Request) -> Response:
    return respond(services_of(request).workspaces.list())


@router.get("/workspaces/{workspace}/members", **guard(Permission.ADMIN))
def list_members(workspace: str, request: Request) -> Response:
    """Members of ``workspace`` with their role there (its admins may ask)."""
    services_of(request).workspaces.get(workspace)
    return respond(services_of(request).identity.list_users(workspace))


@router.put("/workspaces/{workspace}/members/{user}", **guard(Permission.ADMIN))
def set_member(workspace: str, user: str, body: RoleIn, request: Request) -> Response:
    """Add ``user`` to ``workspace`` with a role, or change the role it has there."""
    return _set_member(request, workspace, user, body.role)


@router.delete("/workspaces/{workspace}/members/{user}", **guard(Permission.ADMIN))
def remove_member(workspace: str, user: str, request: Request) -> Response:
    identity = services_of(request).identity
    before = identity.get_user(user, workspace)
    after = identity.remove_member(user, workspace)
    record_change(
        request,
        before={"workspace": workspace, "role": before.role},
        after={"workspaces": sorted(after.workspaces or {})},
    )
    return respond(after)


def _set_member(request: Request, workspace: str, name: str, role: str) -> Response:
    identity = services_of(request).identity
    current = (identity.get_user(name).workspaces or {}).get(workspace)
    after = identity.set_role(name, role, workspace=workspace)
    record_change(
        request,
        before={"workspace": workspace, "role": current},
        after={"workspace": workspace, "role": after.role},
    )
    return respond(after)


@router.post("/users/{name}/keys", status_code=201, **guard(Permission.ADMIN))
def create_key(name: str, body: KeyIn, request: Request) -> Response:
    """A new key; the whole key is in this answer and never again."""
    record, token = services_of(request).identity.create_key(
        name, name=body.name, expires_in_days=body.expires_in_days, endpoint=body.endpoint
    )
    record_change(request, after=_key_summary(record))  # the key id, never the token
    return respond({"key": record, "token": token}, 201)


@router.get("/keys", **guard(Permission.ADMIN))
def list_keys(request: Request, user: str | None = None) -> Response:
    return respond(services_of(request).identity.list_keys(user))


@router.delete("/keys/{key_id}", **guard(Permission.ADMIN))
def revoke_key(key_id: str, request: Request) -> Response:
    revoked = services_of(request).identity.revoke_key(key_id)
    record_change(request, after=_key_summary(revoked))
    return respond(revoked)


def _key_summary(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "user": key.user,
        "name": key.name,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "endpoint": key.endpoint,
    }


@router.get("/audit", **guard(Permission.ADMIN))
def audit_events(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int = 1000,
    workspace: str | None = None,
) -> Response:
    found = services_of(request).audit.events(
        actor=actor,
        action=action,
        resource=resource,
        since=since,
        until=until,
        limit=limit,
        workspace=workspace,
    )
    return respond(found)


@router.get("/workspaces/{workspace}/audit", **guard(Permission.ADMIN))
def workspace_audit(
    workspace: str,
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int = 1000,
) -> Response:
    """The audit events of requests that acted in ``workspace`` (its admins may read them)."""
    found = services_of(request).audit.events(
        actor=actor, action=action, since=since, until=until, limit=limit, workspace=workspace
    )
    return respond(found)


@router.get("/audit/verify", **guard(Permission.ADMIN))
def verify_audit(request: Request) -> Response:
    return respond({"events": services_of(request).audit.verify(), "intact": True})


@router.get("/lineage", **guard(Permission.READ))
def lineage(node: str, request: Request) -> Response:
    """Upstream and downstream of ``node`` (``KIND:KEY``, e.g. ``version:churn/3``).

    A prediction's lineage shows its inputs' answer: reading it is audited."""
    if node.startswith("prediction:"):
        request.state.audit_read = True
    return respond(services_of(request).lineage.of(node))
