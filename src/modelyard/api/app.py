"""The API app factory: the one place that assembles routes and error handling.

>>> from modelyard.api.app import create_app
>>> app = create_app(bootstrap(settings, create_if_empty=False))   # then: uvicorn.run(app)

Routes live in one module per noun (experiments, runs, artifacts, datasets,
models, packages, endpoints, monitors, admin, secrets, batch) under ``/api/v1``, and MLflow's
REST tracking API under ``/api/2.0/mlflow`` (``mlflow_compat``); each parses its
input, calls one service and returns. Every route names its permission (``api/security.guard``)
and writes are audited. Errors become ``{"error": {"kind", "message"}}`` in
``api/errors.py``.
``/healthz`` answers without touching the database; ``/openapi.json`` and
``/docs`` describe everything else. The web UI (``modelyard.ui``) is mounted at ``/``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from modelyard import __version__
from modelyard.api import (
    admin,
    artifacts,
    batch,
    datasets,
    endpoints,
    experiments,
    explanations,
    mlflow_compat,
    models,
    monitors,
    packages,
    runs,
    secrets,
)
from modelyard.api.errors import install_error_handlers
from modelyard.api.limits import BodyLimit, raw_routes
from modelyard.api.security import AuditMiddleware
from modelyard.api.session import SESSION_COOKIE
from modelyard.bootstrap import Services, bootstrap

ROUTERS = (
    experiments,
    runs,
    artifacts,
    datasets,
    models,
    packages,
    endpoints,
    monitors,
    admin,
    secrets,
    batch,
    mlflow_compat,
    explanations,
)


def create_app(services: Services | None = None, ui: bool = True) -> FastAPI:
    """The API over ``services`` (default: bootstrapped from the environment, never migrating).

    Route functions are plain ``def``: FastAPI runs them in its thread pool, so a
    blocking database call never stalls the event loop, and the services are
    safe to share between threads (one SQLAlchemy connection pool).
    """
    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Tracking, model catalog and packages: one governed lifecycle.",
    )
    app.state.services = services or bootstrap(create_if_empty=False)
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimit, raw=raw_routes(module.router for module in ROUTERS))
    if ui:
        from modelyard.ui.app import install_ui

        install_ui(app)

    @app.get("/healthz", tags=["health"], openapi_extra={"security": []})
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    _declare_security(app)
    return app


SECURITY_SCHEMES = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`modelyard admin key create USER`), sent as "
        "`Authorization: Bearer my_...`",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The web UI's session; a write with it needs the X-CSRF-Token header",
    },
}


def _declare_security(app: FastAPI) -> None:
    """Declare in the OpenAPI document how every route but ``/healthz`` authenticates.

    ``/openapi.json`` and ``/docs`` themselves are public: they describe the API, and hold
    no data of any workspace.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            document["security"] = [{"bearerKey": []}, {"sessionCookie": []}]
            _errors_are_json(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors_are_json(document: dict[str, Any]) -> None:
    """Errors are JSON even where a route answers HTML or a file (FastAPI files them under
    the route's own media type)."""
    for item in document["paths"].values():
        for operation in item.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if status.startswith("4") and "application/json" not in content and content:
                    answer["content"] = {"application/json": next(iter(content.values()))}
