"""Writing a job's scored batches on a thread, so writing overlaps scoring.

The engine hands each scored batch to ``put``, which queues it and returns at once
unless ``budget`` bytes of batches (inputs and outputs) are queued already: then it
waits for the thread to write some. So memory stays bounded by the budget (and one
batch, however large) whatever the input's size, while Parquet encoding, hashing and
the prediction log run beside the model (they release the GIL, as the models' own
loops do).

>>> writer = Writer(run.write)       # starts the thread
>>> writer.put(scored)               # ... for every scored batch, in input order
>>> writer.close()                   # waits for the last one; raises what writing raised
>>> writer.abort()                   # or: drops what is queued and waits for the thread

A batch that fails to write stops the thread; its error is raised in the caller at the
next ``put`` or at ``close``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from modelyard.batch.engine import Scored

BUDGET_BYTES = 64 * 2**20


class Writer:
    """Write scored batches in order on a thread, holding at most ``budget`` bytes queued."""

    def __init__(self, write: Callable[[Scored], None], *, budget: int = BUDGET_BYTES) -> None:
        self._write = write
        self._budget = budget
        self._queue: deque[tuple[Scored, int]] = deque()
        self._held = 0
        self._closing = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self.written_rows = 0
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    def put(self, scored: Scored) -> None:
        """Queue ``scored``; waits while the budget is spent. Raises a failed write's error."""
        size = scored.inputs.nbytes + scored.outputs.nbytes
        with self._changed:
            while self._queue and self._held + size > self._budget and self._error is None:
                self._changed.wait()
            self._raise_failure()
            self._queue.append((scored, size))
            self._held += size
            self.peak_bytes = max(self.peak_bytes, self._held)
            self._changed.notify_all()

    def close(self) -> None:
        """Wait until every queued batch is written; raises a failed write's error."""
        self._stop(drop=False)
        self._raise_failure()

    def abort(self) -> None:
        """Drop what is queued and wait for the batch being written, if any."""
        self._stop(drop=True)

    def _stop(self, *, drop: bool) -> None:
        with self._changed:
            self._closing = True
            if drop:
                self._queue.clear()
                self._held = 0
            self._changed.notify_all()
        self._thread.join()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._next()) is not None:
            scored, size = item
            try:
                self._write(scored)
            except BaseException as exc:  # raised in the caller's thread, at put or close
                self._fail(exc)
                return
            with self._changed:
                self._held -= size
                self.written_rows += scored.inputs.num_rows
                self._changed.notify_all()

    def _next(self) -> tuple[Scored, int] | None:
        with self._changed:
            while not self._queue and not self._closing:
                self._changed.wait()
            return self._queue.popleft() if self._queue else None

    def _fail(self, exc: BaseException) -> None:
        with self._changed:
            self._error = exc
            self._queue.clear()
            self._held = 0
            self._changed.notify_all()
