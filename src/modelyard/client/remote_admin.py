"""Users, workspaces, API keys and the audit log in the remote backend, over the
existing admin routes (the server checks that the key's user may administer)."""

from __future__ import annotations

from typing import Any

from modelyard.client.remote_base import RemoteBase, _path, parse
from modelyard.domain.identity import (
    ApiKey,
    AuditEvent,
    User,
    Workspace,
    check_workspace_name,
)


class RemoteAdmin(RemoteBase):
    """Administration, over HTTP."""

    def list_users(self, workspace: str | None) -> list[User]:
        if workspace is None:
            return parse(list[User], self._json("GET", "/users"))
        path = f"/workspaces/{_path(check_workspace_name(workspace))}/members"
        return parse(list[User], self._json("GET", path))

    def create_user(self, name: str, role: str, workspace: str) -> User:
        body = {"name": name, "role": role, "workspace": workspace}
        return parse(User, self._json("POST", "/users", json=body))

    def set_role(self, user: str, role: str, workspace: str) -> User:
        path = f"/workspaces/{_path(check_workspace_name(workspace))}/members/{_path(user)}"
        return parse(User, self._json("PUT", path, json={"role": role}))

    def remove_member(self, user: str, workspace: str) -> User:
        path = f"/workspaces/{_path(check_workspace_name(workspace))}/members/{_path(user)}"
        return parse(User, self._json("DELETE", path))

    def list_workspaces(self) -> list[Workspace]:
        return parse(list[Workspace], self._json("GET", "/workspaces"))

    def create_workspace(self, name: str, admin: str | None) -> Workspace:
        """Through the server its creator administers it too (and ``admin`` when given)."""
        body = {"name": name, "admin": admin}
        return parse(Workspace, self._json("POST", "/workspaces", json=body))

    def create_key(
        self, user: str, *, name: str, expires_in_days: float | None, endpoint: str | None
    ) -> tuple[ApiKey, str]:
        body = {"name": name, "expires_in_days": expires_in_days, "endpoint": endpoint}
        answer = self._json("POST", f"/users/{_path(user)}/keys", json=body)
        return parse(ApiKey, answer["key"]), str(answer["token"])

    def list_keys(self, user: str | None) -> list[ApiKey]:
        params = {} if user is None else {"user": user}
        return parse(list[ApiKey], self._json("GET", "/keys", params=params))

    def revoke_key(self, key_id: str) -> ApiKey:
        return parse(ApiKey, self._json("DELETE", f"/keys/{_path(key_id)}"))

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
        filters: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "resource": resource,
            "since": since,
            "until": until,
            "workspace": workspace,
            "after": after,
        }
        params = {k: v for k, v in filters.items() if v is not None}
        params["limit"] = limit
        return parse(list[AuditEvent], self._json("GET", "/audit", params=params))

    def verify_audit(self) -> int:
        return int(self._json("GET", "/audit/verify")["events"])
