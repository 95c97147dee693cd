"""Users, workspaces, API keys and the audit log in the embedded backend.

Plain delegation to the services, which record every change as the current actor
(the OS user, who owns the store).
"""

from __future__ import annotations

from modelyard.client.local_base import LocalBase
from modelyard.domain.identity import DEFAULT_WORKSPACE, ApiKey, AuditEvent, User, Workspace
from modelyard.errors import Conflict


class LocalAdmin(LocalBase):
    """Administration, in-process."""

    def list_users(self, workspace: str | None) -> list[User]:
        return self.services.identity.list_users(workspace)

    def create_user(self, name: str, role: str, workspace: str) -> User:
        return self.services.identity.create_user(name, role, workspace=workspace)

    def set_role(self, user: str, role: str, workspace: str) -> User:
        return self.services.identity.set_role(user, role, workspace=workspace)

    def remove_member(self, user: str, workspace: str) -> User:
        return self.services.identity.remove_member(user, workspace)

    def list_workspaces(self) -> list[Workspace]:
        return self.services.workspaces.list()

    def create_workspace(self, name: str, admin: str | None) -> Workspace:
        """A workspace administered by ``admin``, else by the admins of ``default``: the OS
        user is no API user, so it never administers a workspace by creating it."""
        workspaces = self.services.workspaces
        admins = [admin] if admin else workspaces.admins(DEFAULT_WORKSPACE)
        if not admins:
            raise Conflict(
                f"workspace '{name}' would have no admin: name one (--admin USER), or create "
                "the platform's first admin with `modelyard admin init`"
            )
        return workspaces.create(name, admins=admins)

    def create_key(
        self, user: str, *, name: str, expires_in_days: float | None, endpoint: str | None
    ) -> tuple[ApiKey, str]:
        return self.services.identity.create_key(
            user, name=name, expires_in_days=expires_in_days, endpoint=endpoint
        )

    def list_keys(self, user: str | None) -> list[ApiKey]:
        return self.services.identity.list_keys(user)

    def revoke_key(self, key_id: str) -> ApiKey:
        return self.services.identity.revoke_key(key_id)

    def audit_events(
        self,
        *,
        actor: str | None,
        action: str | None,
        resource: str | None,
        since: int | None,
        until: int | None,
        workspace: str | None,
        after: int | None,
        limit: int,
    ) -> list[AuditEvent]:
        return self.services.audit.events(
            actor=actor,
            action=action,
            resource=resource,
            since=since,
            until=until,
            workspace=workspace,
            after=after,
            limit=limit,
        )

    def verify_audit(self) -> int:
        return self.services.audit.verify()
