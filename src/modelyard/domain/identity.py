"""Who may do what: roles per workspace and the permissions they carry."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from typing import Any

from modelyard.errors import InvalidInput, PermissionDenied


class Role(enum.StrEnum):
    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    MAINTAINER = "maintainer"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    READ = "read"  # runs, experiments, models, versions, artifacts
    TRACK = "track"  # create runs, log metrics, params, artifacts, datasets
    REGISTER = "register"  # register versions, edit model and version tags and descriptions
    PROMOTE = "promote"  # move aliases and lifecycle stages
    DEPLOY = "deploy"  # create and change endpoints, roll them back
    PREDICT = "predict"  # call an endpoint's prediction routes
    LABEL = "label"  # post ground truth for logged predictions
    MONITOR = "monitor"  # create, edit and run monitors; handle alerts and retraining requests
    APPROVE = "approve"  # approve or reject versions (never one's own request or version)
    ADMIN = "admin"  # users, keys, audit log


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.CONTRIBUTOR: frozenset(
        {
            Permission.READ,
            Permission.TRACK,
            Permission.REGISTER,
            Permission.PREDICT,
            Permission.LABEL,
        }
    ),
    Role.MAINTAINER: frozenset(
        {
            Permission.READ,
            Permission.TRACK,
            Permission.REGISTER,
            Permission.PREDICT,
            Permission.LABEL,
            Permission.PROMOTE,
            Permission.DEPLOY,
            Permission.MONITOR,
            Permission.APPROVE,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value.lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role '{value}' (expected one of {allowed})") from None


DEFAULT_WORKSPACE = "default"
_WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_workspace_name(name: str) -> str:
    """``name`` if it can name a workspace: 1-64 of a-z, 0-9, '-' and '_', starting alphanumeric."""
    if not _WORKSPACE_NAME.fullmatch(name):
        raise InvalidInput(
            f"workspace name {name!r} is not valid: use 1 to 64 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Workspace:
    name: str
    created_at: int
    members: int = 0


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a user acting through one API key, in one workspace.

    ``roles`` holds every workspace the user belongs to with the role there;
    ``role`` is the role in ``workspace``, the one the request acts in
    (see ``acting_in``).
    """

    user: str
    role: Role
    key_id: str | None = None
    workspace: str = DEFAULT_WORKSPACE
    endpoint: str | None = None  # set for an endpoint key: it may only call that endpoint
    roles: tuple[tuple[str, Role], ...] = ()

    def can(self, permission: Permission) -> bool:
        if self.endpoint is not None:
            return False  # an endpoint key reaches no control-plane route
        return permission in ROLE_PERMISSIONS[self.role]

    def role_in(self, workspace: str) -> Role | None:
        return dict(self.roles).get(workspace)

    def acting_in(self, workspace: str) -> Principal:
        """This principal with the role it holds in ``workspace``; refused if not a member."""
        role = self.role_in(workspace)
        if role is None:
            raise PermissionDenied(f"user '{self.user}' is not a member of workspace '{workspace}'")
        return replace(self, role=role, workspace=workspace)

    def home_workspace(self) -> str:
        """Where a request that names no workspace acts: ``default`` if a member, else the
        only workspace; a member of several must name one."""
        names = [name for name, _ in self.roles]
        if DEFAULT_WORKSPACE in names or not names:
            return DEFAULT_WORKSPACE
        if len(names) == 1:
            return names[0]
        raise InvalidInput(
            f"user '{self.user}' belongs to workspaces {', '.join(sorted(names))}: name one "
            "(header X-Modelyard-Workspace, --workspace or MODELYARD_WORKSPACE)"
        )

    def may_predict(self, endpoint: str, workspace: str = DEFAULT_WORKSPACE) -> bool:
        if self.endpoint is not None:
            return self.endpoint == endpoint
        role = self.role_in(workspace) if self.roles else self.role
        return role is not None and Permission.PREDICT in ROLE_PERMISSIONS[role]


@dataclass(frozen=True)
class User:
    """A user, with the role held in the workspace asked about and every membership."""

    id: int
    name: str
    role: Role
    created_at: int
    disabled: bool = False
    workspaces: dict[str, Role] | None = None


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: never the secret, which is shown once when created."""

    id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: int
    actor: str
    key_id: str | None
    action: str
    resource: str
    outcome: str
    status: int
    client: str
    summary: dict[str, Any]  # JSON: small before/after summaries
    prev_hash: str
    hash: str
