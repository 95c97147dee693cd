"""``yard.admin`` and ``yard.audit``: users, workspaces, API keys and the audit log.

Embedded, they act on the store as the OS user, who owns it; through a server, as the
key's user, whom the server checks to be an admin (of ``default`` for users, keys and
the audit log; of the workspace for its members)::

    yard = modelyard.connect("http://yard.internal:8700", api_key=admin_key)
    yard.admin.create_user("ana", "contributor")
    key, token = yard.admin.create_key("ana", name="laptop", expires_in_days=90)
    yard.admin.create_workspace("fraud", admin="ana")
    yard.audit.verify()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from modelyard.client.backend import Backend
from modelyard.domain.identity import DEFAULT_WORKSPACE, ApiKey, AuditEvent, Role, User, Workspace
from modelyard.domain.signing import SigningKey
from modelyard.jsonable import plain

EXPORT_PAGE = 10_000


class AdminAPI:
    """``yard.admin``: users and their role per workspace, workspaces, API keys."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def users(self, workspace: str | None = None) -> list[User]:
        """Every user with all its memberships, or ``workspace``'s members with their role
        there."""
        return self._backend.list_users(workspace)

    def create_user(
        self, name: str, role: Role | str, *, workspace: str = DEFAULT_WORKSPACE
    ) -> User:
        """A new user, member of ``workspace`` with ``role`` (viewer, contributor,
        maintainer or admin)."""
        return self._backend.create_user(name, _role(role), workspace)

    def set_role(self, user: str, role: Role | str, *, workspace: str = DEFAULT_WORKSPACE) -> User:
        """Give ``user`` ``role`` in ``workspace``: a new membership or a changed role."""
        return self._backend.set_role(user, _role(role), workspace)

    def add_member(self, workspace: str, user: str, role: Role | str) -> User:
        """Add ``user`` to ``workspace`` with ``role`` (or change the role it has there)."""
        return self.set_role(user, role, workspace=workspace)

    def remove_member(self, workspace: str, user: str) -> User:
        """Take ``user`` out of ``workspace`` (never its last admin, nor its only
        workspace)."""
        return self._backend.remove_member(user, workspace)

    def workspaces(self) -> list[Workspace]:
        return self._backend.list_workspaces()

    def create_workspace(self, name: str, *, admin: str | None = None) -> Workspace:
        """A new workspace and who administers it.

        Through a server its creator (the key's user) is its admin, and ``admin`` too when
        given. Embedded, ``admin`` is its admin; without one, the admins of ``default``
        are (the OS user is no API user, so it never is).
        """
        return self._backend.create_workspace(name, admin)

    def admins(self, workspace: str) -> list[str]:
        """The names of ``workspace``'s admins."""
        return [u.name for u in self.users(workspace) if u.role is Role.ADMIN]

    def keys(self, user: str | None = None) -> list[ApiKey]:
        """Every API key (or ``user``'s), revoked and expired ones too: never the secret."""
        return self._backend.list_keys(user)

    def create_key(
        self,
        user: str,
        *,
        name: str = "",
        expires_in_days: float | None = None,
        endpoint: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for ``user``: its record and the whole key, shown this once.

        ``endpoint`` makes a key that may only call that endpoint's prediction routes.
        """
        return self._backend.create_key(
            user, name=name, expires_in_days=expires_in_days, endpoint=endpoint
        )

    def revoke_key(self, key_id: str) -> ApiKey:
        return self._backend.revoke_key(key_id)

    def create_signing_key(self, name: str) -> SigningKey:
        """A new Ed25519 package signing key held by the platform (only its public half
        comes back); from now on it signs every version registered.

        >>> yard.admin.create_signing_key("platform-2026").key_id
        '3f9a0c...'
        """
        return self._backend.create_signing_key(name)

    def signing_keys(self) -> list[SigningKey]:
        """The platform's signing keys, oldest first (the newest signs)."""
        return self._backend.list_signing_keys()


def _role(role: Role | str) -> str:
    return role.value if isinstance(role, Role) else role


class AuditAPI:
    """``yard.audit``: search, export and verify the hash-chained audit log.

    >>> yard.audit.verify()
    1284
    >>> [e.action for e in yard.audit.events(resource="users/ana")]
    ['create user', 'add member']
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def verify(self) -> int:
        """Recompute the hash chain: the number of events, or ``IntegrityError`` naming the
        first edited or deleted event."""
        return self._backend.verify_audit()

    def events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: int | None = None,
        until: int | None = None,
        workspace: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        """Events oldest first. ``action`` and ``resource`` are prefixes (``"create"``,
        ``"users/"``; refusals are under their route, ``"POST /api/v1/"``); ``since`` and
        ``until`` are epoch milliseconds; ``workspace`` the one a change or request was in."""
        return self._backend.audit_events(
            actor=actor,
            action=action,
            resource=resource,
            since=since,
            until=until,
            workspace=workspace,
            after=None,
            limit=limit,
        )

    def iter_events(
        self, *, since: int | None = None, until: int | None = None
    ) -> Iterator[AuditEvent]:
        """Every event between ``since`` and ``until``, fetched a page at a time."""
        after: int | None = None
        while True:
            page = self._backend.audit_events(
                actor=None,
                action=None,
                resource=None,
                since=since,
                until=until,
                workspace=None,
                after=after,
                limit=EXPORT_PAGE,
            )
            yield from page
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].id

    def export(
        self,
        target: str | os.PathLike[str] | TextIO,
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> int:
        """Write the events as JSON lines to a file (path) or a text stream; the count."""
        if isinstance(target, str | os.PathLike):
            with Path(target).open("w", encoding="utf-8") as stream:
                return self._write(stream, since, until)
        return self._write(target, since, until)

    def _write(self, stream: TextIO, since: int | None, until: int | None) -> int:
        count = 0
        for event in self.iter_events(since=since, until=until):
            stream.write(json.dumps(plain(event), sort_keys=True) + "\n")
            count += 1
        return count
