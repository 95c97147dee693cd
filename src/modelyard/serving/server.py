"""Run the serving data plane with uvicorn (``modelyard serve``).

This is where the serving process is wired: ``runtime_for`` and ``app_for`` give
the ``Runtime`` and the app exactly the services they use, taken from
bootstrap's ``Services`` (the in-process server, ``serving/inprocess.py``, uses
them too).
"""

from __future__ import annotations

import logging

import uvicorn
from starlette.applications import Starlette

from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings
from modelyard.serving.app import DEFAULT_MAX_BODY, create_serving_app
from modelyard.serving.auth import Access
from modelyard.serving.models import ModelLoader
from modelyard.serving.runtime import Runtime

SERVE_PORT = 8701


def runtime_for(services: Services, names: list[str] | None, *, refresh: float = 1.0) -> Runtime:
    """A runtime hosting ``names`` (None: every endpoint), wired from ``services``."""
    loader = ModelLoader(
        services.catalog,
        services.artifacts,
        services.settings.package_cache,
        check_signature=services.signing.check_loadable,
    )
    return Runtime(
        services.endpoints,
        loader,
        services.predictions,
        services.retention,
        services.settings,
        names,
        refresh=refresh,
        explainers=services.explanations.explainers,  # reference data read on first need
    )


def app_for(services: Services, runtime: Runtime, *, max_body: int = DEFAULT_MAX_BODY) -> Starlette:
    """The data plane's app over ``runtime``, its keys and audit from ``services``."""
    access = Access(services.identity, services.workspaces, services.audit)
    return create_serving_app(runtime, access, max_body=max_body)


def serve(
    names: list[str],
    *,
    host: str,
    port: int,
    settings: Settings,
    refresh: float = 1.0,
    max_body: int = DEFAULT_MAX_BODY,
) -> None:
    """Host ``names`` (default: every endpoint, new ones included) until stopped.

    Refuses an un-migrated database and unknown endpoint names before binding
    the port; models load in the background while ``/readyz`` answers 503.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = bootstrap(settings, create_if_empty=False)
    runtime = runtime_for(services, names or None, refresh=refresh)
    runtime.check_names()
    app = app_for(services, runtime, max_body=max_body)
    hosted = ", ".join(names) if names else "every endpoint"
    print(f"modelyard serve on http://{host}:{port} ({hosted})", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    services.close()
