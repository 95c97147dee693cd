"""The local engine: this process (one worker), or worker processes on this machine.

With ``workers=1`` batches are scored in this process, one after another: no copy, no
process to start. With more, this process reads the input and writes the output while
``workers`` processes (started with ``spawn``, BLAS held to one thread, each loading and
verifying the package once, kept for the next job when a ``WorkerPool`` is given) score
batches, which travel as Arrow IPC bytes. At most
``in_flight`` batches (twice the workers) are read and not yet delivered, so memory is
bounded by a few batches whatever the input's size; ``peak_in_flight`` records the most
held at once (a test holds the engine to it).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from modelyard.batch.answers import Answer, from_ipc, located, score_batch, to_ipc
from modelyard.batch.engine import Deliver, Scored, Task
from modelyard.batch.scorer import Scorer
from modelyard.batch.sources import Chunk
from modelyard.domain.batch import check_workers
from modelyard.errors import ModelFailed, ModelyardError
from modelyard.packaging import load_package


class WorkerPool:
    """Worker processes kept from one job to the next, so a job does not pay for starting
    them (a fresh interpreter, imports, the model loaded) each time.

    >>> pool = WorkerPool()                  # nothing starts yet
    >>> LocalEngine(4, pool=pool).run(...)   # starts 4 workers; the next job reuses them
    >>> pool.close()                         # stops them (``yard.close()`` does)

    A worker keeps the last package it loaded (one model in memory), so jobs of the same
    version load it once per worker. Asking for another number of workers restarts them.
    """

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._workers = 0
        self._lock = threading.Lock()

    def executor(self, workers: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is not None and self._workers != workers:
                self._shutdown()
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                )
                self._workers = workers
            return self._executor

    def discard(self, executor: ProcessPoolExecutor) -> None:
        """Stop ``executor`` if it is still this pool's (a worker died: it is broken)."""
        with self._lock:
            if self._executor is executor:
                self._shutdown()

    def close(self) -> None:
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor, self._workers = None, 0


class LocalEngine:
    """Score on this machine with ``workers`` processes (1: in this process); ``pool``
    keeps them between jobs (default: started for this job and stopped after it)."""

    def __init__(
        self, workers: int, *, in_flight: int | None = None, pool: WorkerPool | None = None
    ) -> None:
        self.workers = check_workers(workers)
        self.in_flight = in_flight or max(2, 2 * self.workers)
        self.pool = pool
        self.peak_in_flight = 0

    def run(self, task: Task, deliver: Deliver) -> None:
        if self.workers == 1:
            self._run_here(task, deliver)
            return
        pool = self.pool or WorkerPool()
        try:
            self._run_pool(pool, task, deliver)
        finally:
            if self.pool is None:
                pool.close()

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

    def _run_pool(self, pool: WorkerPool, task: Task, deliver: Deliver) -> None:
        executor = pool.executor(self.workers)
        model = (str(task.package), task.digest, tuple(task.keep))
        pending: deque[tuple[Chunk, Future[Any]]] = deque()
        try:
            for chunk in task.source.chunks():
                future = executor.submit(_score_in_worker, model, to_ipc(chunk.batch))
                pending.append((chunk, future))
                self._held(len(pending))
                while len(pending) >= self.in_flight:
                    _deliver_first(pending, deliver)
            while pending:
                _deliver_first(pending, deliver)
        except BrokenProcessPool:
            pool.discard(executor)
            raise ModelFailed("a scoring worker process died (out of memory, or killed)") from None
        finally:
            _drain(pending)


def _deliver_first(pending: deque[tuple[Chunk, Future[Any]]], deliver: Deliver) -> None:
    chunk, future = pending.popleft()
    answer, elapsed = future.result()
    outputs = located(answer, chunk)
    deliver(Scored(chunk.file, chunk.offset, chunk.batch, outputs, elapsed))


def _drain(pending: deque[tuple[Chunk, Future[Any]]]) -> None:
    """A job that stops early leaves the kept workers idle: what has not started is
    cancelled, what has is waited for (its answer dropped)."""
    for _, future in pending:
        future.cancel()
    wait([future for _, future in pending])


# -- in a worker process ---------------------------------------------------------------

_WORKER: dict[tuple[str, str, tuple[str, ...]], Scorer] = {}


def _start_worker() -> None:
    """BLAS gets one thread: the workers are the parallelism."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _scorer(model: tuple[str, str, tuple[str, ...]]) -> Scorer:
    """The scorer of ``model`` (package, digest, kept columns), loaded and verified once;
    only the last one is kept."""
    scorer = _WORKER.get(model)
    if scorer is None:
        _WORKER.clear()
        package, digest, keep = model
        scorer = _WORKER[model] = Scorer(load_package(package, digest), list(keep))
    return scorer


def _score_in_worker(model: tuple[str, str, tuple[str, ...]], data: bytes) -> tuple[Answer, float]:
    started = time.perf_counter()
    try:
        scorer = _scorer(model)
    except ModelyardError as exc:
        return ("error", exc.message), 0.0
    answer = score_batch(scorer, from_ipc(data))
    elapsed = (time.perf_counter() - started) * 1000
    return answer, elapsed
