"""The local engine: this process (one worker), or worker processes on this machine.

With ``workers=1`` batches are scored in this process, one after another: no copy, no
process to start. With more, this process reads the input and writes the output while
``workers`` processes (started with ``spawn``, each loading and verifying the package
once, BLAS held to one thread) score batches, which travel as Arrow IPC bytes. At most
``in_flight`` batches (twice the workers) are read and not yet delivered, so memory is
bounded by a few batches whatever the input's size; ``peak_in_flight`` records the most
held at once (a test holds the engine to it).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from modelyard.batch.answers import Answer, from_ipc, located, score_batch, to_ipc
from modelyard.batch.engine import Deliver, Scored, Task
from modelyard.batch.scorer import Scorer
from modelyard.batch.sources import Chunk
from modelyard.domain.batch import check_workers
from modelyard.packaging import load_package


class LocalEngine:
    """Score on this machine with ``workers`` processes (1: in this process)."""

    def __init__(self, workers: int, *, in_flight: int | None = None) -> None:
        self.workers = check_workers(workers)
        self.in_flight = in_flight or max(2, 2 * self.workers)
        self.peak_in_flight = 0

    def run(self, task: Task, deliver: Deliver) -> None:
        if self.workers == 1:
            self._run_here(task, deliver)
        else:
            self._run_pool(task, deliver)

    def _held(self, count: int) -> None:
        self.peak_in_flight = max(self.peak_in_flight, count)

    def _run_here(self, task: Task, deliver: Deliver) -> None:
        scorer = Scorer(load_package(task.package, task.digest), task.keep)
        for chunk in task.source.chunks():
            self._held(1)
            started = time.perf_counter()
            outputs = located(score_batch(scorer, chunk.batch), chunk)
            elapsed = (time.perf_counter() - started) * 1000
            deliver(Scored(chunk.file, chunk.offset, chunk.batch, outputs, elapsed))

    def _run_pool(self, task: Task, deliver: Deliver) -> None:
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(task.package), task.digest, list(task.keep)),
        )
        pending: deque[tuple[Chunk, Future[Any]]] = deque()
        try:
            for chunk in task.source.chunks():
                pending.append((chunk, pool.submit(_score_in_worker, to_ipc(chunk.batch))))
                self._held(len(pending))
                while len(pending) >= self.in_flight:
                    _deliver_first(pending, deliver)
            while pending:
                _deliver_first(pending, deliver)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _deliver_first(pending: deque[tuple[Chunk, Future[Any]]], deliver: Deliver) -> None:
    chunk, future = pending.popleft()
    answer, elapsed = future.result()
    outputs = located(answer, chunk)
    deliver(Scored(chunk.file, chunk.offset, chunk.batch, outputs, elapsed))


# -- in a worker process ---------------------------------------------------------------

_WORKER: dict[str, Scorer] = {}


def _start_worker(package: str, digest: str, keep: list[str]) -> None:
    """Load and verify the package once per worker process; BLAS gets one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER["scorer"] = Scorer(load_package(package, digest), keep)


def _score_in_worker(data: bytes) -> tuple[Answer, float]:
    started = time.perf_counter()
    answer = score_batch(_WORKER["scorer"], from_ipc(data))
    elapsed = (time.perf_counter() - started) * 1000
    return answer, elapsed
