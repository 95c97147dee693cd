"""What several benchmarks share: a free loopback port, a ``modelyard serve`` process over
a home, ready when its ``/readyz`` answers, a ``modelyard server`` over a store, ready when
its ``/healthz`` answers, and client processes that start their timed work together."""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0  # seconds processes started together wait for each other
STARTED = time.monotonic()


def step(message: str) -> None:
    """Print ``message`` with the seconds since this script started."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_home(home: Path) -> str:
    """Migrate the store of ``home`` and make its first admin, ``bench``; the admin's key."""
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    modelyard = str(BIN / "modelyard")
    subprocess.run([modelyard, "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [modelyard, "admin", "init", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip().splitlines()[-1]


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    """``modelyard serve`` over ``home`` on 127.0.0.1:``port`` (its output in serve.log
    beside the home), once every endpoint it hosts is loaded."""
    return _started("serve", home, port, "/readyz", {})


def server(home: Path, port: int, db_url: str | None = None) -> subprocess.Popen[bytes]:
    """``modelyard server`` over ``home`` (or the database ``db_url``) on
    127.0.0.1:``port`` (its output in server.log beside the home), once it answers."""
    return _started(
        "server", home, port, "/healthz", {"MODELYARD_DB_URL": db_url} if db_url else {}
    )


def _started(
    command: str, home: Path, port: int, probe: str, extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MODELYARD_HOME": str(home), "OPENBLAS_NUM_THREADS": "1", **extra}
    env.pop("MODELYARD_URL", None)
    log = home.parent / f"{command}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "modelyard"), command, "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise SystemExit(f"modelyard {command} did not become ready (see {log})")


def run_together(
    function: Callable[[Any, Callable[[], None]], Any], arguments: list[Any], timeout: float
) -> list[Any]:
    """``function(argument, start)`` in one spawned process per argument; each calls
    ``start()`` once it is set up, which returns when every process has (so timed work
    begins together). Results in the order of ``arguments``; a process that raised, died
    or did not answer within ``timeout`` seconds raises here."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(arguments))
    results = context.Queue()
    processes = [
        context.Process(target=_together, args=(function, argument, index, barrier, results))
        for index, argument in enumerate(arguments)
    ]
    for process in processes:
        process.start()
    try:
        answers = dict(results.get(timeout=timeout) for _ in processes)
    except queue.Empty:
        raise SystemExit(f"a process did not finish in {timeout:.0f} s") from None
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    failed = [answer for answer in answers.values() if isinstance(answer, BaseException)]
    if failed:
        raise failed[0]
    return [answers[index] for index in range(len(arguments))]


def _together(
    function: Callable[[Any, Callable[[], None]], Any],
    argument: Any,
    index: int,
    barrier: Any,
    results: Any,
) -> None:
    try:
        answer = function(argument, lambda: barrier.wait(timeout=START_TIMEOUT))
    except BaseException as exc:  # handed to the parent, which raises it
        answer = exc
    results.put((index, answer))
