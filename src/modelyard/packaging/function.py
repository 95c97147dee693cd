"""Functions-as-a-service: a version as a handler for AWS Lambda, Google Cloud
Functions, Knative or Cloud Run.

``write_function`` (``modelyard package export REF DIR --format function``) writes a
folder that needs no yard, database or server::

    DIR/handler.py          handler(event, context) and an ASGI ``app``
    DIR/package/            the verified package (manifest, model files)
    DIR/requirements.txt    modelyard and the package's pinned requirements
    DIR/modelyard-function.json  model, version, package digest

``FunctionApp`` is what ``handler.py`` starts at cold start: it verifies every file of
the package against the digest the handler was written with (a changed file and the
function refuses to start, naming it), loads the model, and answers predictions with
the signature enforced (a bad value answers 400 naming the column).

>>> from handler import handler
>>> handler({"body": '{"records": [{"age": 41}]}'}, None)
{'statusCode': 200, 'headers': {...}, 'body': '{"model": "churn", ...}'}
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.errors import BadRequest, IntegrityError, ModelyardError, TooLarge, envelope
from modelyard.packaging.flavors import get_flavor
from modelyard.packaging.package import LoadedModel, load_package, verify_package

PACKAGE_FOLDER = "package"
HANDLER_FILE = "handler.py"
FUNCTION_RECORD = "modelyard-function.json"
MAX_BODY = 6 * 1024 * 1024  # AWS Lambda's synchronous payload limit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HANDLER_SOURCE = '''"""{model}/{version} as a function (written by modelyard).

AWS Lambda / Google Cloud Functions: handler.handler
Knative / Cloud Run (ASGI):          uvicorn handler:app --host 0.0.0.0 --port $PORT
"""

from pathlib import Path

from modelyard.packaging.function import FunctionApp

# verified at cold start: a package whose files differ from this digest refuses to start
PACKAGE_DIGEST = "{digest}"

PACKAGE = Path(__file__).parent / "{folder}"

function = FunctionApp.start(PACKAGE, PACKAGE_DIGEST, "{model}", {version})
handler = function.handler
app = function.asgi

if __name__ == "__main__":
    function.run()
'''


def requirements_of(manifest_requirements: list[str]) -> list[str]:
    """modelyard pinned to this version, then the package's own pinned requirements."""
    import importlib.metadata

    own = f"modelyard=={importlib.metadata.version('modelyard')}"
    return [own, *manifest_requirements]


def copy_package(source: Path, target: Path, digest: str) -> None:
    """Copy the package at ``source`` to ``target`` and verify the copy against ``digest``."""
    # new files, not copies of a store's private ones: modes follow the umask
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    verify_package(target, expected_digest=digest)


def write_function(package: Path, target: Path, *, model: str, version: int, digest: str) -> Path:
    """Write the function folder for the verified package at ``package`` into ``target``."""
    copy_package(package, target / PACKAGE_FOLDER, digest)
    manifest = verify_package(target / PACKAGE_FOLDER, expected_digest=digest)
    source = HANDLER_SOURCE.format(
        model=model, version=version, digest=digest, folder=PACKAGE_FOLDER
    )
    (target / HANDLER_FILE).write_text(source)
    lines = requirements_of(manifest.requirements)
    (target / "requirements.txt").write_text("\n".join(lines) + "\n")
    record = {"model": model, "version": version, "package_digest": digest}
    (target / FUNCTION_RECORD).write_text(json.dumps(record, indent=2))
    return target


class FunctionApp:
    """One verified, loaded version answering function events and ASGI requests."""

    def __init__(self, model: str, version: int, loaded: LoadedModel) -> None:
        self.model = model
        self.version = version
        self.loaded = loaded
        self._flavor = get_flavor(loaded.manifest.flavor)
        self._classes = self._flavor.classes(loaded.model)

    @classmethod
    def start(cls, package: Path, digest: str, model: str, version: int) -> FunctionApp:
        """Verify the package against ``digest`` and load it; refuse to start otherwise."""
        try:
            loaded = load_package(package, expected_digest=digest)
        except IntegrityError as error:
            raise RuntimeError(f"{model}/{version} refuses to start: {error}") from None
        return cls(model, version, loaded)

    def predict(self, body: Any) -> dict[str, Any]:
        """The answer to one request body (``records`` or ``columns``, ``scores``)."""
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object with 'records' or 'columns'")
        rows = body.get("records", body.get("columns"))
        if rows is None:
            raise BadRequest("the body must have 'records' (a list) or 'columns' (an object)")
        frame = self.loaded.prepare(rows)
        answer: dict[str, Any] = {"model": self.model, "version": self.version}
        if self._classes is not None:
            scores = np.asarray(self._flavor.predict_proba(self.loaded.model, frame))
            answer["predictions"] = self._classes[scores.argmax(axis=1)].tolist()
            if body.get("scores"):
                answer["scores"] = scores.tolist()
            return answer
        answer["predictions"] = np.asarray(self._flavor.predict(self.loaded.model, frame)).tolist()
        return answer

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "flavor": self.loaded.manifest.flavor,
            "signature": self.loaded.manifest.signature,
        }

    def answer(self, method: str, body: bytes | str | None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a request: GET describes the version, POST predicts."""
        if method.upper() == "GET":
            return 200, self.describe()
        try:
            if body is not None and len(body) > MAX_BODY:
                raise TooLarge(f"the body is larger than {MAX_BODY} bytes")
            try:
                parsed = json.loads(body or b"")
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("the body is not valid JSON") from None
            return 200, self.predict(parsed)
        except ModelyardError as error:
            status = 400 if error.status_code == 422 else error.status_code
            return status, envelope(error.kind, error.message)

    def handler(self, event: Any, context: Any) -> dict[str, Any]:
        """AWS Lambda (API Gateway REST or HTTP API, function URL, direct invoke) and
        Google Cloud Functions (a Pub/Sub message's data) events."""
        method, body = _request_of(event)
        status, answer = self.answer(method, body)
        return {
            "statusCode": status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(answer),
            "isBase64Encoded": False,
        }

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: GET /healthz and /readyz, GET / describes, POST / or /predict."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in ("/healthz", "/readyz"):
            await _respond(send, 200, {"status": "ok"})
            return
        if path not in ("/", "/predict") or method not in ("GET", "POST"):
            await _respond(send, 404, envelope("not_found", f"no route {method} {path}"))
            return
        try:
            body = await _body(receive) if method == "POST" else None
        except TooLarge as error:
            await _respond(send, error.status_code, envelope(error.kind, error.message))
            return
        status, answer = self.answer(method, body)
        await _respond(send, status, answer)

    def run(self) -> None:  # pragma: no cover - the generated handler's __main__
        import os

        import uvicorn

        port = int(os.environ.get("PORT", "8080"))
        uvicorn.run(self.asgi, host=os.environ.get("HOST", "0.0.0.0"), port=port)


def _request_of(event: Any) -> tuple[str, bytes | str | None]:
    """(method, body) of an API Gateway v1/v2 or function URL event, a Pub/Sub
    message, or a direct invocation whose event is the body itself."""
    if not isinstance(event, dict):
        return "POST", json.dumps(event)
    context = event.get("requestContext") or {}
    method = event.get("httpMethod") or (context.get("http") or {}).get("method") or "POST"
    if "body" in event:
        body = event["body"]
        if body is not None and event.get("isBase64Encoded"):
            return method, base64.b64decode(body)
        return method, body if body is None or isinstance(body, str) else json.dumps(body)
    if isinstance(event.get("data"), str):  # a Pub/Sub message: base64 JSON in "data"
        return "POST", base64.b64decode(event["data"])
    return "POST", json.dumps(event)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, answer: dict[str, Any]) -> None:
    payload = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
