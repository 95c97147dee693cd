"""Adaptive micro-batching: one worker thread per (endpoint, version, role).

Requests queue; the worker takes everything queued (up to ``max_batch_size``
rows) and runs it as one call. A lone request never waits for company: under
light load every batch has one request, under heavy load the requests that
arrive while a batch computes form the next one, so batches grow exactly when
batching pays. ``max_wait_ms`` can hold a batch open a little longer once
requests are queueing. The queue is unbounded for primaries (batching never
rejects a request by itself); shadows have a bounded queue and drop copies
when they fall behind, so a slow shadow costs memory, never primary latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STOP_GRACE = 5.0
Work = Callable[[list[Any]], list[Any]]


@dataclass
class Item:
    payload: Any
    rows: int
    future: asyncio.Future[Any] | None


class Batcher:
    """Run ``work`` over batches of queued payloads in a dedicated thread.

    ``work`` gets the payloads of one batch and returns one result per payload
    (an ``Exception`` instance fails only its own request). ``submit`` returns a
    future completed on ``loop``; ``offer`` queues without a future (shadows) and
    returns False when the queue is full.
    """

    def __init__(
        self,
        name: str,
        work: Work,
        *,
        loop: asyncio.AbstractEventLoop | None,
        max_batch_size: int,
        max_wait_ms: float = 0.0,
        max_queue: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self.work = work
        self.loop = loop
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.nice = nice
        self._queue: deque[Item] = deque()
        self._queued_rows = 0
        self._holding = False  # the worker holds a batch open for ``max_wait``
        self._ready = threading.Condition(threading.Lock())
        self._stopping = False
        self._stopped_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"batcher {name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, payload: Any, rows: int) -> asyncio.Future[Any]:
        assert self.loop is not None
        future: asyncio.Future[Any] = self.loop.create_future()
        with self._ready:
            self._put(Item(payload, rows, future))
        return future

    def offer(self, payload: Any, rows: int) -> bool:
        with self._ready:
            if self.max_queue is not None and len(self._queue) >= self.max_queue:
                return False
            self._put(Item(payload, rows, None))
        return True

    def _put(self, item: Item) -> None:
        self._queue.append(item)
        self._queued_rows += item.rows
        # a batch held open sleeps until its deadline or until it is full: waking the
        # worker for every arrival would cost the callers a thread switch each
        if not self._holding or self._queued_rows >= self.max_batch_size:
            self._ready.notify()

    def stop(self, wait: bool = True) -> None:
        """Finish what is queued (and what arrives within a short grace), then end."""
        with self._ready:
            self._stopping = True
            if wait:
                self._stopped_at = time.monotonic() - STOP_GRACE
            self._ready.notify()
        if wait:
            self._thread.join(timeout=30)

    def _take(self) -> list[Item] | None:
        with self._ready:
            while not self._queue:
                if self._stopping:
                    # a request that chose this batcher just before it was replaced may
                    # still arrive: linger a moment before ending the thread
                    if self._stopped_at is None:
                        self._stopped_at = time.monotonic()
                    remaining = self._stopped_at + STOP_GRACE - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._ready.wait(remaining)
                    continue
                self._ready.wait()
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            deadline = time.monotonic() + self.max_wait if self.max_wait else 0.0
            while rows < self.max_batch_size:
                if self._queue:
                    if rows + self._queue[0].rows > self.max_batch_size:
                        break
                    item = self._queue.popleft()
                    batch.append(item)
                    rows += item.rows
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._holding = True
                self._ready.wait(remaining)
                self._holding = False
            self._queued_rows -= rows
            return batch

    def _run(self) -> None:
        if self.nice:
            # Linux schedules threads separately: a shadow's thread yields the CPU to primaries
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                results = self.work([item.payload for item in batch])
            except Exception as exc:  # the whole call failed: every request gets the error
                results = [exc] * len(batch)
            if self.on_batch is not None:
                self.on_batch(sum(item.rows for item in batch))
            waiting = [(item.future, result) for item, result in zip(batch, results, strict=True)]
            waiting = [(f, r) for f, r in waiting if f is not None]
            if waiting and self.loop is not None:
                try:
                    self.loop.call_soon_threadsafe(_resolve, waiting)
                except RuntimeError:  # the loop has closed: nobody is waiting any more
                    return


def _resolve(waiting: list[tuple[asyncio.Future[Any] | None, Any]]) -> None:
    for future, result in waiting:
        if future is None or future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
