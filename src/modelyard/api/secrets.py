"""Routes for secrets: set, list and delete (maintainers and admins of the workspace that
holds them); values never come back, and only that workspace's monitors may use them.

    PUT    /api/v1/secrets/{name}   {"value": "..."}   create or replace
    GET    /api/v1/secrets                             names and who set them when
    DELETE /api/v1/secrets/{name}

Setting one needs ``MODELYARD_SECRET_KEY`` on the server (503 ``not_configured``
otherwise). Each change is an audit event with the name, never the value.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import SecretStr

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import Body, respond
from modelyard.domain.identity import Permission
from modelyard.domain.secrets import SecretRecord

router = APIRouter(prefix="/api/v1", tags=["governance"], responses=ERROR_RESPONSES)

# Secrets belong to the alert channels of monitors: whoever may configure monitors manages them.
SECRETS_PERMISSION = Permission.MONITOR


class SecretIn(Body):
    value: SecretStr  # shown as '**********' if the body is ever printed


@router.put("/secrets/{name}", response_model=SecretRecord, **guard(SECRETS_PERMISSION))
def set_secret(name: str, body: SecretIn, request: Request) -> Response:
    """Create or replace secret ``name``; the answer names it and never holds the value."""
    value = body.value.get_secret_value()
    record = services_of(request).secrets.set(name, value, workspace=workspace_of(request))
    return respond(record)


@router.get("/secrets", response_model=list[SecretRecord], **guard(SECRETS_PERMISSION))
def list_secrets(request: Request) -> Response:
    return respond(services_of(request).secrets.names(workspace_of(request)))


@router.delete("/secrets/{name}", **guard(SECRETS_PERMISSION))
def delete_secret(name: str, request: Request) -> Response:
    services_of(request).secrets.delete(name)
    return respond({"name": name, "deleted": True})
