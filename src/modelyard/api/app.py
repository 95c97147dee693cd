"""The API app factory: the one place that assembles routes and error handling.

>>> from modelyard.api.app import create_app
>>> app = create_app(bootstrap(settings, create_if_empty=False))   # then: uvicorn.run(app)

Routes live in one module per noun (experiments, runs, artifacts, datasets,
models, packages, endpoints, monitors, admin, secrets, batch) under ``/api/v1``; each parses its
input, calls one service and returns. Every route names its permission (``api/security.guard``)
and writes are audited. Errors become ``{"error": {"kind", "message"}}`` in
``api/errors.py``.
``/healthz`` answers without touching the database; ``/openapi.json`` and
``/docs`` describe everything else.
"""

from __future__ import annotations

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
    models,
    monitors,
    packages,
    runs,
    secrets,
)
from modelyard.api.errors import install_error_handlers
from modelyard.api.security import AuditMiddleware
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
    explanations,
)


def create_app(services: Services | None = None) -> FastAPI:
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

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
