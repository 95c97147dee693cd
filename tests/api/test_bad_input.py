"""Bad input over HTTP, to the API server and to the serving process: each is a 4xx
with a one-line message naming the problem (never a 500 or a traceback), and nothing
stored changes. What tests/api/test_app.py and tests/serving/test_serve.py already
cover (broken JSON, missing fields and columns, wrong value types, empty requests,
bodies over the serving limit) is not repeated here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.api.limits import MAX_JSON_BODY
from modelyard.client.yard import connect
from tests.conftest import ServerProcess
from tests.serving.process import ServeProcess

pytestmark = pytest.mark.slow

NESTED = "[" * 100_000 + "]" * 100_000
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Stack:
    server: ServerProcess
    serve: ServeProcess
    endpoint: str
    other: str
    keys: dict[str, str]

    def api(self, key: str | None = None) -> httpx.Client:
        token = key if key is not None else self.server.admin_key
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def serving(self, who: str = "admin") -> httpx.Client:
        token = self.keys.get(who, self.server.admin_key)
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.serve.url, headers=headers, timeout=60)


def rows(count: int) -> list[dict[str, float]]:
    return [{"a": i % 5, "b": (i * 7) % 3, "c": i / 10} for i in range(count)]


@pytest.fixture(scope="module")
def stack(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A small three-column model behind two endpoints of the session's server, served
    by ``modelyard serve`` over the same store."""
    tag = uuid.uuid4().hex[:8]
    frame = pd.DataFrame(rows(40))
    model = LogisticRegression().fit(frame, [i % 2 for i in range(40)])
    name, endpoint, other = f"bad-{tag}", f"bad-{tag}", f"bad-other-{tag}"
    with connect(server.url, api_key=server.admin_key, home=tmp_path_factory.mktemp(tag)) as yard:
        yard.models.register(model, name=name, input_example=frame.head())
        yard.endpoints.create(endpoint, routes=[f"{name}/1=100"])
        yard.endpoints.create(other, routes=[f"{name}/1=100"])
    keys: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
        user = f"bad-{tag}"
        assert admin.post("/api/v1/users", json={"name": user, "role": "maintainer"}).is_success
        for label, body in (
            ("maintainer", {}),
            ("scoped", {"endpoint": endpoint}),
            ("revoked", {}),
            ("expired", {"expires_in_days": 1e-6}),  # 86 ms
        ):
            answer = admin.post(f"/api/v1/users/{user}/keys", json=body).json()
            keys[label] = answer["token"]
            if label == "revoked":
                assert admin.delete(f"/api/v1/keys/{answer['key']['id']}").is_success
    time.sleep(0.2)  # the expired key's lifetime is over
    serve = ServeProcess(server.home, endpoint, other).start()
    try:
        yield Stack(server, serve, endpoint, other, keys)
    finally:
        serve.stop()


def _stored(stack: Stack) -> str:
    """What a refused request must not change: experiments, models, endpoints and the
    predictions logged by the endpoint."""
    with stack.api() as admin:
        state = [
            admin.get(url).content.hex()
            for url in (
                "/api/v1/experiments",
                "/api/v1/models",
                "/api/v1/endpoints",
                f"/api/v1/endpoints/{stack.endpoint}/predictions?limit=100000",
            )
        ]
    return "\n".join(state)


def _one_line_refusal(answer: httpx.Response, status: int, needle: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    # the Open Inference Protocol's routes answer in its own shape: {"error": "..."}
    message = error if isinstance(error, str) else error["message"]
    assert needle in message, message
    assert "\n" not in message and "Traceback" not in answer.text


# (name, method, path, body, headers, key, status, needle): the API server
API_CASES: list[tuple[str, str, str, bytes | None, dict[str, str], str | None, int, str]] = [
    (
        "oversized body",
        "POST",
        "/api/v1/experiments",
        b'{"name": "' + b"x" * (MAX_JSON_BODY + 10) + b'"}',
        JSON,
        None,
        413,
        f"the limit is {MAX_JSON_BODY} bytes",
    ),
    (
        "deeply nested JSON",
        "POST",
        "/api/v1/experiments",
        b'{"name": ' + NESTED.encode() + b"}",
        JSON,
        None,
        400,
        "not valid JSON: nested too deeply",
    ),
    (
        "invalid UTF-8",
        "POST",
        "/api/v1/experiments",
        b'{"name": "\xff\xfe"}',
        JSON,
        None,
        400,
        "not valid JSON: not valid UTF-8",
    ),
    (
        "wrong content type",
        "POST",
        "/api/v1/experiments",
        b'{"name": "typed"}',
        {"content-type": "text/plain"},
        None,
        422,
        "must be JSON sent with content-type application/json, not 'text/plain'",
    ),
    (
        "form body",
        "POST",
        "/api/v1/experiments",
        b"name=formed",
        {"content-type": "application/x-www-form-urlencoded"},
        None,
        422,
        "not 'application/x-www-form-urlencoded'",
    ),
    (
        "wrong type",
        "POST",
        "/api/v1/experiments",
        b'{"name": ["a", "list"]}',
        JSON,
        None,
        422,
        "name: Input should be a valid string",
    ),
    (
        "NaN where a name goes",
        "POST",
        "/api/v1/experiments",
        b'{"name": NaN}',
        JSON,
        None,
        422,
        "name: Input should be a valid string",
    ),
    (
        "SQL in a filter",
        "POST",
        "/api/v1/runs/search",
        b'{"filter": "params.a = \'x\' OR 1=1; DROP TABLE runs"}',
        JSON,
        None,
        422,
        "invalid filter at position 22",
    ),
    (
        "SQL in a query filter",
        "GET",
        "/api/v1/runs/search?filter=metrics.auc%20%3E%200%20UNION%20SELECT%20*%20FROM%20users",
        None,
        {},
        None,
        422,
        "unexpected character '*'",
    ),
    (
        "SQL in a name",
        "GET",
        "/api/v1/experiments/x'%20OR%20'1'='1",
        None,
        {},
        None,
        404,
        "experiment 'x' OR '1'='1' does not exist",
    ),
    (
        "SQL in an MLflow filter",
        "GET",
        "/api/2.0/mlflow/registered-models/search?filter=name%20LIKE%20'%25'%20OR%201%3D1",
        None,
        {},
        None,
        400,
        "only name or tags.KEY compared with",
    ),
    ("an endpoint key on the API", "GET", "/api/v1/models", None, {}, "scoped", 403, "not call"),
    ("a revoked key", "GET", "/api/v1/whoami", None, {}, "revoked", 401, "was revoked"),
    ("an expired key", "GET", "/api/v1/whoami", None, {}, "expired", 401, "has expired"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "key", "status", "needle"),
    [case[1:] for case in API_CASES],
    ids=[case[0] for case in API_CASES],
)
def test_the_api_refuses_bad_input_with_a_message_and_changes_nothing(
    stack: Stack,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    key: str | None,
    status: int,
    needle: str,
) -> None:
    before = _stored(stack)
    with stack.api(stack.keys[key] if key else None) as client:
        answer = client.request(method, path, content=body, headers=headers)
    if path.startswith("/api/2.0/mlflow"):
        assert answer.status_code == status and needle in answer.json()["message"], answer.text
    else:
        _one_line_refusal(answer, status, needle)
    assert _stored(stack) == before
    with stack.api() as admin:
        assert admin.get("/healthz").status_code == 200


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# (name, path, body, headers, who, status, needle): the serving process
SERVE_CASES: list[tuple[str, str, bytes, dict[str, str], str, int, str]] = [
    ("deeply nested JSON", "predict", b'{"records": ' + NESTED.encode() + b"}", JSON, "admin", 400,
     "depth limit exceeded"),
    ("deeply nested V2", "infer", b'{"inputs": ' + NESTED.encode() + b"}", JSON, "admin", 400,
     "depth limit exceeded"),
    ("NaN in features", "predict", b'{"records": [{"a": NaN, "b": 1, "c": 1}]}', JSON, "admin",
     400, "not valid JSON"),
    ("Infinity in features", "predict", b'{"records": [{"a": Infinity, "b": 1, "c": 1}]}', JSON,
     "admin", 400, "not valid JSON"),
    ("invalid UTF-8", "predict", b'{"records": [{"\xff": 1}]}', JSON, "admin", 400,
     "not valid UTF-8"),
    ("a form body", "predict", b"a=1&b=2&c=3", FORM, "admin", 400, "not valid JSON"),
    ("a column missing", "predict", _body(records=[{"a": 1, "b": 2}]), JSON, "admin", 422,
     "column 'c': missing"),
    ("a list for a row", "predict", _body(records=[[1, 2, 3]]), JSON, "admin", 422,
     "'records' must be a list of objects"),
    ("a wrong type", "predict", _body(records=[{"a": "one", "b": 1, "c": 1}]), JSON, "admin",
     422, "column 'a'"),
    ("no rows", "predict", _body(records=[]), JSON, "admin", 422, "no rows"),
    ("V2 without inputs", "infer", _body(inputs=5), JSON, "admin", 400, "non-empty 'inputs'"),
    ("a key for another endpoint", "other", _body(records=rows(1)), JSON, "scoped", 403,
     "may only predict on that endpoint"),
    ("a revoked key", "predict", _body(records=rows(1)), JSON, "revoked", 401, "was revoked"),
    ("an expired key", "predict", _body(records=rows(1)), JSON, "expired", 401, "has expired"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("route", "body", "headers", "who", "status", "needle"),
    [case[1:] for case in SERVE_CASES],
    ids=[case[0] for case in SERVE_CASES],
)
def test_serving_refuses_bad_input_with_a_message_and_logs_nothing(
    stack: Stack,
    route: str,
    body: bytes,
    headers: dict[str, str],
    who: str,
    status: int,
    needle: str,
) -> None:
    path = {
        "predict": f"/endpoints/{stack.endpoint}/predict",
        "infer": f"/v2/models/{stack.endpoint}/infer",
        "other": f"/endpoints/{stack.other}/predict",
    }[route]
    before = _stored(stack)
    with stack.serving(who) as client:
        _one_line_refusal(client.post(path, content=body, headers=headers), status, needle)
        assert client.get("/healthz").status_code == 200
    assert _stored(stack) == before


def _logged(stack: Stack) -> pa.Table:
    with stack.api() as admin:
        answer = admin.get(
            f"/api/v1/endpoints/{stack.endpoint}/predictions", params={"limit": 100_000}
        )
    assert answer.status_code == 200, answer.text
    return pa.ipc.open_stream(answer.content).read_all()


def test_serving_takes_ten_thousand_rows_and_an_extra_column(stack: Stack) -> None:
    """10,000 rows fit in the default body limit and are all answered and logged; a column
    the signature does not know is dropped before the model sees it (documented in
    packaging/signature.py), not refused."""
    before = _logged(stack).num_rows
    many = rows(10_000)
    many[0]["unknown"] = 1.0
    with stack.serving() as client:
        answer = client.post(f"/endpoints/{stack.endpoint}/predict", json={"records": many})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == len(set(answer.json()["ids"])) == 10_000
    assert _logged(stack).num_rows == before + 10_000


def test_a_json_body_streamed_past_the_limit_is_refused(stack: Stack) -> None:
    """Without a Content-Length (chunked), the API counts the body as it arrives."""

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_JSON_BODY // (1 << 20) + 1):
            yield b"x" * (1 << 20)
        yield b'"}'

    before = _stored(stack)
    with stack.api() as admin:
        answer = admin.post("/api/v1/experiments", content=chunks(), headers=JSON)
    _one_line_refusal(answer, 413, "request body is larger; the limit is")
    assert _stored(stack) == before


def test_raw_file_routes_take_bodies_over_the_json_limit(stack: Stack, tmp_path: Path) -> None:
    """Artifacts stream to disk: the JSON limit does not apply to them."""
    with stack.api() as admin:
        run = admin.post("/api/v1/runs", json={"experiment": f"raw-{uuid.uuid4().hex[:8]}"})
        assert run.status_code == 201, run.text
        big = b"y" * (MAX_JSON_BODY + 1024)
        stored = admin.put(
            f"/api/v1/runs/{run.json()['id']}/artifacts/big.bin",
            content=big,
            headers={"content-type": "application/octet-stream"},
        )
        assert stored.status_code in (200, 201), stored.text
        back = admin.get(f"/api/v1/runs/{run.json()['id']}/artifacts/big.bin")
    assert back.status_code == 200 and len(back.content) == len(big)
