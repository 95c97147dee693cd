"""What travels over the data plane's HTTP: JSON answers, errors, request bodies.

Answers are orjson (NumPy values serialise as they are); an error is the API's
envelope ``{"error": {"kind", "message"}}`` (``errors.envelope``). A handler
reaches the process's ``Runtime`` and body limit through the app's state, which
``create_serving_app`` fills in.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import BadRequest, ModelyardError, TooLarge, envelope
from modelyard.serving.runtime import Runtime

DEFAULT_MAX_BODY = 4 * 1024 * 1024


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as a JSON answer."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_answer(exc: ModelyardError) -> Response:
    """The answer for a refused or failed request: its status and the error envelope."""
    return error_of(exc.status_code, exc.kind, exc.message)


def error_of(status: int, kind: str, message: str) -> Response:
    return respond(envelope(kind, message), status)


def runtime_of(request: Request) -> Runtime:
    """The ``Runtime`` the app serving ``request`` was built over."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON: 413 past the app's limit, 400 if not JSON."""
    chunks = await raw_body(request)
    try:
        return orjson.loads(chunks)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


async def raw_body(request: Request) -> bytes:
    """The request's body: 413 past the app's limit."""
    limit: int = request.app.state.max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes")
    return bytes(chunks)
