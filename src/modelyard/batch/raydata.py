"""The Ray Data engine: a job's batches read and scored by a Ray cluster.

The same job as the local engine, spread over a running Ray cluster::

    from_items(files) ─ map_batches(ScoringActor, batch_size=1, ActorPoolStrategy(workers))
      one row per file    package verified and loaded once per actor; a call reads one
                          file and yields an answer per batch, each a block of its own
    ─ iter_rows (input order) ─► deliver: this process writes the output and the log

Each scoring actor reads its file with the same reader as the local engine
(``Source.chunks``: the same batches, each knowing its file and first row), so the
outputs are the same bytes; there is no read stage, so no read task starts a worker
process of its own. A call is a generator: each answer leaves the actor as a block of
its own (``target_max_block_size`` is set to one byte for the job), and the call runs
at most two answers ahead of Ray Data taking them, so an actor holds about one batch of
its file, however large the file. A file is one actor's (its batches in order). A job
of fewer files than workers (one large file, say) would leave actors idle, so it gets a
read stage: Ray tasks (no CPU of their own) read the files with the same reader and
hand out each batch as a row, and the actors score the batches as they come::

    from_items(files) ─ map_batches(read_batches, TaskPool) ─ map_batches(ScoringActor, ...)
                         one row per batch (file, offset, Arrow IPC)

An answer is one row: the outputs as
Arrow IPC, and of the inputs only the columns the prediction log reads
(``Task.log_inputs``; none without ``--log-to``), which still carry the batch's row
count. Ray Data restarts an actor that dies and retries its call; every job starts its
actors anew (3 to 5 s on 2 busy cores, most of a small job: ``benchmarks/README.md``).

The package's files travel once through the object store and each actor verifies
them against the digest before it loads the model: an actor on another machine
needs no shared folder for the package, but does need to reach the input (a path
every node sees, or an fsspec URL). Failures come back as values and are raised
here naming the file, row and column, exactly as the local engine raises them.

The cluster is the one this process is connected to already, else ``address``,
else ``MODELYARD_RAY_ADDRESS``, else Ray's own default (``RAY_ADDRESS``, a cluster
started on this machine with ``ray start``, or a new local one). Ray is imported
here only: nothing on the local path loads it.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelyard.batch.answers import from_ipc, located, score_batch, to_ipc
from modelyard.batch.engine import Deliver, Scored, Task
from modelyard.batch.scorer import Scorer
from modelyard.batch.sources import Chunk, Source
from modelyard.domain.batch import check_workers
from modelyard.errors import InvalidInput, NotConfigured

ADDRESS_VARIABLE = "MODELYARD_RAY_ADDRESS"
_UNREADABLE = "unreadable"
PROBE_SECONDS = 3.0
_NOT_HOST_PORT = ("auto", "local")


def ray_address(address: str | None) -> str | None:
    """The cluster to connect to: ``address``, else ``MODELYARD_RAY_ADDRESS``, else None
    (Ray's default)."""
    chosen = address or os.environ.get(ADDRESS_VARIABLE) or None
    if chosen is not None and not chosen.strip():
        raise InvalidInput("the Ray address is empty")
    return chosen


def check_reachable(address: str | None, timeout: float = PROBE_SECONDS) -> None:
    """Refuse, within ``timeout`` seconds, a cluster ``host:port`` (or ``ray://host:port``)
    that accepts no connection: Ray itself would retry for a minute or more before it
    gave up. ``auto``, ``local`` and no address are left to Ray."""
    chosen = ray_address(address)
    if chosen is None or chosen in _NOT_HOST_PORT:
        return
    host, _, port = chosen.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"the Ray address '{chosen}' is not host:port (or ray://host:port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise NotConfigured(f"cannot reach a Ray cluster at '{chosen}': {reason}") from None


class RayEngine:
    """Score on a Ray cluster with ``workers`` scoring actors (one CPU each)."""

    def __init__(self, workers: int, *, address: str | None = None) -> None:
        self.workers = check_workers(workers)
        self.address = address

    def run(self, task: Task, deliver: Deliver) -> None:
        ray = _import_ray()
        connected_here = self._connect(ray)
        try:
            with warnings.catch_warnings():
                # planning, Ray Data counts the read stage's one input per file, not its batches
                warnings.filterwarnings("ignore", "The minimum number of concurrent actors")
                for scored in self._scored(ray, task):
                    deliver(scored)
        finally:
            if connected_here:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Connect unless this process is connected already; True if it connected now."""
        if ray.is_initialized():
            return False
        address = ray_address(self.address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at '{address}'" if address else "(no address given)"
            raise NotConfigured(f"cannot connect to a Ray cluster {where}: {exc}") from None
        return True

    def _scored(self, ray: Any, task: Task) -> Iterator[Scored]:
        import ray.data

        context = ray.data.DataContext.get_current()
        options = context.execution_options
        saved = (
            options.preserve_order,
            context.enable_progress_bars,
            context.target_max_block_size,
        )
        options.preserve_order = True  # delivered in input order
        context.enable_progress_bars = False
        context.target_max_block_size = 1  # each answer a block of its own, sent as it is made
        try:
            yield from self._pipeline(ray, task)
        finally:
            options.preserve_order, context.enable_progress_bars, context.target_max_block_size = (
                saved
            )

    def _pipeline(self, ray: Any, task: Task) -> Iterator[Scored]:
        package = ray.put(_package_files(task.package))
        count = len(task.source.files)
        work = ray.data.from_items(
            [{"path": path} for path in task.source.files], override_num_blocks=count
        )
        if count < self.workers:  # too few files for the actors: read tasks hand out batches
            work = work.map_batches(
                _read_batches,
                batch_size=1,
                batch_format="pyarrow",
                fn_kwargs={"source": task.source},
                compute=ray.data.TaskPoolStrategy(size=count),
                num_cpus=0,  # decoding is pyarrow's own threads; the CPUs go to the scorers
            )
        scored = work.map_batches(
            _ScoringActor,
            batch_size=1,  # one file, or one batch, per call
            batch_format="pyarrow",
            fn_constructor_args=(package, task.digest, list(task.keep)),
            fn_kwargs={"source": task.source, "logged": list(task.log_inputs)},
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=1,
        )
        for row in scored.iter_rows():
            yield _delivered(row)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NotConfigured(
            "the Ray engine needs Ray: install modelyard with the 'ray' extra (modelyard[ray])"
        ) from None
    return ray


def _package_files(directory: Path) -> dict[str, bytes]:
    """Every file of the package by its path inside it (verified again where it is loaded)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _delivered(row: dict[str, Any]) -> Scored:
    """The scored batch a result row carries; a failure is raised naming where it was."""
    if row["failure"] and json.loads(row["failure"])[0] == _UNREADABLE:
        raise InvalidInput(json.loads(row["failure"])[1])
    chunk = Chunk(row["file"], int(row["offset"]), from_ipc(row["inputs"]))
    answer = tuple(json.loads(row["failure"])) if row["failure"] else from_ipc(row["outputs"])
    outputs = located(answer, chunk)
    return Scored(chunk.file, chunk.offset, chunk.batch, outputs, float(row["compute_ms"]))


# -- on the cluster -------------------------------------------------------------------


def _result(
    file: str, offset: int, inputs: bytes, outputs: bytes, failure: str, compute_ms: float
) -> pa.Table:
    return pa.table(
        {
            "file": [file],
            "offset": [offset],
            "inputs": [inputs],
            "outputs": [outputs],
            "failure": [failure],
            "compute_ms": [compute_ms],
        }
    )


def _read_batches(paths: pa.Table, source: Source) -> Iterator[pa.Table]:
    """The read stage of a job with fewer files than actors: one row per batch of each
    file (where it starts, the batch as Arrow IPC), for any actor to score."""
    for path in paths.column("path").to_pylist():
        try:
            for chunk in replace(source, files=[path]).chunks():
                yield _read(chunk.file, chunk.offset, to_ipc(chunk.batch), "")
        except InvalidInput as exc:
            failure = json.dumps([_UNREADABLE, exc.message])
            yield _read(source.location.name_of(path), 0, b"", failure)


def _read(file: str, offset: int, batch: bytes, failure: str) -> pa.Table:
    return pa.table({"file": [file], "offset": [offset], "batch": [batch], "failure": [failure]})


def _unreadable(source: Source, path: str, exc: InvalidInput) -> pa.Table:
    failure = json.dumps([_UNREADABLE, exc.message])
    return _result(source.location.name_of(path), 0, b"", b"", failure, 0.0)


class _ScoringActor:
    """A Ray Data actor: the package verified and loaded once, then each call reads one
    file and yields an answer per batch (outputs, row count, the logged input columns),
    or scores one batch that a read task read (``_read_batches``)."""

    def __init__(self, package: Any, digest: str, keep: list[str]) -> None:
        import ray
        from threadpoolctl import threadpool_limits

        from modelyard.packaging import load_package

        threadpool_limits(1)
        files = ray.get(package) if isinstance(package, ray.ObjectRef) else package
        self._folder = tempfile.TemporaryDirectory(prefix="modelyard-package-")
        root = Path(self._folder.name)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        self.scorer = Scorer(load_package(root, digest), keep)

    def __call__(self, rows: pa.Table, source: Source, logged: list[str]) -> Iterator[pa.Table]:
        if "path" in rows.column_names:
            for path in rows.column("path").to_pylist():
                yield from self._file(source, path, logged)
            return
        for row in rows.to_pylist():
            if row["failure"]:  # a file the read task could not read
                yield _result(row["file"], 0, b"", b"", row["failure"], 0.0)
            else:
                yield self._score(Chunk(row["file"], row["offset"], from_ipc(row["batch"])), logged)

    def _file(self, source: Source, path: str, logged: list[str]) -> Iterator[pa.Table]:
        try:
            for chunk in replace(source, files=[path]).chunks():
                yield self._score(chunk, logged)
        except InvalidInput as exc:
            yield _unreadable(source, path, exc)

    def _score(self, chunk: Chunk, logged: list[str]) -> pa.Table:
        """The answer for one batch; its inputs are the ``logged`` columns only (none
        without a prediction log: the row count still travels)."""
        names = [name for name in logged if name in chunk.batch.schema.names]
        inputs = to_ipc(chunk.batch.select(names))
        started = time.perf_counter()
        answer = score_batch(self.scorer, chunk.batch)
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(answer, pa.RecordBatch):
            return _result(chunk.file, chunk.offset, inputs, to_ipc(answer), "", elapsed)
        failure = json.dumps(list(answer))
        return _result(chunk.file, chunk.offset, inputs, b"", failure, elapsed)
