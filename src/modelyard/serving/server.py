"""Run the serving data plane with uvicorn (``modelyard serve``)."""

from __future__ import annotations

import logging

import uvicorn

from modelyard.bootstrap import bootstrap
from modelyard.config import Settings
from modelyard.serving.app import DEFAULT_MAX_BODY, create_serving_app
from modelyard.serving.runtime import Runtime

SERVE_PORT = 8701


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
    runtime = Runtime(services, names or None, refresh=refresh)
    runtime.check_names()
    app = create_serving_app(runtime, max_body=max_body)
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
