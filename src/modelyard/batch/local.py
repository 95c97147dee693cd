"""The local engine: this process (one worker), or worker processes on this machine.

With ``workers=1`` batches are scored in this process, one after another: no copy, no
process to start (with a ``WorkerPool``, the loaded model is kept here for the next job,
as a worker keeps it). With more, this process reads the input and writes the output
while ``workers`` processes (started with ``spawn``, BLAS held to one thread, each
loading and verifying the package once, kept for the next job when a ``WorkerPool`` is
given) score batches, which reach them through shared memory (``batch/shared.py``:
written once here, read in place there; as IPC bytes through the pipe when shared
memory is short) and come back pickled. At most ``in_flight`` batches (twice the
workers) are read and not yet delivered, so memory is bounded by a few batches whatever
the input's size; ``peak_in_flight`` records the most held at once (a test holds the
engine to it).

With ``choose``, ``workers`` is the most: the first batch is scored in this process and
timed. When scoring it took less than ``WORKERS_WHEN`` times as long as reading it, the
model is cheap beside the input's reading and writing, which this process does
whatever the workers (a linear model: 2 workers halve its rate, the copies to and from
them costing more than they save), so the rest is scored here too; else by the workers.
An input of one batch is scored here. ``workers`` then says how many scored.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeAlias

from modelyard.batch.answers import Answer, from_ipc, located, score_batch, to_ipc
from modelyard.batch.engine import Deliver, Scored, Task
from modelyard.batch.scorer import Scorer
from modelyard.batch.shared import BlockRef, Blocks, read
from modelyard.batch.sources import Chunk
from modelyard.domain.batch import check_workers
from modelyard.errors import ModelFailed, ModelyardError
from modelyard.packaging import load_package

WORKERS_WHEN = 2.0
"""Workers score a chosen job's batches when the first took this many times longer to
score than to read: writing, and the copies to and from workers, cost about a read each."""

ModelKey: TypeAlias = "tuple[str, str, tuple[str, ...]]"
"""A scorer's identity: the package's folder, its digest and the columns kept."""

Pending: TypeAlias = "tuple[Chunk, BlockRef | None, Future[Any]]"
"""A batch sent to a worker: the chunk, the shared-memory block holding it (None: it went
as bytes), the answer."""


class WorkerPool:
    """Worker processes kept from one job to the next, so a job does not pay for starting
    them (a fresh interpreter, imports, the model loaded) each time.

    >>> pool = WorkerPool()                  # nothing starts yet
    >>> LocalEngine(4, pool=pool).run(...)   # starts 4 workers; the next job reuses them
    >>> pool.close()                         # stops them (``yard.close()`` does)

    A worker keeps the last package it loaded (one model in memory), so jobs of the same
    version load it once per worker; so does this process for jobs scored in it (one
    worker). Asking for another number of workers restarts them.
    """

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._workers = 0
        self._lock = threading.Lock()
        self._here: dict[ModelKey, Scorer] = {}
        self._here_lock = threading.Lock()  # a load here does not hold up the processes

    def scorer(self, model: ModelKey) -> Scorer:
        """The scorer of ``model`` in this process: the last one loaded here is kept."""
        with self._here_lock:
            return _kept(self._here, model)

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
        with self._here_lock:
            self._here.clear()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor, self._workers = None, 0


class LocalEngine:
    """Score on this machine with ``workers`` processes (1: in this process); ``pool``
    keeps them between jobs (default: started for this job and stopped after it);
    ``choose``: ``workers`` is the most, the first batch decides (see the module)."""

    def __init__(
        self,
        workers: int,
        *,
        in_flight: int | None = None,
        pool: WorkerPool | None = None,
        choose: bool = False,
    ) -> None:
        self.workers = check_workers(workers)
        self.in_flight = in_flight or max(2, 2 * self.workers)
        self.pool = pool
        self.choose = choose
        self.most = self.workers
        self.peak_in_flight = 0
        self.block_prefix = f"modelyard-{uuid.uuid4().hex[:8]}-"
        self._here: Scorer | None = None

    def run(self, task: Task, deliver: Deliver) -> None:
        chunks = task.source.chunks()
        if self.choose:
            chunks = self._first_here(task, chunks, deliver)
        if self.workers == 1:
            self._run_here(task, chunks, deliver)
            return
        pool = self.pool or WorkerPool()
        try:
            self._run_pool(pool, task, chunks, deliver)
        finally:
            if self.pool is None:
                pool.close()

    def _held(self, count: int) -> None:
        self.peak_in_flight = max(self.peak_in_flight, count)

    def _scorer(self, task: Task) -> Scorer:
        """The job's scorer in this process, loaded once (kept by the pool, if any)."""
        if self._here is None:
            model = _model_key(task)
            self._here = _kept({}, model) if self.pool is None else self.pool.scorer(model)
        return self._here

    def _first_here(self, task: Task, chunks: Iterator[Chunk], deliver: Deliver) -> Iterator[Chunk]:
        """Score the first batch here, timing its reading and its scoring, and set
        ``workers`` for the rest (1 when there is no rest); the chunks left."""
        started = time.perf_counter()
        first = next(chunks, None)
        read_ms = (time.perf_counter() - started) * 1000
        self.workers = 1
        if first is None:
            return chunks
        self._held(1)
        scored = _scored_here(self._scorer(task), first)
        deliver(scored)
        second = next(chunks, None)
        if second is None:
            return chunks
        self.workers = workers_for(scored.compute_ms, read_ms, self.most)
        return itertools.chain([second], chunks)

    def _run_here(self, task: Task, chunks: Iterator[Chunk], deliver: Deliver) -> None:
        scorer = self._scorer(task)
        for chunk in chunks:
            self._held(1)
            deliver(_scored_here(scorer, chunk))

    def _run_pool(
        self, pool: WorkerPool, task: Task, chunks: Iterator[Chunk], deliver: Deliver
    ) -> None:
        executor = pool.executor(self.workers)
        model = _model_key(task)
        blocks = Blocks(self.block_prefix)
        pending: deque[Pending] = deque()
        try:
            for chunk in chunks:
                ref = blocks.put(chunk.batch)
                data = to_ipc(chunk.batch) if ref is None else ref  # shared memory is short
                pending.append((chunk, ref, executor.submit(_score_in_worker, model, data)))
                self._held(len(pending))
                while len(pending) >= self.in_flight:
                    _deliver_first(pending, deliver, blocks)
            while pending:
                _deliver_first(pending, deliver, blocks)
        except BrokenProcessPool:
            pool.discard(executor)
            raise ModelFailed("a scoring worker process died (out of memory, or killed)") from None
        finally:
            _drain(pending)
            blocks.close()


def workers_for(compute_ms: float, read_ms: float, most: int) -> int:
    """The workers for a job whose first batch took ``read_ms`` to read and
    ``compute_ms`` to score here: 1 when scoring is cheap beside reading, else ``most``."""
    return 1 if compute_ms < WORKERS_WHEN * read_ms else most


def _scored_here(scorer: Scorer, chunk: Chunk) -> Scored:
    started = time.perf_counter()
    outputs = located(score_batch(scorer, chunk.batch), chunk)
    elapsed = (time.perf_counter() - started) * 1000
    return Scored(chunk.file, chunk.offset, chunk.batch, outputs, elapsed)


def _deliver_first(pending: deque[Pending], deliver: Deliver, blocks: Blocks) -> None:
    chunk, ref, future = pending.popleft()
    answer, elapsed = future.result()
    if ref is not None:
        blocks.release(ref)
    outputs = located(answer, chunk)
    deliver(Scored(chunk.file, chunk.offset, chunk.batch, outputs, elapsed))


def _drain(pending: deque[Pending]) -> None:
    """A job that stops early leaves the kept workers idle: what has not started is
    cancelled, what has is waited for (its answer dropped), so no worker reads a block
    once it is unlinked."""
    for _, _, future in pending:
        future.cancel()
    wait([future for _, _, future in pending])


def _model_key(task: Task) -> ModelKey:
    return (str(task.package), task.digest, tuple(task.keep))


def _kept(kept: dict[ModelKey, Scorer], model: ModelKey) -> Scorer:
    """The scorer of ``model`` (package, digest, kept columns) from ``kept``, else loaded
    and verified now and kept there in place of the one before."""
    scorer = kept.get(model)
    if scorer is None:
        kept.clear()  # one model in memory: the one before is dropped before loading
        package, digest, keep = model
        scorer = kept[model] = Scorer(load_package(package, digest), list(keep))
    return scorer


# -- in a worker process ---------------------------------------------------------------

_WORKER: dict[ModelKey, Scorer] = {}


def _start_worker() -> None:
    """BLAS gets one thread: the workers are the parallelism."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _score_in_worker(model: ModelKey, data: BlockRef | bytes) -> tuple[Answer, float]:
    """Score the batch in ``data``: a shared-memory block, or IPC bytes."""
    started = time.perf_counter()
    try:
        scorer = _kept(_WORKER, model)
    except ModelyardError as exc:
        return ("error", exc.message), 0.0
    batch = from_ipc(data) if isinstance(data, bytes) else read(data)
    answer = score_batch(scorer, batch)
    elapsed = (time.perf_counter() - started) * 1000
    return answer, elapsed
