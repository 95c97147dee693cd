"""Artifact routes: raw bodies in and out, and no path that leaves the run's folder."""

from __future__ import annotations

import hashlib
import http.client
import os
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import new_run
from tests.conftest import ServerProcess

ESCAPES = [
    "..%2F..%2Fescape.txt",
    "%2e%2e/%2e%2e/escape.txt",
    "%2E%2E%2Fescape.txt",
    "a/..%2F..%2F..%2Fescape.txt",
    "%2Fetc%2Fpasswd",
    "a%5C..%5C..%5Cescape.txt",
]


def _raw(server: ServerProcess, method: str, path: str, body: bytes | None = None) -> int:
    """Send ``path`` byte for byte: httpx would resolve a literal ``../`` before sending it."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _nothing_escaped(server: ServerProcess) -> None:
    for root in (server.home, server.home.parent, server.home / "artifacts"):
        assert not (root / "escape.txt").exists()
    assert not list((server.home / "artifacts").rglob("escape.txt"))


@pytest.mark.parametrize("path", ESCAPES)
def test_encoded_escapes_are_refused_with_422(
    api: httpx.Client, server: ServerProcess, unique: str, path: str
) -> None:
    run_id = new_run(api, unique)
    for method in ("PUT", "GET"):
        answer = api.request(method, f"/api/v1/runs/{run_id}/artifacts/{path}", content=b"x")
        assert answer.status_code == 422, (method, path, answer.text)
        assert answer.json()["error"]["kind"] == "invalid_input"
    upload = api.put(f"/api/v1/uploads/{'a' * 32}/{path}", content=b"x")
    assert upload.status_code == 422, upload.text
    _nothing_escaped(server)


def test_literal_dot_dot_segments_are_refused(
    api: httpx.Client, server: ServerProcess, unique: str
) -> None:
    run_id = new_run(api, unique)
    for path in ("../../escape.txt", "a/../../../escape.txt", "./../escape.txt"):
        url = f"/api/v1/runs/{run_id}/artifacts/{path}"
        assert _raw(server, "PUT", url, b"x") == 422, path
        assert _raw(server, "GET", url) == 422, path
    assert _raw(server, "PUT", f"/api/v1/uploads/{'b' * 32}/../../escape.txt", b"x") == 422
    _nothing_escaped(server)


def test_upload_ids_are_hex(api: httpx.Client) -> None:
    for upload_id in ("short", "..", "Z" * 32):
        answer = api.put(f"/api/v1/uploads/{upload_id}/model.pkl", content=b"x")
        assert answer.status_code in (404, 422), upload_id


def test_a_large_file_streams_in_and_out(api: httpx.Client, unique: str, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(24 << 20))  # past the 8 MiB in-memory spool
    run_id = new_run(api, unique)
    with source.open("rb") as handle:
        chunks = iter(lambda: handle.read(1 << 20), b"")
        stored = api.put(f"/api/v1/runs/{run_id}/artifacts/nested/weights.bin", content=chunks)
    assert stored.status_code == 201, stored.text
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert stored.json()["sha256"] == expected and stored.json()["size"] == 24 << 20
    digest = hashlib.sha256()
    with api.stream("GET", f"/api/v1/runs/{run_id}/artifacts/nested/weights.bin") as answer:
        for chunk in answer.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == expected
    listed = api.get(f"/api/v1/runs/{run_id}/artifacts").json()
    assert [(a["path"], a["size"]) for a in listed] == [("nested/weights.bin", 24 << 20)]
    missing = api.get(f"/api/v1/runs/{run_id}/artifacts/nested/other.bin")
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not_found"
