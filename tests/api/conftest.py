"""Fixtures for the API tests: an admin's HTTP client to the session's real server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """``httpx.Client`` on the server's URL, sending the first admin's key."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        yield client


def new_run(api: httpx.Client, experiment: str, **fields: object) -> str:
    answer = api.post("/api/v1/runs", json={"experiment": experiment, **fields})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])
