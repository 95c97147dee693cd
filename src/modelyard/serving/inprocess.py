"""The data plane inside this process, on a free loopback port (the quickstart, tests).

>>> with serve_in_thread(services, ["churn"]) as url:
...     httpx.post(f"{url}/endpoints/churn/predict", json={"records": rows}, headers=auth)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from modelyard.bootstrap import Services
from modelyard.errors import ModelyardError
from modelyard.serving.server import app_for, runtime_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_in_thread(
    services: Services, names: list[str], *, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``names`` until the block ends; yields the base URL once every route is loaded."""
    runtime = runtime_for(services, names, refresh=0.25)
    runtime.check_names()
    port = _free_port()
    config = uvicorn.Config(
        app_for(services, runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="modelyard serve", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise ModelyardError(f"the endpoint(s) {', '.join(names)} did not become ready")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
