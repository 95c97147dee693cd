"""The API app factory: routes, and the one place errors become status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard import __version__
from modelyard.api import admin, catalog, tracking
from modelyard.api.security import AuditMiddleware
from modelyard.bootstrap import Services, bootstrap
from modelyard.errors import ModelyardError

logger = logging.getLogger("modelyard.api")


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status)


async def _on_modelyard_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelyardError)
    return _error(exc.status_code, exc.kind, exc.message)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error(404, "not_found", f"no such route: {request.method} {request.url.path}")
    return _error(exc.status_code, "error", str(exc.detail))


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, "internal", f"internal error ({type(exc).__name__}); see the server log")


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return _error(
            400, "invalid_input", f"request body is not valid JSON: {first.get('msg', '')}"
        )
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    return _error(422, "invalid_input", f"{where}: {first.get('msg', 'invalid')}")


def create_app(services: Services | None = None) -> FastAPI:
    """The API over ``services`` (default: bootstrapped from the environment, never migrating)."""
    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Tracking, model catalog and packages: one governed lifecycle.",
    )
    app.state.services = services or bootstrap(create_if_empty=False)
    app.add_exception_handler(ModelyardError, _on_modelyard_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.include_router(tracking.router)
    app.include_router(catalog.router)
    app.include_router(admin.router)
    app.add_middleware(AuditMiddleware)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
