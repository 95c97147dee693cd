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


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def shadow_child(serve: ServeProcess, other_than: int | None = None, timeout: float = 30) -> int:
    """The pid of ``serve``'s shadow process (not ``other_than``: the one before it)."""
    assert serve.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children(serve.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"modelyard.serving.shadow_worker" in command and pid != other_than:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no shadow process: {serve.output()}")


def unidle(pid: int) -> None:
    """Give a niced child the normal policy and priority, once the test has seen it niced.

    SCHED_IDLE runs only on an idle CPU: on a machine busy with other tests the child
    might not run for minutes. What the test checks next is that it computes and logs,
    not when; ``niced`` has already checked the policy it was started with.
    """
    os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, pid, 0)


def wait_gone(pid: int, timeout: float = 30) -> bool:
    """Wait until process ``pid`` (not necessarily a child of this one) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if state[state.rindex(")") + 2] == "Z":  # exited, its parent has not reaped it yet
            return True
        time.sleep(0.05)
    return False
