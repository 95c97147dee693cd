"""Shared fixtures: embedded yards, a real server on 127.0.0.1, throwaway PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard, connect
from modelyard.config import Settings
from tests.stores import throwaway_postgres


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def modelyard_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelyard.cli.main", *args]


class ServerProcess:
    """A ``modelyard server`` subprocess on a free loopback port."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MODELYARD_HOME": str(home), **(env or {})}
        self.env.pop("MODELYARD_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_key = ""

    def start(self, timeout: float = 30) -> ServerProcess:
        self.process = subprocess.Popen(
            modelyard_command("server", "--port", str(self.port)),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise RuntimeError(f"server exited early: {err.decode()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()


def prepare_store(home: Path, env: dict[str, str] | None = None) -> str:
    """Migrate the store at ``home`` and create its first admin; return the admin's key."""
    full_env = {**os.environ, "MODELYARD_HOME": str(home), **(env or {})}
    full_env.pop("MODELYARD_URL", None)
    for args in (("db", "upgrade"), ("admin", "init", "--name", "admin")):
        done = subprocess.run(
            modelyard_command(*args), env=full_env, check=True, capture_output=True, text=True
        )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("server-home")
    admin_key = prepare_store(home)
    running = ServerProcess(home).start()
    running.admin_key = admin_key
    yield running
    running.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def embedded_yard(home: Path) -> Yard:
    settings = Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    return Yard(LocalBackend(bootstrap(settings)))


@pytest.fixture(params=["embedded", "remote"])
def yard(request: pytest.FixtureRequest, home: Path) -> Iterator[Yard]:
    """The same SDK, in-process or through a real server: the contract suite runs on both."""
    if request.param == "embedded":
        opened = embedded_yard(home)
    else:
        server: ServerProcess = request.getfixturevalue("server")
        opened = connect(server.url, api_key=server.admin_key, home=home)
    yield opened
    opened.close()


@pytest.fixture
def unique() -> str:
    """A name no other test uses (the remote yard is shared by a whole session)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_postgres() as url:
        yield url
