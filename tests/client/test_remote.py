"""The HTTP backend against real sockets on 127.0.0.1: a dead port, a silent server, a
stand-in server that records what it was sent and answers with canned errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from modelyard.client.remote import RemoteBackend
from modelyard.client.remote_base import error_class
from modelyard.client.yard import Yard, connect
from modelyard.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelyardError,
    NotFound,
)
from tests.conftest import free_port

SECRET = "my_secret_key_that_must_never_show"


class StandIn(BaseHTTPRequestHandler):
    """Answers ``GET /api/v1/runs/<status>-<kind>`` with that error; records every request."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        StandIn.seen.append({"path": self.path, "headers": dict(self.headers)})
        name = self.path.rsplit("/", 1)[-1]
        if name == "slow":
            time.sleep(2)
        if name == "html":
            return self._answer(502, b"<html>bad gateway</html>", "text/html")
        status, _, kind = name.partition("-")
        body = {"error": {"kind": kind, "message": f"canned {kind}"}}
        self._answer(int(status), json.dumps(body).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    StandIn.seen.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    yard = connect(url, api_key=SECRET, home=tmp_path)
    with pytest.raises(ModelyardError, match=f"cannot reach modelyard server at {url}: ") as raised:
        yard.experiments.list()
    assert type(raised.value) is ModelyardError and SECRET not in str(raised.value)
    with pytest.raises(ModelyardError, match="cannot reach"):
        yard.runs.get("f00d")
    yard.close()


def test_a_silent_server_times_out_with_the_same_error(stand_in: str, tmp_path: Path) -> None:
    backend = RemoteBackend(stand_in, home=tmp_path, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ModelyardError, match=f"cannot reach modelyard server at {stand_in}"):
        backend.get_run("slow")
    assert time.monotonic() - started < 10  # the 0.3 s timeout applied, not the 60 s default
    backend.close()


def test_the_api_key_is_sent_as_a_bearer_token_and_never_shown(
    stand_in: str, tmp_path: Path
) -> None:
    yard = connect(stand_in, api_key=SECRET, home=tmp_path)
    with pytest.raises(NotFound) as raised:
        yard.runs.get("404-not_found")
    assert StandIn.seen[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in f"{raised.value} {yard!r} {yard.backend.location}"
    yard.close()
    anonymous = connect(stand_in, home=tmp_path)
    with pytest.raises(NotFound):
        anonymous.runs.get("404-not_found")
    assert "Authorization" not in StandIn.seen[-1]["headers"]
    anonymous.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("404-not_found", NotFound),
        ("409-conflict", Conflict),
        ("409-integrity_error", IntegrityError),
        ("422-invalid_input", InvalidInput),
        ("422-signature_error", InvalidInput),  # a kind without a plain constructor: its branch
        ("418-teapot", ModelyardError),
    ],
)
def test_error_kinds_become_the_same_classes(
    stand_in: str, tmp_path: Path, answer: str, expected: type[ModelyardError]
) -> None:
    yard = Yard(RemoteBackend(stand_in, home=tmp_path))
    with pytest.raises(expected) as raised:
        yard.runs.get(answer)
    assert type(raised.value) is expected
    assert str(raised.value) == f"canned {answer.partition('-')[2]}"
    yard.close()


def test_an_answer_that_is_not_ours_is_still_a_modelyard_error(
    stand_in: str, tmp_path: Path
) -> None:
    backend = RemoteBackend(stand_in, home=tmp_path)
    with pytest.raises(ModelyardError, match="server answered 502: <html>bad gateway"):
        backend.get_run("html")
    backend.close()


def test_error_class_prefers_the_kind_then_the_status() -> None:
    assert error_class("conflict", 500) is Conflict
    assert error_class("brand_new_kind", 404) is NotFound
    assert error_class("brand_new_kind", 409) is Conflict
    assert error_class("brand_new_kind", 500) is ModelyardError
