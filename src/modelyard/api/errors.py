"""The one place where errors become HTTP answers.

Every error the API returns has one shape, whatever raised it::

    HTTP/1.1 404 Not Found
    {"error": {"kind": "not_found", "message": "run 'f00d' does not exist"}}

- a ``ModelyardError`` answers with its own ``status_code`` and ``kind``
  (``errors.py`` draws the tree); ``RemoteBackend`` reads ``kind`` back and
  raises the same class the embedded backend would;
- a body that is not JSON (or nested too deeply, or not UTF-8) is 400 ``invalid_input``;
- a JSON body over the limit (``api/limits.py``) is 413 ``too_large``;
- a write the artifact store's disk refuses is 507 ``storage_unavailable``
  (``StorageUnavailable``, raised by ``artifacts/store.py``);
- a request that fails validation is 422 ``invalid_input`` with one line naming
  the first bad field: ``"experiment: Field required"``;
- an unknown route is 404 ``not_found`` naming the method and path;
- anything else is a bug: 500 ``internal`` naming the exception's type,
  with the traceback in the server's log (not in the answer).

Under MLflow's API (``/api/2.0/mlflow/...``) the same errors take MLflow's shape,
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``, which MLflow's client
reads (``api/mlflow_wire.mlflow_error``).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api.mlflow_wire import is_mlflow_path, mlflow_error
from modelyard.errors import InvalidInput, ModelyardError, NotFound, TooLarge, envelope

logger = logging.getLogger("modelyard.api")


class ErrorDetail(BaseModel):
    kind: str
    message: str


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "The request body is not valid JSON"),
        (401, "No API key, or one that is unknown, expired or revoked"),
        (403, "The key's role or workspace does not allow this"),
        (404, "A named thing does not exist"),
        (409, "The request clashes with stored state"),
        (422, "The request is malformed"),
        (
            507,
            "A store's disk is full or read-only: the metadata database, the artifact "
            "store or the server's temporary folder; nothing was changed",
        ),
    )
}
"""OpenAPI entries for the error answers every route may give."""

STORAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    507: {"model": ErrorOut, "description": "The artifact store's disk is full or read-only"}
}
"""The OpenAPI entry of a route that writes to the artifact store."""


def error_response(
    status_code: int, kind: str, message: str, request: Request | None = None
) -> JSONResponse:
    if request is not None and is_mlflow_path(request.url.path):
        return mlflow_error(status_code, kind, message)
    return JSONResponse(envelope(kind, message), status_code=status_code)


async def _on_modelyard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelyardError)
    return error_response(exc.status_code, exc.kind, exc.message, request)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}"
        return error_response(404, NotFound.kind, message, request)
    if exc.status_code == TooLarge.status_code:
        return error_response(413, TooLarge.kind, str(exc.detail), request)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not read the body as JSON: too deeply nested, or not UTF-8
        reason = _UNREADABLE.get(type(exc.__cause__), type(exc.__cause__).__name__)
        message = f"request body is not valid JSON: {reason}"
        return error_response(400, InvalidInput.kind, message, request)
    return error_response(exc.status_code, ModelyardError.kind, str(exc.detail), request)


_UNREADABLE: dict[type[BaseException], str] = {
    RecursionError: "nested too deeply",
    UnicodeDecodeError: "not valid UTF-8",
}


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_message(exc.errors(), request)


def validation_message(errors: Any, request: Request | None = None) -> JSONResponse:
    """One line for the first problem: a broken JSON body is 400, a bad field 422.

    A field the route does not know is named first, before what is missing: it is
    most often a typo, or a field (such as who acts) that a client may not set.
    """
    ordered = sorted(errors, key=lambda error: error.get("type") != "extra_forbidden")
    first: dict[str, Any] = dict(ordered[0]) if ordered else {}
    message = str(first.get("msg", "invalid")).splitlines()[0]
    if first.get("type") == "json_invalid":
        return error_response(
            400, InvalidInput.kind, f"request body is not valid JSON: {message}", request
        )
    if first.get("type") == "extra_forbidden":
        message = "not a field of this request"
    sent = request.headers.get("content-type", "") if request is not None else ""
    if tuple(first.get("loc", ())) == ("body",) and isinstance(first.get("input"), bytes):
        # FastAPI parses a body as JSON only when it is sent as JSON
        message = f"the body must be JSON sent with content-type application/json, not '{sent}'"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    return error_response(422, InvalidInput.kind, f"{where or 'request'}: {message}", request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = secrets.token_hex(6)
    logger.exception(
        "unexpected error on %s %s (error id %s)", request.method, request.url.path, error_id
    )
    message = f"internal error ({type(exc).__name__}, error id {error_id}); see the server log"
    return error_response(500, "internal", message, request)


class UnexpectedErrors:
    """Answer a bug with the 500 above and keep the connection open.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then
    closes the connection, so a client's next request on it can be reset. This
    ASGI middleware answers without re-raising (unless the response had started).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise
            response = await _on_unexpected(Request(scope), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised under ``app`` in the one shape above."""
    app.add_middleware(UnexpectedErrors)
    app.add_exception_handler(Exception, _on_unexpected)  # for errors in outer middleware
    app.add_exception_handler(ModelyardError, _on_modelyard_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
