"""Who may call the data plane: the bearer key's principal, checked per route.

The key is read from ``Authorization: Bearer <key>`` with the API server's own
parser (``governance.identity.bearer_key``) and its answer is reused for 2 s
(``Identity.authenticate_recent``), so a revoked key stops within 2 s and a
prediction does not wait for a database read. A route naming an endpoint is
checked in the workspace that owns it:

- ``predict``: a user key whose role there allows predicting, or an endpoint key
  for *that* endpoint;
- anything else: the role held in that workspace.

A route naming no endpoint (``/metrics``, ``/endpoints``, ``/v2``) needs a role
allowing it in any workspace. An endpoint key reaches prediction routes of its
own endpoint only, and a refusal says so. Every 401 and 403 is audited with
``plane: serving``.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from modelyard.domain.identity import DEFAULT_WORKSPACE, Permission, Principal
from modelyard.errors import ModelyardError, PermissionDenied
from modelyard.governance.audit import AuditLog
from modelyard.governance.identity import Identity, bearer_key
from modelyard.governance.workspaces import Workspaces


class Access:
    """The data plane's gate: keys checked by ``identity``, endpoints' owners from
    ``workspaces``, refusals recorded in ``audit``.

    >>> app = create_serving_app(runtime, Access(identity, workspaces, audit))
    """

    def __init__(self, identity: Identity, workspaces: Workspaces, audit: AuditLog) -> None:
        self.identity = identity
        self.workspaces = workspaces
        self.audit = audit

    async def authorize(
        self, request: Request, permission: Permission, endpoint: str | None
    ) -> None:
        """Refuse the request unless its key allows ``permission`` (on ``endpoint``).

        The principal is left in ``request.state.principal`` (acting in the endpoint's
        workspace where it names one) for the handler and the audit of a refusal.
        """
        principal = await self.principal_of(request)
        request.state.principal = principal
        if principal.endpoint is not None:
            _check_endpoint_key(principal.endpoint, permission, endpoint)
            return
        if endpoint is None:
            _check_any_role(principal, permission)
            return
        workspace = await self.workspace_of(endpoint)
        if permission is Permission.PREDICT:
            _check_predict(principal, endpoint, workspace)
            return
        request.state.principal = _acting(principal, permission, workspace)

    async def principal_of(self, request: Request) -> Principal:
        token = bearer_key(request.headers.get("authorization", ""))
        cached = self.identity.recent(token) if token else None
        if cached is not None:
            return cached
        return await run_in_threadpool(self.identity.authenticate_recent, token)

    async def workspace_of(self, endpoint: str) -> str:
        """The workspace owning ``endpoint`` (``default`` for one the store does not know)."""
        known = self.workspaces.known_endpoint(endpoint)
        if known is not None:
            return known
        found = await run_in_threadpool(self.workspaces.owner, "endpoint", endpoint)
        return found or DEFAULT_WORKSPACE

    def audit_refusal(self, request: Request, exc: ModelyardError) -> None:
        """Record a 401 or 403 of the data plane in the audit log (blocking: run it in a thread)."""
        principal: Principal | None = getattr(request.state, "principal", None)
        self.audit.record(
            actor=principal.user if principal else "anonymous",
            key_id=principal.key_id if principal else None,
            action=f"{request.method} {request.url.path}",
            resource=request.url.path,
            outcome="denied",
            status=exc.status_code,
            client=request.client.host if request.client else "",
            summary={"reason": exc.message, "plane": "serving"},
        )


def access_of(request: Request) -> Access:
    """The ``Access`` the app serving ``request`` was built with."""
    access: Access = request.app.state.access
    return access


def _check_endpoint_key(scope: str, permission: Permission, endpoint: str | None) -> None:
    if permission is Permission.PREDICT and endpoint == scope:
        return
    message = f"an endpoint key for '{scope}' may only predict on that endpoint"
    if endpoint is not None and endpoint != scope:
        message += f", not on '{endpoint}'"
    raise PermissionDenied(message)


def _check_any_role(principal: Principal, permission: Permission) -> None:
    if not any(replace(principal, role=role).can(permission) for _, role in principal.roles):
        raise PermissionDenied(
            f"user '{principal.user}' has no role that allows '{permission.value}'"
        )


def _check_predict(principal: Principal, endpoint: str, workspace: str) -> None:
    if principal.may_predict(endpoint, workspace):
        return
    role = principal.role_in(workspace)
    held = f"the {role.value} role" if role else "no role"
    raise PermissionDenied(
        f"user '{principal.user}' has {held} in workspace '{workspace}', "
        f"so may not call endpoint '{endpoint}'"
    )


def _acting(principal: Principal, permission: Permission, workspace: str) -> Principal:
    acting = principal.acting_in(workspace)
    if not acting.can(permission):
        raise PermissionDenied(
            f"user '{principal.user}' has the {acting.role.value} role in workspace "
            f"'{workspace}', which does not allow '{permission.value}'"
        )
    return acting
