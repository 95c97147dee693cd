"""What several benchmarks share: a free loopback port and a ``modelyard serve`` process
over a home, ready when its ``/readyz`` answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    """``modelyard serve`` over ``home`` on 127.0.0.1:``port`` (its output in serve.log
    beside the home), once every endpoint it hosts is loaded."""
    env = {**os.environ, "MODELYARD_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MODELYARD_URL", None)
    log = (home.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "modelyard"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("modelyard serve did not become ready")
