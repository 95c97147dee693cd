"""Walk every route of the OpenAPI schema for every role: allowed or denied, never unruled."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from modelyard.domain.identity import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import ServerProcess

PLACEHOLDERS = {
    "name": "nomodel",
    "selector": "1",
    "alias": "champion",
    "run_id": "0" * 32,
    "key": "loss",
    "path": "x.txt",
    "environment_id": "e",
    "key_id": "nokey",
    "upload_id": "a" * 32,
    "fingerprint": "f" * 64,
    "request_id": "r" * 32,
    "workspace": "default",
    "user": "nouser",
    "job_id": "nojob",
    "alert_id": "noalert",
}


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.admin_key}"}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def keys(admin: httpx.Client) -> dict[Role, str]:
    tokens = {}
    for role in Role:
        name = f"walker-{role.value}"
        created = admin.post("/api/v1/users", json={"name": name, "role": role.value})
        assert created.status_code in (201, 409)
        answer = admin.post(f"/api/v1/users/{name}/keys", json={"name": "route walk"})
        tokens[role] = answer.json()["token"]
    return tokens


def operations(schema: dict) -> list[tuple[str, str, str | None]]:  # type: ignore[type-arg]
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), path, operation.get("x-permission")))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: PLACEHOLDERS[m.group(1)], path)


def _message(body: dict) -> str:  # type: ignore[type-arg]
    """An error's message, in our shape or in MLflow's (under ``/api/2.0/mlflow``)."""
    return str(body["error"]["message"] if "error" in body else body["message"])


def test_every_route_names_a_permission(admin: httpx.Client) -> None:
    schema = admin.get("/openapi.json").json()
    unruled = [
        (m, p) for m, p, permission in operations(schema) if permission is None and p != "/healthz"
    ]
    assert unruled == []


def test_every_role_is_allowed_or_denied_as_its_role_says(
    admin: httpx.Client, keys: dict[Role, str], server: ServerProcess
) -> None:
    schema = admin.get("/openapi.json").json()
    checked = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, permission in operations(schema):
            if permission is None:
                continue
            url = concrete(path)
            anonymous = client.request(method, url, json={})
            assert anonymous.status_code == 401, (method, path)
            for role, token in keys.items():
                answer = client.request(
                    method, url, json={}, headers={"Authorization": f"Bearer {token}"}
                )
                allowed = Permission(permission) in ROLE_PERMISSIONS[role]
                if allowed:
                    assert answer.status_code not in (401, 403), (role, method, path, answer.text)
                else:
                    assert answer.status_code == 403, (role, method, path, answer.text)
                    assert role.value in _message(answer.json())
                checked += 1
    assert checked >= 4 * 30


def test_denials_are_audited_and_keys_never_leak(
    admin: httpx.Client, keys: dict[Role, str], server: ServerProcess
) -> None:
    viewer = keys[Role.VIEWER]
    denied = httpx.post(
        f"{server.url}/api/v1/experiments",
        json={"name": "nope"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert denied.status_code == 403 and viewer not in denied.text
    forged = viewer[:-3] + "xyz"
    refused = httpx.get(
        f"{server.url}/api/v1/experiments", headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401 and forged not in refused.text
    events = admin.get("/api/v1/audit", params={"actor": "walker-viewer", "limit": 10_000}).json()
    assert any(
        e["action"] == "POST /api/v1/experiments" and e["outcome"] == "denied" for e in events
    )
    anonymous = admin.get("/api/v1/audit", params={"actor": "anonymous", "limit": 10_000}).json()
    assert any(e["status"] == 401 for e in anonymous)
    assert all(viewer not in str(e) and forged not in str(e) for e in events + anonymous)
    assert admin.get("/api/v1/audit/verify").json()["intact"] is True


def test_writes_are_audited_with_who_and_where(
    admin: httpx.Client, keys: dict[Role, str], server: ServerProcess, unique: str
) -> None:
    headers = {"Authorization": f"Bearer {keys[Role.CONTRIBUTOR]}"}
    created = httpx.post(f"{server.url}/api/v1/experiments", json={"name": unique}, headers=headers)
    assert created.status_code == 201
    events = admin.get(
        "/api/v1/audit", params={"actor": "walker-contributor", "limit": 10_000}
    ).json()
    mine = [e for e in events if e["action"] == "create experiment" and e["outcome"] == "ok"]
    assert mine and mine[-1]["resource"] == f"experiments/{unique}"
    assert mine[-1]["client"] == "127.0.0.1" and mine[-1]["key_id"]
    assert mine[-1]["summary"]["workspace"] == "default"


def test_whoami_and_revocation(admin: httpx.Client, server: ServerProcess) -> None:
    admin.post("/api/v1/users", json={"name": "short-lived", "role": "viewer"})
    answer = admin.post("/api/v1/users/short-lived/keys", json={}).json()
    headers = {"Authorization": f"Bearer {answer['token']}"}
    me = httpx.get(f"{server.url}/api/v1/whoami", headers=headers).json()
    assert me["user"] == "short-lived" and me["role"] == "viewer"
    assert admin.delete(f"/api/v1/keys/{answer['key']['id']}").status_code == 200
    gone = httpx.get(f"{server.url}/api/v1/whoami", headers=headers)
    assert gone.status_code == 401 and "was revoked" in gone.json()["error"]["message"]
