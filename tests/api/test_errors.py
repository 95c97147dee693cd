"""The error mapping in one place, on an app served by uvicorn in this process so a
route that fails on purpose can be added to it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from modelyard.api.app import create_app
from modelyard.bootstrap import Services
from modelyard.errors import Conflict, IntegrityError, SignatureError
from tests.conftest import free_port


@pytest.fixture
def failing_app(services: Services) -> Iterator[httpx.Client]:
    """The real app over ``services`` plus routes that raise, served on a loopback port."""
    app = create_app(services)
    errors: dict[str, Exception] = {
        "bug": RuntimeError("a secret detail"),
        "conflict": Conflict("model 'churn' is busy"),
        "integrity": IntegrityError("file 'model.pkl' fails its sha256 check"),
        "signature": SignatureError("age", "missing"),
    }

    @app.get("/raise/{name}")
    def raise_(name: str) -> None:
        raise errors[name]

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("name", "status", "kind", "message"),
    [
        ("conflict", 409, "conflict", "model 'churn' is busy"),
        ("integrity", 409, "integrity_error", "file 'model.pkl' fails its sha256 check"),
        ("signature", 422, "signature_error", "column 'age': missing"),
        (
            "bug",
            500,
            "internal",
            r"internal error \(RuntimeError, error id [0-9a-f]{12}\); see the server log",
        ),
    ],
)
def test_every_error_has_the_one_shape(
    failing_app: httpx.Client, name: str, status: int, kind: str, message: str
) -> None:
    answer = failing_app.get(f"/raise/{name}")
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["kind"] == kind
    assert re.fullmatch(message, error["message"]), error["message"]  # patterns
    assert failing_app.get("/healthz").status_code == 200  # the connection pool survived
