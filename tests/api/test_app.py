"""The API through a real server on 127.0.0.1."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, modelyard_command, prepare_store


@pytest.fixture
def api(server: ServerProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        yield client  # type: ignore[misc]


def test_health_and_openapi(api: httpx.Client) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    paths = api.get("/openapi.json").json()["paths"]
    for route in ("/api/v1/runs", "/api/v1/runs/search", "/api/v1/models/{name}/versions"):
        assert route in paths


def test_errors_have_one_shape(api: httpx.Client, unique: str) -> None:
    missing = api.get("/api/v1/runs/feedbeef")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"kind": "not_found", "message": "run 'feedbeef' does not exist"}
    }
    assert api.post("/api/v1/experiments", json={"name": unique}).status_code == 201
    clash = api.post("/api/v1/experiments", json={"name": unique})
    assert clash.status_code == 409 and "already exists" in clash.json()["error"]["message"]
    bad_filter = api.post("/api/v1/runs/search", json={"filter": "metrics.auc >"})
    assert bad_filter.status_code == 422
    assert "position 14" in bad_filter.json()["error"]["message"]
    no_route = api.get("/api/v1/nothing-here")
    assert no_route.status_code == 404 and no_route.json()["error"]["kind"] == "not_found"


def test_malformed_bodies(api: httpx.Client) -> None:
    broken = api.post(
        "/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    missing_field = api.post("/api/v1/runs", json={"name": "x"})
    assert missing_field.status_code == 422
    assert missing_field.json()["error"]["message"].startswith("experiment:")
    bad_environment = api.post(
        "/api/v1/runs", json={"experiment": "e", "environment": {"python": 3}}
    )
    assert bad_environment.status_code == 422
    assert "environment: python, platform, host, user" in bad_environment.json()["error"]["message"]
    bad_batch = api.post(
        "/api/v1/runs/feedbeef/batch", json={"metrics": {"keys": ["a"], "values": []}}
    )
    assert bad_batch.status_code in (404, 422)


def test_artifact_paths_cannot_escape(
    api: httpx.Client, unique: str, server: ServerProcess
) -> None:
    run = api.post("/api/v1/runs", json={"experiment": unique}).json()
    for path in ("..%2F..%2Fescape.txt", "%2e%2e/%2e%2e/escape.txt", "a/..%2F..%2F..%2Fescape.txt"):
        answer = api.put(f"/api/v1/runs/{run['id']}/artifacts/{path}", content=b"x")
        assert answer.status_code in (404, 422), path
    for upload in ("%2Fetc%2Fpasswd", "..%2Fx"):
        answer = api.put(f"/api/v1/uploads/{'a' * 32}/{upload}", content=b"x")
        assert answer.status_code == 422, upload
    assert not list(server.home.parent.glob("escape.txt"))
    assert not (server.home / "escape.txt").exists()


def test_server_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    home = tmp_path / "old"
    home.mkdir()
    with sqlite3.connect(home / "modelyard.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0000')")
    done = subprocess.run(
        modelyard_command("server", "--port", "1"),
        env={**os.environ, "MODELYARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "run `modelyard db upgrade`" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_server_refuses_an_empty_database_until_upgraded(tmp_path: Path) -> None:
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path / "fresh")}
    refused = subprocess.run(
        modelyard_command("server", "--port", "1"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "has no modelyard schema" in refused.stderr
    key = prepare_store(tmp_path / "fresh")
    running = ServerProcess(tmp_path / "fresh").start()
    try:
        assert httpx.get(f"{running.url}/api/v1/experiments").status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{running.url}/api/v1/experiments", headers=headers).json() == []
    finally:
        running.stop()


def test_unreachable_server_is_a_clear_error() -> None:
    from modelyard.client.yard import connect
    from modelyard.errors import ModelyardError
    from tests.conftest import free_port

    yard = connect(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModelyardError, match="cannot reach modelyard server at http://127.0.0.1"):
        yard.experiments.list()
    yard.close()
