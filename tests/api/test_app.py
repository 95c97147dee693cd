"""The app as a whole, through a real server on 127.0.0.1: health, OpenAPI, the one
error shape, and a server that refuses a database it would have to migrate."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, modelyard_command, prepare_store


def test_health_needs_no_key(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_openapi_describes_answers_and_errors(api: httpx.Client) -> None:
    """Every backend operation has a route (tests/contract/test_backend_protocol.py);
    here, a route's answers are described by their models."""
    paths = api.get("/openapi.json").json()["paths"]
    run_schema = paths["/api/v1/runs/{run_id}"]["get"]["responses"]
    assert run_schema["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Run")
    assert run_schema["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


def test_openapi_declares_how_routes_authenticate_and_their_refusals(server: ServerProcess) -> None:
    """The document is public (it describes the API, no workspace's data); every route it
    describes but /healthz needs the bearer key (or the UI's session) and may answer 401/403."""
    document = httpx.get(f"{server.url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert document["security"] == [{"bearerKey": []}, {"sessionCookie": []}]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 90
    for path, method, operation in operations:
        if path == "/healthz":
            assert operation["security"] == []
            continue
        assert "security" not in operation, (method, path)  # the document-wide rule holds
        for status in ("401", "403"):
            answer = operation["responses"].get(status)
            assert answer, f"{method.upper()} {path} does not declare {status}"
            # MLflow's tracking routes answer in MLflow's own error shape
            shape = "/MlflowErrorOut" if path.startswith("/api/2.0/mlflow/") else "/ErrorOut"
            assert answer["content"]["application/json"]["schema"]["$ref"].endswith(shape)
    assert httpx.get(f"{server.url}/api/v1/models").status_code == 401


def test_errors_have_one_shape(api: httpx.Client, unique: str) -> None:
    missing = api.get("/api/v1/runs/feedbeef")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"kind": "not_found", "message": "run 'feedbeef' does not exist"}
    }
    assert api.post("/api/v1/experiments", json={"name": unique}).status_code == 201
    clash = api.post("/api/v1/experiments", json={"name": unique})
    assert clash.status_code == 409
    assert clash.json()["error"] == {
        "kind": "conflict",
        "message": f"experiment '{unique}' already exists",
    }
    bad_filter = api.post("/api/v1/runs/search", json={"filter": "metrics.auc >"})
    assert bad_filter.status_code == 422
    assert bad_filter.json()["error"]["kind"] == "invalid_input"
    assert "position 14" in bad_filter.json()["error"]["message"]
    no_route = api.get("/api/v1/nothing-here")
    assert no_route.status_code == 404
    assert no_route.json()["error"] == {
        "kind": "not_found",
        "message": "no such route: GET /api/v1/nothing-here",
    }
    unknown_version = api.get(f"/api/v1/models/{unique}/versions/7")
    assert unknown_version.status_code == 404
    assert unknown_version.json()["error"]["kind"] == "not_found"


def test_malformed_bodies_are_one_line_errors(api: httpx.Client, unique: str) -> None:
    broken = api.post(
        "/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["kind"] == "invalid_input"
    assert broken.json()["error"]["message"].startswith("request body is not valid JSON: ")
    missing_field = api.post("/api/v1/runs", json={"name": "x"})
    assert missing_field.status_code == 422
    assert missing_field.json()["error"]["message"] == "experiment: Field required"
    bad_environment = api.post(
        "/api/v1/runs", json={"experiment": "e", "environment": {"python": 3}}
    )
    assert bad_environment.status_code == 422
    assert bad_environment.json()["error"]["message"] == (
        "environment: python, platform, host, user missing or of the wrong type"
    )
    wrong_type = api.post("/api/v1/runs/search", json={"max_results": "many"})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["message"].startswith("max_results: ")
    bad_query = api.get("/api/v1/runs/search", params={"max_results": "many"})
    assert bad_query.status_code == 422
    assert bad_query.json()["error"]["message"].startswith("query.max_results: ")
    for answer in (broken, missing_field, wrong_type, bad_query):
        assert "\n" not in answer.json()["error"]["message"]
    bad_selector = api.get(f"/api/v1/models/{unique}/versions/first")
    assert bad_selector.status_code == 422
    assert "must be a number, 'latest' or '@alias'" in bad_selector.json()["error"]["message"]


def _refused(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        modelyard_command("server", "--host", "127.0.0.1", "--port", "1"),
        env={**os.environ, "MODELYARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_one_line_refusal(done: subprocess.CompletedProcess[str], state: str) -> None:
    assert done.returncode == 2, done.stderr
    assert state in done.stderr and "run `modelyard db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.slow  # starts a process
def test_server_refuses_a_database_at_an_older_revision(tmp_path: Path) -> None:
    home = tmp_path / "old"
    prepare_store(home)
    with sqlite3.connect(home / "modelyard.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    _assert_one_line_refusal(_refused(home), "is at revision 0001")


@pytest.mark.slow  # starts a process
def test_server_refuses_a_database_that_is_not_ours(tmp_path: Path) -> None:
    home = tmp_path / "foreign"
    home.mkdir()
    with sqlite3.connect(home / "modelyard.db") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    _assert_one_line_refusal(_refused(home), "has no modelyard schema")
    with sqlite3.connect(home / "modelyard.db") as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]  # refused without touching it


@pytest.mark.slow  # starts a process
def test_server_refuses_an_empty_database_until_upgraded(tmp_path: Path) -> None:
    _assert_one_line_refusal(_refused(tmp_path / "fresh"), "has no modelyard schema")
    key = prepare_store(tmp_path / "fresh")
    running = ServerProcess(tmp_path / "fresh").start()
    try:
        assert httpx.get(f"{running.url}/api/v1/experiments").status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{running.url}/api/v1/experiments", headers=headers).json() == []
    finally:
        running.stop()


def test_the_server_log_never_holds_an_api_key(server: ServerProcess, api: httpx.Client) -> None:
    assert api.get("/api/v1/experiments").status_code == 200
    assert api.get("/api/v1/runs/feedbeef").status_code == 404
    assert server.admin_key and server.admin_key not in server.output()
