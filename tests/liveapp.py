"""The API app served by uvicorn on a loopback port inside the test process.

Starts in a fraction of a second (nothing is imported again), unlike a ``modelyard
server`` subprocess; ``log`` keeps every log line written while it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn

from modelyard.api.app import create_app
from modelyard.bootstrap import Services
from tests.conftest import free_port


@dataclass
class LiveApp:
    url: str
    services: Services
    log: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.log)


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def live_app(services: Services) -> Iterator[LiveApp]:
    """``create_app(services)`` on a free loopback port until the block ends."""
    port = free_port()
    running = LiveApp(f"http://127.0.0.1:{port}", services)
    collector = _Collect(running.log)
    logging.getLogger().addHandler(collector)
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the app did not start in 10 s"
            time.sleep(0.02)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        logging.getLogger().removeHandler(collector)
