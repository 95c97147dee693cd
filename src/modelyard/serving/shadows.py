"""Shadows run in a child process, so the primary pays only for handing over a copy.

A serving process starts one shadow process (``serving/shadow_worker.py``, at
the lowest CPU priority) when it first hosts an endpoint with shadows. After a
primary answer is written, ``ShadowProcess.offer`` puts a copy on a bounded
queue (a full queue drops the copy and counts it in ``modelyard_shadow_dropped``;
it never blocks); a sender thread gathers the copies for a moment and writes
them to the child's stdin as one frame::

    frame   = length (4 bytes, big-endian) + orjson array of copies
    copy    = [endpoint, revision, [[model, version, digest], ...], ids, rows]

The child computes each shadow in large batches and logs the rows in its own
journal; it reports every batch on its stdout as a JSON line, which a reader
thread turns into the serving process's shadow metrics::

    {"endpoint": e, "version": "model/3", "requests": n, "errors": k, "rows": r, "seconds": s}
    {"endpoint": e, "version": "model/3", "dropped": n}

The child ends when its stdin closes (this process stopped or died) after
finishing what it holds and closing its journals. If it dies, the copies it held
are counted as dropped and it is started again, after a delay that doubles with
each quick death (up to ``RESTART_MAX`` seconds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import IO, Any

import orjson

from modelyard.config import Settings
from modelyard.serving.metrics import ServingMetrics

log = logging.getLogger("modelyard.serving.shadows")

ShadowTarget = tuple[str, int, str]  # model, version, package digest
Copy = tuple[str, int, list[ShadowTarget], list[str], list[Any]]

SHADOW_QUEUE = 1024  # copies waiting to be handed over
HANDOVER_WAIT = 0.05  # seconds the sender gathers copies into one frame
STOP_TIMEOUT = 15.0
RESTART_MIN = 0.5
RESTART_MAX = 30.0
STABLE_AFTER = 60.0  # a child that lived this long restarts without delay growth
HEADER = struct.Struct(">I")
CHILD_NICE = 19  # the lowest CPU priority: the primaries come first


def lower_priority(pid: int) -> None:
    """Give process ``pid`` (0: this one) the lowest CPU priority: nice 19, and on Linux
    the SCHED_IDLE policy, so a waking primary always preempts it at once (a nice 19
    task may otherwise finish its time slice, milliseconds, before the primary runs)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, CHILD_NICE)
    if hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))


def worker_command() -> list[str]:
    """The child's command line; it logs at the level this process logs serving at."""
    level = logging.getLogger("modelyard.serving").getEffectiveLevel()
    return [sys.executable, "-m", "modelyard.serving.shadow_worker", logging.getLevelName(level)]


def worker_environment(settings: Settings) -> dict[str, str]:
    """This process's environment, with the settings the child bootstraps from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env |= {
        "MODELYARD_HOME": str(settings.home),
        "MODELYARD_DB_URL": settings.db_url,
        "MODELYARD_ARTIFACTS": settings.artifact_root,
    }
    if settings.prediction_root:
        env["MODELYARD_PREDICTIONS"] = settings.prediction_root
    if settings.secret_key:
        env["MODELYARD_SECRET_KEY"] = settings.secret_key
    return env


def encode_frame(copies: list[Any]) -> bytes:
    body = orjson.dumps(copies, option=orjson.OPT_SERIALIZE_NUMPY)
    return HEADER.pack(len(body)) + body


def read_frames(stream: IO[bytes]) -> Iterator[list[Any]]:
    """The copies of each frame on ``stream`` until it closes."""
    while True:
        header = stream.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        (size,) = HEADER.unpack(header)
        body = stream.read(size)
        if len(body) < size:
            return
        yield orjson.loads(body)


class ShadowProcess:
    """The shadow process of one serving process, seen from the serving side.

    >>> shadows = ShadowProcess(services.settings, metrics)
    >>> shadows.start()
    >>> shadows.offer("churn", 4, [("churn", 3, digest)], ids, rows)  # never blocks
    True
    >>> shadows.stop()  # the child finishes, closes its journals and exits

    ``command`` replaces the child's command line (tests).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServingMetrics,
        *,
        command: list[str] | None = None,
        max_queue: int = SHADOW_QUEUE,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.command = command
        self.max_queue = max_queue
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._queue: deque[Copy] = deque()
        self._pending: Counter[tuple[str, str]] = Counter()  # handed over, not computed yet
        self._ready = threading.Condition(threading.Lock())
        self._closing = False
        self._sender: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._exited_processes: list[subprocess.Popen[bytes]] = []
        self._started_at = 0.0
        self._restart_at = 0.0
        self._quick_deaths = 0
        self._stop_timeout = STOP_TIMEOUT

    # -- the serving side ------------------------------------------------------

    def offer(
        self,
        endpoint: str,
        revision: int,
        targets: list[ShadowTarget],
        ids: list[str],
        rows: list[Any],
    ) -> bool:
        """Queue a copy of an answered request for ``targets``; False when it was dropped."""
        with self._ready:
            if self._closing or len(self._queue) >= self.max_queue:
                dropped = True
            else:
                dropped = False
                self._queue.append((endpoint, revision, targets, ids, rows))
                for model, version, _ in targets:
                    self._pending[endpoint, f"{model}/{version}"] += 1
                self._ready.notify()
        if dropped:
            for model, version, _ in targets:
                self.metrics.shadow_dropped.labels(endpoint, f"{model}/{version}").inc()
        return not dropped

    def depth(self, endpoint: str, version: str) -> int:
        """Copies handed over for ``version`` of ``endpoint`` and not computed yet."""
        return self._pending[endpoint, version]

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start the sender (and with it the child); later calls do nothing."""
        with self._ready:
            if self._sender is not None or self._closing:
                return
            self._sender = threading.Thread(target=self._send_loop, name="shadow sender")
            self._sender.daemon = True
            self._sender.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Hand over what is queued, close the child's stdin and wait for it (then kill it)."""
        with self._ready:
            self._closing = True
            self._stop_timeout = timeout
            self._ready.notify()
            sender = self._sender
        if sender is None:
            return
        sender.join(timeout=timeout + 1)
        process = self.process
        if sender.is_alive() and process is not None:  # stuck writing to a child that hangs
            log.warning("shadow process %d does not read: killed", process.pid)
            process.kill()
            sender.join(timeout=5)

    # -- the sender thread -----------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closing and not self._restart_due():
                    self._ready.wait(self._until_restart())
                closing = self._closing
                exited, self._exited_processes = self._exited_processes, []
            for process in exited:  # their stdin is closed here, where it is written
                _close(process.stdin)
            if self.process is None and not closing and self._restart_due():
                self._spawn()
            if not closing:
                time.sleep(HANDOVER_WAIT)  # copies arriving meanwhile join this frame
            with self._ready:
                copies = list(self._queue)
                self._queue.clear()
            if copies:
                self._send(copies)
            if closing:
                break
        self._finish()

    def _restart_due(self) -> bool:
        return self.process is None and time.monotonic() >= self._restart_at

    def _until_restart(self) -> float | None:
        if self.process is not None:
            return None
        return max(0.0, self._restart_at - time.monotonic())

    def _spawn(self) -> None:
        try:
            process = subprocess.Popen(
                self.command or worker_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=worker_environment(self.settings),
            )
        except OSError:
            log.exception("could not start the shadow process")
            self._schedule_restart()
            return
        lower_priority(process.pid)  # from the start, imports included
        self._started_at = time.monotonic()
        self.process = process
        self._reader = threading.Thread(
            target=self._read_loop, args=(process,), name="shadow reports", daemon=True
        )
        self._reader.start()
        log.info("shadow process %d started", process.pid)

    def _send(self, copies: list[Copy]) -> None:
        process = self.process
        if process is None or process.stdin is None:
            self._drop(copies)
            return
        try:
            frame = encode_frame(list(copies))
        except TypeError:  # a value JSON cannot carry: send the others
            kept = [c for c in copies if _encodable(c)]
            self._drop([c for c in copies if not _encodable(c)])
            copies, frame = kept, encode_frame(list(kept))
        try:
            _write_all(process.stdin.fileno(), frame)
        except OSError:  # the child is gone: its reader reports it and schedules a restart
            self._drop(copies)

    def _drop(self, copies: list[Copy]) -> None:
        counts: Counter[tuple[str, str]] = Counter()
        for endpoint, _, targets, _, _ in copies:
            for model, version, _ in targets:
                counts[endpoint, f"{model}/{version}"] += 1
        with self._ready:
            for key, count in counts.items():
                self._pending[key] = max(0, self._pending[key] - count)
        for (endpoint, ref), count in counts.items():
            self.metrics.shadow_dropped.labels(endpoint, ref).inc(count)

    def _finish(self) -> None:
        process, reader = self.process, self._reader
        for exited in self._exited_processes:
            _close(exited.stdin)
        if process is None:
            return
        _close(process.stdin)
        try:
            process.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("shadow process %d did not finish in time: killed", process.pid)
            process.kill()
            process.wait()
        if reader is not None:
            reader.join(timeout=5)

    # -- the reader thread -----------------------------------------------------

    def _read_loop(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                try:
                    self._apply(orjson.loads(line))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.warning("shadow process: unreadable report %r", line[:200])
        process.wait()
        self._exited(process)

    def _apply(self, report: dict[str, Any]) -> None:
        endpoint, version = str(report["endpoint"]), str(report["version"])
        done = int(report.get("dropped", 0)) or int(report["requests"])
        with self._ready:
            self._pending[endpoint, version] = max(0, self._pending[endpoint, version] - done)
        if "dropped" in report:
            self.metrics.shadow_dropped.labels(endpoint, version).inc(done)
            return
        self.metrics.observe_batch(
            endpoint,
            version,
            "shadow",
            requests=done,
            errors=int(report["errors"]),
            rows=int(report["rows"]),
            seconds=float(report["seconds"]),
        )

    def _exited(self, process: subprocess.Popen[bytes]) -> None:
        with self._ready:
            if self.process is not process or self._closing:
                return
            lost = dict(self._pending)
            self._pending.clear()
            self.process = None
            self._schedule_restart()
            self.restarts += 1
            self._exited_processes.append(process)
            self._ready.notify()
        log.warning(
            "shadow process %d exited with %s; %d copies lost; restarting in %.1f s",
            process.pid,
            process.returncode,
            sum(lost.values()),
            max(0.0, self._restart_at - time.monotonic()),
        )
        for (endpoint, version), count in lost.items():
            if count:
                self.metrics.shadow_dropped.labels(endpoint, version).inc(count)

    def _schedule_restart(self) -> None:
        if time.monotonic() - self._started_at >= STABLE_AFTER:
            self._quick_deaths = 0
        delay = min(RESTART_MIN * 2**self._quick_deaths, RESTART_MAX)
        self._quick_deaths += 1
        self._restart_at = time.monotonic() + delay


def _encodable(copy: Copy) -> bool:
    try:
        orjson.dumps(copy, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return False
    return True


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
