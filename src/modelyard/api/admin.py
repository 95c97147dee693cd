"""Routes for users, workspaces and their members, API keys, package signing keys and
the audit log (admins),
and ``whoami`` (everyone)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard
from modelyard.api.wire import Body, Cursor, Limit, Moment, respond
from modelyard.domain.actors import current_actor
from modelyard.domain.identity import DEFAULT_WORKSPACE, Permission
from modelyard.domain.signing import SigningKey

router = APIRouter(prefix="/api/v1", tags=["governance"], responses=ERROR_RESPONSES)


class UserIn(Body):
    name: str
    role: str
    workspace: str = DEFAULT_WORKSPACE


class WorkspaceIn(Body):
    name: str
    admin: str | None = None  # another admin besides its creator


class RoleIn(Body):
    role: str


class KeyIn(Body):
    name: str = ""
    expires_in_days: float | None = None
    endpoint: str | None = None  # a key that may only call this endpoint's predict routes


class SigningKeyIn(Body):
    name: str


@router.get("/whoami", **guard(Permission.READ))
def whoami(request: Request) -> Response:
    return respond(request.state.principal)


@router.post("/users", status_code=201, **guard(Permission.ADMIN))
def create_user(body: UserIn, request: Request) -> Response:
    user = services_of(request).identity.create_user(body.name, body.role, workspace=body.workspace)
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
    """A new workspace, administered by its creator (and ``admin`` when given); give it
    members with ``PUT /workspaces/{workspace}/members/{user}``."""
    admins = [current_actor().user, *([body.admin] if body.admin else [])]
    return respond(services_of(request).workspaces.create(body.name, admins=admins), 201)


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
    return respond(services_of(request).identity.remove_member(user, workspace))


def _set_member(request: Request, workspace: str, name: str, role: str) -> Response:
    return respond(services_of(request).identity.set_role(name, role, workspace=workspace))


@router.post("/users/{name}/keys", status_code=201, **guard(Permission.ADMIN))
def create_key(name: str, body: KeyIn, request: Request) -> Response:
    """A new key; the whole key is in this answer and never again."""
    record, token = services_of(request).identity.create_key(
        name, name=body.name, expires_in_days=body.expires_in_days, endpoint=body.endpoint
    )
    return respond({"key": record, "token": token}, 201)


@router.get("/keys", **guard(Permission.ADMIN))
def list_keys(request: Request, user: str | None = None) -> Response:
    return respond(services_of(request).identity.list_keys(user))


@router.delete("/keys/{key_id}", **guard(Permission.ADMIN))
def revoke_key(key_id: str, request: Request) -> Response:
    return respond(services_of(request).identity.revoke_key(key_id))


@router.post("/signing-keys", status_code=201, response_model=SigningKey, **guard(Permission.ADMIN))
def create_signing_key(body: SigningKeyIn, request: Request) -> Response:
    """A new Ed25519 package signing key (public half only in the answer); from now on it
    signs every version registered."""
    return respond(services_of(request).signing.create_key(body.name), 201)


@router.get("/signing-keys", response_model=list[SigningKey], **guard(Permission.ADMIN))
def list_signing_keys(request: Request) -> Response:
    return respond(services_of(request).signing.keys())


@router.get("/audit", **guard(Permission.ADMIN))
def audit_events(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    since: Moment = None,
    until: Moment = None,
    limit: Limit = 1000,
    workspace: str | None = None,
    after: Cursor = None,
) -> Response:
    """Events in order, filtered; ``after`` (an event id) pages on (``limit=0``: all)."""
    found = services_of(request).audit.events(
        actor=actor,
        action=action,
        resource=resource,
        since=since,
        until=until,
        limit=limit,
        workspace=workspace,
        after=after,
    )
    return respond(found)


@router.get("/workspaces/{workspace}/audit", **guard(Permission.ADMIN))
def workspace_audit(
    workspace: str,
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    since: Moment = None,
    until: Moment = None,
    limit: Limit = 1000,
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
