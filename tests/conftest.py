"""Shared fixtures: embedded yards, a real server on 127.0.0.1, throwaway PostgreSQL.

- ``home``: an empty ``MODELYARD_HOME`` folder for this test;
- ``services``: the services bootstrapped on SQLite in ``home``;
- ``server``: a ``modelyard server`` subprocess on a free loopback port with its
  own migrated home and first admin, one per xdist worker and session
  (``server.url``, ``.home``, ``.admin_key``);
- ``yard``: a connected ``Yard``, once embedded in ``home`` and once remote through
  ``server`` (tests use ``unique`` names, since the remote store is shared);
- ``unique``: a name no other test uses;
- ``pg_url``: a throwaway PostgreSQL database, dropped afterwards (skips when no
  server listens on 127.0.0.1:5432).
"""

from __future__ import annotations

import os

# before NumPy loads (see the Makefile's test target): one BLAS thread per test process
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard, connect
from modelyard.config import Settings
from tests.stores import throwaway_postgres

# fixtures that start a process or need PostgreSQL: their tests are slow (``make test-fast``
# skips them); ``yard`` runs against the server in its "remote" parametrisation
SLOW_FIXTURES = {"server", "pg_url", "site"}
FAST_LOOP = os.environ.get("MODELYARD_TEST_FAST") == "1"


# the longest test files (a minute or more each under load) are handed out first, so
# that `-n 2 --dist loadfile` does not end with one worker running one of them alone
LONGEST_FIRST = (
    "tests/cli/test_cli.py",
    "tests/integration/test_scale.py",
    "tests/serving/test_rayserve.py",
    "tests/integration/test_api_fuzz.py",
    "tests/integration/test_crashes.py",
    "tests/batch/test_raydata.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a server process or PostgreSQL as slow; put the
    longest files first (``LONGEST_FIRST``), the rest in their order."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        remote = callspec is not None and "remote" in callspec.params.values()
        needs = SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        if remote or needs or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order


@pytest.fixture(autouse=True)
def _no_process_in_the_fast_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """In ``make test-fast``, a test that starts a process fails and says to mark it slow
    (``git``, which environment capture runs, and ``lscpu``, which joblib runs to count
    cores, are allowed)."""
    if not FAST_LOOP:
        return
    start = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        program = args[0] if isinstance(args, list | tuple) else str(args).split()[0]
        if Path(str(program)).name not in ("git", "lscpu"):
            raise RuntimeError(
                f"this test starts a process ({program}): mark it @pytest.mark.slow, "
                "so that make test-fast leaves it to make test"
            )
        start(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def modelyard_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelyard.cli.main", *args]


class ServerProcess:
    """A ``modelyard server`` subprocess on a free loopback port; its output goes to a log."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MODELYARD_HOME": str(home), **(env or {})}
        self.env.pop("MODELYARD_URL", None)
        self.log = home.parent / f"{home.name}-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_key = ""

    def start(self, timeout: float = 30) -> ServerProcess:
        command = modelyard_command("server", "--host", "127.0.0.1", "--port", str(self.port))
        with self.log.open("wb") as log:  # a file, not a pipe nobody reads, which could fill up
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
    """One server per xdist worker: its own home (tmp_path_factory is per worker) and port."""
    home = tmp_path_factory.mktemp("server-home")
    admin_key = prepare_store(home)
    running = ServerProcess(home).start()
    running.admin_key = admin_key
    yield running
    running.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def sqlite_settings(home: Path) -> Settings:
    return Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))


def embedded_yard(home: Path) -> Yard:
    return Yard(LocalBackend(bootstrap(sqlite_settings(home))))


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    """The services over a new SQLite store in ``home``."""
    built = bootstrap(sqlite_settings(home))
    yield built
    built.close()


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
