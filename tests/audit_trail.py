"""The audit trail of a resource, read alike from an embedded and a remote yard.

A contract test asserts the same trail on both backends: a change is recorded by
the service that made it, so the events match but for key id and client address.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelyard.client.yard import Yard
from modelyard.domain.actors import os_user


def trail(request: pytest.FixtureRequest, yard: Yard, resource: str) -> list[dict[str, Any]]:
    """Every event on ``resource`` and below (a prefix), oldest first, as JSON objects."""
    if request.node.callspec.params["yard"] == "embedded":
        audit = yard.backend.services.audit  # type: ignore[attr-defined]
        return [_plain(event.__dict__) for event in audit.events(resource=resource)]
    answer = _remote(request, "/api/v1/audit", {"resource": resource, "limit": 0})
    events: list[dict[str, Any]] = answer.json()
    return events


def me(request: pytest.FixtureRequest) -> str:
    """The user the ``yard`` fixture acts as: the OS user embedded, the admin remote."""
    if request.node.callspec.params["yard"] == "embedded":
        return os_user()
    user: str = _remote(request, "/api/v1/whoami", {}).json()["user"]
    return user


def changes(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["action"], event["resource"]) for event in events]


def _remote(request: pytest.FixtureRequest, path: str, params: dict[str, Any]) -> httpx.Response:
    server = request.getfixturevalue("server")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    answer = httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key not in ("prev_hash", "hash")}
