"""A ``modelyard serve`` subprocess on a free loopback port, for data-plane tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, modelyard_command


class ServeProcess:
    def __init__(
        self,
        home: Path,
        *endpoints: str,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.endpoints = endpoints
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MODELYARD_HOME": str(home), **(env or {})}
        self.env.pop("MODELYARD_URL", None)
        self.log = home.parent / f"{home.name}-serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready: bool = True, timeout: float = 60) -> ServeProcess:
        command = modelyard_command(
            "serve", *self.endpoints, "--port", str(self.port), "--refresh", "0.2", *self.args
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        route = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited early: {self.output()}")
            try:
                if httpx.get(self.url + route, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serve was not {route} in {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """``kill -9``: no chance to flush or seal anything."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
