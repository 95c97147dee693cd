"""Buffered metric logging: ``log_metric`` appends in memory, a thread writes batches.

A training loop pays a list append per point; a background thread flushes every
``interval`` seconds or as soon as ``max_pending`` points wait. ``flush`` writes
synchronously, and an ``atexit`` hook flushes whatever is left when the process
exits normally, so nothing buffered is lost. A write that fails for a passing
reason (server unreachable) keeps its points queued for the next attempt; one
the store refuses (the run has ended) drops them. Either way the error is
raised by the run's next ``flush``.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Sequence

from modelyard.domain.runs import MetricPoint
from modelyard.errors import ModelyardError

Writer = Callable[[str, Sequence[MetricPoint]], None]

BATCH_LIMIT = 20_000


class MetricBuffer:
    """Per-run queues of metric points, written by one daemon thread."""

    def __init__(
        self, writer: Writer, *, interval: float = 0.25, max_pending: int = 50_000
    ) -> None:
        self._writer = writer
        self._interval = interval
        self._max_pending = max_pending
        self._pending: dict[str, list[MetricPoint]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._errors: dict[str, BaseException] = {}
        self._thread: threading.Thread | None = None
        _live_buffers.add(self)

    def add(self, run_id: str, point: MetricPoint) -> None:
        with self._lock:
            queue = self._pending.setdefault(run_id, [])
            queue.append(point)
            full = len(queue) >= self._max_pending
        self._ensure_thread()
        if full:
            self._wake.set()

    def extend(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        with self._lock:
            self._pending.setdefault(run_id, []).extend(points)
        self._ensure_thread()
        self._wake.set()

    def flush(self, run_id: str | None = None) -> None:
        """Write what is pending (for one run, or all); re-raise a background failure."""
        self._write(run_id)
        if run_id is not None and run_id in self._errors:
            raise self._errors.pop(run_id)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._write(None)

    def _take(self, run_id: str | None) -> dict[str, list[MetricPoint]]:
        with self._lock:
            if run_id is None:
                taken, self._pending = self._pending, {}
                return taken
            queue = self._pending.pop(run_id, None)
            return {run_id: queue} if queue else {}

    def _write(self, run_id: str | None) -> None:
        with self._write_lock:
            for rid, points in self._take(run_id).items():
                self._write_run(rid, points)

    def _write_run(self, run_id: str, points: list[MetricPoint]) -> None:
        for start in range(0, len(points), BATCH_LIMIT):
            try:
                self._writer(run_id, points[start : start + BATCH_LIMIT])
            except ModelyardError as exc:  # the store refused: retrying cannot help
                self._errors[run_id] = exc
                return
            except Exception as exc:  # transient (network, lock): keep the points for later
                self._errors[run_id] = exc
                self._requeue(run_id, points[start:])
                return

    def _requeue(self, run_id: str, points: list[MetricPoint]) -> None:
        with self._lock:
            self._pending[run_id] = points + self._pending.get(run_id, [])

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="modelyard-metrics", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._write(None)


_live_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for buffer in list(_live_buffers):
        buffer.close()
