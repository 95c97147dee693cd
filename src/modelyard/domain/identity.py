"""Who may do what: roles per workspace and the permissions they carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modelyard.errors import InvalidInput


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


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a user acting through one API key."""

    user: str
    role: Role
    key_id: str | None = None
    workspace: str = "default"
    endpoint: str | None = None  # set for an endpoint key: it may only call that endpoint

    def can(self, permission: Permission) -> bool:
        if self.endpoint is not None:
            return False  # an endpoint key reaches no control-plane route
        return permission in ROLE_PERMISSIONS[self.role]

    def may_predict(self, endpoint: str) -> bool:
        if self.endpoint is not None:
            return self.endpoint == endpoint
        return Permission.PREDICT in ROLE_PERMISSIONS[self.role]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: int
    disabled: bool = False


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
    summary: dict[str, object]
    prev_hash: str
    hash: str
