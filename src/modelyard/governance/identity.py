"""Users, their role in the workspace, and API keys.

A key reads ``my_<key id>_<secret>``. Only a scrypt hash of the secret is stored;
the whole key is shown once, when created. A verified key is remembered for a
short while (by a fast hash) so each request does not pay for scrypt again;
revocation and expiry are still checked on every request.

Every change publishes a ``Changed`` in its transaction: ``users/<name>`` for a
user and its memberships, ``keys/<id>`` for a key (its id, never the key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from modelyard.clock import now_ms
from modelyard.domain.endpoints import check_endpoint_name
from modelyard.domain.events import Changed
from modelyard.domain.identity import (
    DEFAULT_WORKSPACE,
    ROLE_PERMISSIONS,
    ApiKey,
    Permission,
    Principal,
    Role,
    User,
    parse_role,
)
from modelyard.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

KEY_PREFIX = "my_"
ENDPOINT_SCOPE = "endpoint:"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_REMEMBER_SECONDS = 300


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_secret(secret, bytes.fromhex(salt)), stored)


def split_key(token: str) -> tuple[str, str]:
    """(key id, secret) of a token, or ``NotAuthenticated`` without echoing it."""
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        raise NotAuthenticated("the API key is malformed")
    key_id, _, secret = token[len(KEY_PREFIX) :].partition("_")
    if not key_id or not secret:
        raise NotAuthenticated("the API key is malformed")
    return key_id, secret


def bearer_key(authorization: str) -> str | None:
    """The API key an ``Authorization: Bearer <key>`` header carries, or None.

    The one parser of the header, for the API server and the serving process alike.
    """
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Identity:
    """Create users and keys; authenticate a key to a ``Principal``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[str, tuple[bytes, float]] = {}
        self._recent: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def _workspace_id(self, conn: Connection, workspace: str) -> int:
        row = conn.execute(
            select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
        ).first()
        if row is not None:
            return int(row.id)
        if workspace != DEFAULT_WORKSPACE:
            raise NotFound(f"workspace '{workspace}' does not exist")
        result = conn.execute(
            t.workspaces.insert().values(name=DEFAULT_WORKSPACE, created_at=now_ms())
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def create_user(
        self, name: str, role: Role | str, *, workspace: str = DEFAULT_WORKSPACE
    ) -> User:
        """A new user, member of ``workspace`` with ``role``."""
        if not name or len(name) > 250:
            raise InvalidInput("a user name must be 1 to 250 characters")
        chosen = parse_role(role) if isinstance(role, str) else role
        try:
            with self.db.write() as conn:
                workspace_id = self._workspace_id(conn, workspace)
                user_id = conn.execute(
                    t.users.insert().values(name=name, disabled=False, created_at=now_ms())
                ).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(
                    t.memberships.insert().values(
                        user_id=user_id, workspace_id=workspace_id, role=chosen.value
                    )
                )
                after = {"workspace": workspace, "role": chosen.value}
                publish(
                    conn, Changed("create user", f"users/{name}", DEFAULT_WORKSPACE, after=after)
                )
        except DBIntegrityError:
            raise Conflict(f"user '{name}' already exists") from None
        return self.get_user(name, workspace)

    def get_user(self, name: str, workspace: str | None = None) -> User:
        """``name`` with its role in ``workspace`` (default: its home workspace)."""
        with self.db.read() as conn:
            users = self._users(conn, t.users.c.name == name)
        if not users:
            raise NotFound(f"user '{name}' does not exist")
        return _in_workspace(users[0], workspace) if workspace else users[0]

    def list_users(self, workspace: str | None = None) -> list[User]:
        """Every user, or the members of ``workspace`` with their role there."""
        with self.db.read() as conn:
            users = self._users(conn, None)
            w = t.workspaces.c
            known = conn.execute(select(w.id).where(w.name == workspace)).first()
        if workspace is not None and known is None and workspace != DEFAULT_WORKSPACE:
            raise NotFound(f"workspace '{workspace}' does not exist")
        if workspace is None:
            return users
        return [_in_workspace(u, workspace) for u in users if workspace in (u.workspaces or {})]

    def _users(self, conn: Connection, condition: Any) -> list[User]:
        u, m, w = t.users.c, t.memberships.c, t.workspaces.c
        query = (
            select(t.users, m.role, w.name.label("workspace"))
            .join(t.memberships, m.user_id == u.id)
            .join(t.workspaces, w.id == m.workspace_id)
            .order_by(u.name, w.name)
        )
        if condition is not None:
            query = query.where(condition)
        grouped: dict[str, list[Any]] = {}
        for row in conn.execute(query):
            grouped.setdefault(row.name, []).append(row)
        return [_user(rows) for rows in grouped.values()]

    def set_role(self, name: str, role: Role | str, *, workspace: str = DEFAULT_WORKSPACE) -> User:
        """Give ``name`` ``role`` in ``workspace``, adding the membership if it is new
        (recorded as ``add member``, a change of role as ``set role``)."""
        chosen = parse_role(role) if isinstance(role, str) else role
        user = self.get_user(name)
        with self.db.write() as conn:
            workspace_id = self._workspace_id(conn, workspace)
            if chosen is not Role.ADMIN:
                self._keep_an_admin(conn, workspace, workspace_id, user.id)
            before = _role_in(conn, user.id, workspace_id)
            m = t.memberships.c
            if before is None:
                conn.execute(
                    t.memberships.insert().values(
                        user_id=user.id, workspace_id=workspace_id, role=chosen.value
                    )
                )
            else:
                conn.execute(
                    update(t.memberships)
                    .where(m.user_id == user.id, m.workspace_id == workspace_id)
                    .values(role=chosen.value)
                )
            action = "add member" if before is None else "set role"
            change = Changed(
                action,
                f"users/{name}",
                workspace,
                {"workspace": workspace, "role": before},
                {"workspace": workspace, "role": chosen.value},
            )
            publish(conn, change)
        self._recent.clear()
        return self.get_user(name, workspace)

    def remove_member(self, name: str, workspace: str) -> User:
        """Take ``name`` out of ``workspace``; a user keeps at least one membership."""
        user = self.get_user(name)
        memberships = user.workspaces or {}
        if workspace not in memberships:
            raise NotFound(f"user '{name}' is not a member of workspace '{workspace}'")
        if len(memberships) == 1:
            raise Conflict(
                f"workspace '{workspace}' is the only one user '{name}' belongs to: "
                "disable the user instead"
            )
        with self.db.write() as conn:
            workspace_id = self._workspace_id(conn, workspace)
            self._keep_an_admin(conn, workspace, workspace_id, user.id)
            before = _role_in(conn, user.id, workspace_id)
            m = t.memberships.c
            conn.execute(
                t.memberships.delete().where(m.user_id == user.id, m.workspace_id == workspace_id)
            )
            change = Changed(
                "remove member",
                f"users/{name}",
                workspace,
                {"workspace": workspace, "role": before},
                {"workspaces": sorted(set(memberships) - {workspace})},
            )
            publish(conn, change)
        self._recent.clear()
        return self.get_user(name)

    def _keep_an_admin(
        self, conn: Connection, workspace: str, workspace_id: int, leaving: int
    ) -> None:
        """Refuse a change that would leave ``workspace`` with no admin (nobody could
        manage its members again)."""
        m = t.memberships.c
        admins = (
            conn.execute(
                select(m.user_id).where(m.workspace_id == workspace_id, m.role == Role.ADMIN.value)
            )
            .scalars()
            .all()
        )
        if admins == [leaving]:
            raise Conflict(
                f"this would leave workspace '{workspace}' without an admin: "
                "make another member admin first"
            )

    def has_admin(self) -> bool:
        with self.db.read() as conn:
            found = conn.execute(
                select(t.memberships.c.user_id).where(t.memberships.c.role == Role.ADMIN.value)
            ).first()
        return found is not None

    def create_key(
        self,
        user_name: str,
        *,
        name: str = "",
        expires_in_days: float | None = None,
        endpoint: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for ``user_name``: (record, the whole key — shown this once).

        With ``endpoint`` the key may only call that endpoint's prediction routes,
        and only if its user may predict.
        """
        user = self.get_user(user_name)
        if endpoint is not None:
            check_endpoint_name(endpoint)
            user = self._user_for_endpoint(user, endpoint)
            if Permission.PREDICT not in ROLE_PERMISSIONS[user.role]:
                raise InvalidInput(
                    f"user '{user.name}' has the {user.role.value} role, which may not predict: "
                    "an endpoint key needs a contributor or above"
                )
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInput("a key's lifetime must be positive")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32).replace("_", "-")
        created = now_ms()
        expires = None if expires_in_days is None else created + int(expires_in_days * 86_400_000)
        with self.db.write() as conn:
            conn.execute(
                t.api_keys.insert().values(
                    id=key_id,
                    user_id=user.id,
                    name=name,
                    secret_hash=hash_secret(secret),
                    created_at=created,
                    expires_at=expires,
                    scope=f"{ENDPOINT_SCOPE}{endpoint}" if endpoint else None,
                )
            )
            record = ApiKey(key_id, user.name, name, created, expires, endpoint=endpoint)
            after = _key_summary(record)  # the key id, never the key
            publish(conn, Changed("create key", f"keys/{key_id}", DEFAULT_WORKSPACE, after=after))
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def _user_for_endpoint(self, user: User, endpoint: str) -> User:
        """``user`` with its role in the workspace of ``endpoint``, which must be one of its."""
        with self.db.read() as conn:
            owner = conn.execute(
                select(t.endpoints.c.workspace).where(t.endpoints.c.name == endpoint)
            ).scalar()
        workspace = owner or DEFAULT_WORKSPACE
        if workspace not in (user.workspaces or {}):
            raise InvalidInput(
                f"endpoint '{endpoint}' belongs to workspace '{workspace}', "
                f"of which user '{user.name}' is not a member"
            )
        return _in_workspace(user, workspace)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke key ``key_id``; revoking it again changes nothing (and is recorded)."""
        k = t.api_keys.c
        with self.db.write() as conn:
            before = _key(_key_row(conn, key_id))
            conn.execute(
                update(t.api_keys)
                .where(k.id == key_id, k.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
            revoked = _key(_key_row(conn, key_id))
            change = Changed(
                "revoke key",
                f"keys/{key_id}",
                DEFAULT_WORKSPACE,
                {"revoked_at": before.revoked_at},
                _key_summary(revoked),
            )
            publish(conn, change)
        with self._lock:
            self._verified.pop(key_id, None)
        self._recent.clear()
        return revoked

    def get_key(self, key_id: str) -> ApiKey:
        with self.db.read() as conn:
            return _key(_key_row(conn, key_id))

    def list_keys(self, user_name: str | None = None) -> list[ApiKey]:
        k, u = t.api_keys.c, t.users.c
        query = select(t.api_keys, u.name.label("user")).join(t.users, u.id == k.user_id)
        if user_name:
            query = query.where(u.name == user_name)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(k.created_at)).all()
        return [_key(r) for r in rows]

    def _key_rows(self, key_id: str) -> list[Any]:
        """The key with its user, one row per membership of the user (one query)."""
        k, u, m, w = t.api_keys.c, t.users.c, t.memberships.c, t.workspaces.c
        query = (
            select(t.api_keys, u.name.label("user"), u.disabled, m.role, w.name.label("workspace"))
            .join(t.users, u.id == k.user_id)
            .outerjoin(t.memberships, m.user_id == u.id)
            .outerjoin(t.workspaces, w.id == m.workspace_id)
            .where(k.id == key_id)
            .order_by(w.name)
        )
        with self.db.read() as conn:
            return list(conn.execute(query).all())

    def authenticate(self, token: str | None) -> Principal:
        """The principal behind ``token``; ``NotAuthenticated`` names the key id, never the key."""
        if not token:
            raise NotAuthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        key_id, secret = split_key(token)
        rows = self._key_rows(key_id)
        if not rows:
            raise NotAuthenticated(f"API key '{key_id}' is not valid")
        row = rows[0]
        if row.revoked_at is not None:
            raise NotAuthenticated(f"API key '{key_id}' was revoked")
        if row.expires_at is not None and row.expires_at <= now_ms():
            raise NotAuthenticated(f"API key '{key_id}' has expired")
        if row.disabled:
            raise NotAuthenticated(f"user '{row.user}' is disabled")
        if not self._secret_ok(key_id, secret, row.secret_hash):
            raise NotAuthenticated(f"API key '{key_id}' is not valid")
        roles = {r.workspace: Role(r.role) for r in rows if r.workspace is not None}
        home = _home_of_names(list(roles))
        return Principal(
            user=row.user,
            role=roles.get(home, Role.VIEWER),
            key_id=key_id,
            workspace=home,
            endpoint=_endpoint_of(row.scope),
            roles=tuple(roles.items()),
        )

    def recent(self, token: str) -> Principal | None:
        """The principal ``authenticate_recent`` remembered for ``token``, if still fresh."""
        cached = self._recent.get(hashlib.sha256(token.encode()).digest())
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    def authenticate_recent(self, token: str | None, max_age: float = 2.0) -> Principal:
        """``authenticate`` with its answer reused for ``max_age`` seconds.

        For the prediction path, where a database read per request would cost
        more than the prediction: a revoked key stops working within
        ``max_age`` seconds.
        """
        if not token:
            return self.authenticate(token)
        fingerprint = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._recent.get(fingerprint)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = self.authenticate(token)
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent[fingerprint] = (principal, now + max_age)
        return principal

    def _secret_ok(self, key_id: str, secret: str, stored: str) -> bool:
        fast = hashlib.sha256(f"{key_id}:{secret}".encode()).digest()
        with self._lock:
            remembered = self._verified.get(key_id)
        if (
            remembered
            and remembered[1] > time.monotonic()
            and hmac.compare_digest(remembered[0], fast)
        ):
            return True
        if not secret_matches(secret, stored):
            return False
        with self._lock:
            self._verified[key_id] = (fast, time.monotonic() + _REMEMBER_SECONDS)
        return True


def _key_row(conn: Connection, key_id: str) -> Any:
    k, u = t.api_keys.c, t.users.c
    query = (
        select(t.api_keys, u.name.label("user"), u.disabled)
        .join(t.users, u.id == k.user_id)
        .where(k.id == key_id)
    )
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"API key '{key_id}' does not exist")
    return row


def _role_in(conn: Connection, user_id: int, workspace_id: int) -> str | None:
    """The role ``user_id`` holds in ``workspace_id``, or None if not a member."""
    m = t.memberships.c
    role = conn.execute(
        select(m.role).where(m.user_id == user_id, m.workspace_id == workspace_id)
    ).scalar()
    return None if role is None else str(role)


def _key_summary(key: ApiKey) -> dict[str, Any]:
    """What a key is, for the audit log: its id, user and limits, never the key."""
    return {
        "key_id": key.id,
        "user": key.user,
        "name": key.name,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "endpoint": key.endpoint,
    }


def _user(rows: list[Any]) -> User:
    """One user from its rows (one per membership); ``role`` is the home workspace's."""
    memberships = {row.workspace: Role(row.role) for row in rows}
    first = rows[0]
    return User(
        id=first.id,
        name=first.name,
        role=memberships[_home_of_names(list(memberships))],
        created_at=first.created_at,
        disabled=first.disabled,
        workspaces=memberships,
    )


def _home_of_names(names: list[str]) -> str:
    return DEFAULT_WORKSPACE if DEFAULT_WORKSPACE in names or not names else names[0]


def _in_workspace(user: User, workspace: str) -> User:
    role = (user.workspaces or {}).get(workspace)
    if role is None:
        raise NotFound(f"user '{user.name}' is not a member of workspace '{workspace}'")
    return replace(user, role=role)


def _endpoint_of(scope: str | None) -> str | None:
    if scope and scope.startswith(ENDPOINT_SCOPE):
        return scope[len(ENDPOINT_SCOPE) :]
    return None


def _key(row: Any) -> ApiKey:
    return ApiKey(
        row.id,
        row.user,
        row.name,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        endpoint=_endpoint_of(row.scope),
    )
