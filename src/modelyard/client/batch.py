"""``yard.batch``: score files with a version, on this machine, with a record of the job.

>>> job = yard.batch.score("churn@champion", "s3://bucket/customers/", "scores.parquet",
...                        workers=4, keep=["customer_id"])
>>> job.status, job.rows_out
('succeeded', 1000000)
>>> yard.batch.jobs()[0].id == job.id
True

Scoring always runs here, embedded or remote: the package is fetched (verified by its
digest) and the data is read and written by this process and its workers. A remote
yard receives only the record: who, when, which version and package digest, where the
input and output are, their fingerprints and row counts, the status and the error.
The output appears under its name only when the job succeeded; a failed job's record
says why, and the same call can simply be run again.
"""

from __future__ import annotations

import builtins
import functools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from modelyard.batch.engine import Engine, Scored, Task, engine_for
from modelyard.batch.predictions import BatchLog, JournalWriter
from modelyard.batch.sinks import Sink, infer_format, open_sink
from modelyard.batch.sources import Fingerprinter, Source, open_source
from modelyard.batch.writer import Writer
from modelyard.domain.batch import (
    HEARTBEAT_MS,
    PREDICTION,
    BatchJob,
    JobOutcome,
    JobStatus,
    check_keep,
    check_workers,
)
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import InvalidInput
from modelyard.packaging.signature import Signature

if TYPE_CHECKING:
    from modelyard.batch.local import WorkerPool
    from modelyard.client.backend import Backend
    from modelyard.client.yard import Yard

log = logging.getLogger("modelyard.batch")

Progress = Callable[[int, "int | None"], None]
"""Called, in the caller's thread, with the rows written since its last call, and the
input's total (if known)."""


@dataclass
class _Run:
    """The state of one job while it scores: the engine delivers in the caller's thread,
    the ``Writer``'s thread writes the output and the log."""

    job: BatchJob
    source: Source
    sink: Sink
    log: BatchLog | None
    progress: Progress | None
    rows_in: int = 0
    reported: int = 0

    def write(self, scored: Scored) -> None:
        """On the writer's thread."""
        self.sink.write(scored.outputs)
        if self.log is not None:
            self.log.write(scored)

    def deliver(self, writer: Writer, scored: Scored) -> None:
        writer.put(scored)
        self.rows_in += scored.inputs.num_rows
        self.report(writer)

    def report(self, writer: Writer) -> None:
        """Tell ``progress`` (in the caller's thread) of the rows written since last time."""
        written = writer.written_rows
        if self.progress is not None and written > self.reported:
            self.progress(written - self.reported, self.source.total_rows)
        self.reported = written


class BatchAPI:
    """Batch scoring jobs: run one, list them, read one."""

    def __init__(self, yard: Yard) -> None:
        self._yard = yard
        self._pool: WorkerPool | None = None  # the first job with workers starts them

    def close(self) -> None:
        """Stop the worker processes kept between jobs (``yard.close()`` calls it)."""
        if self._pool is not None:
            self._pool.close()

    def _workers(self) -> WorkerPool:
        if self._pool is None:
            from modelyard.batch.local import WorkerPool

            self._pool = WorkerPool()
        return self._pool

    @property
    def _backend(self) -> Backend:
        return self._yard.backend

    def score(
        self,
        ref: str,
        input: str | Path,
        output: str | Path,
        *,
        workers: int | None = None,
        keep: Sequence[str] = (),
        log_to: str | None = None,
        format: str | None = None,
        overwrite: bool = False,
        batch_rows: int | None = None,
        progress: Progress | None = None,
        engine: str = "local",
        address: str | None = None,
    ) -> BatchJob:
        """Score ``input`` (a Parquet or CSV file, a folder of them, any fsspec URL) with
        version ``ref`` into ``output`` and return the finished job record.

        ``workers`` processes score (1 scores in this process; default: chosen on the first
        batch, scored here: in this process when the model is cheap beside reading the
        input, else on every core; the record says how many scored);
        ``keep`` names input columns copied beside ``prediction`` (and ``score_<class>``
        for classifiers); ``log_to`` also writes the predictions to that endpoint's
        prediction log (embedded yards: the log lives where the yard's files are);
        ``format`` is ``parquet`` or ``csv`` (default: the output's suffix, else Parquet);
        an existing output is refused unless ``overwrite``. ``progress`` is called, in
        this thread, with the rows written since its last call (a thread writes while
        the engine scores) and the input's row count (None for CSV). Batches hold about
        16 MB of input each (``batch_rows`` caps their rows too).
        ``engine="ray"`` scores on a Ray cluster through Ray Data with ``workers`` actors,
        the same outputs as the local engine; ``address`` names the cluster (default
        ``MODELYARD_RAY_ADDRESS``, else Ray's own default). A batch that breaks the
        signature fails the job with an error naming the file, the row and the column.
        """
        kept = check_keep(list(keep))
        count = check_workers(workers if workers is not None else os.cpu_count() or 1)
        scoring = engine_for(
            engine,
            workers=count,
            address=address,
            pool=self._workers(),
            choose=workers is None and engine == "local",
        )
        output_format = infer_format(str(output), format)
        preview = self._backend.get_version(str(ModelRef.parse(ref)))
        source = open_source(input, batch_rows=batch_rows)
        _check_columns(source, preview, kept)
        sink = open_sink(str(output), output_format, token=uuid.uuid4().hex, overwrite=overwrite)
        journal = self._backend.batch_journal(log_to) if log_to is not None else None
        try:
            job = self._backend.start_batch_job(
                str(ModelRef.parse(ref)),
                input_uri=source.uri,
                output_uri=sink.uri,
                output_format=output_format,
                keep=kept,
                workers=count,
                engine=engine,
                log_to=log_to,
            )
            log = self._log(journal, job, _signature(preview).input_names)
        except BaseException:
            if journal is not None:
                journal.close()
            raise
        run = _Run(job, source, sink, log, progress)
        return self._run(run, scoring)

    def _log(
        self, journal: JournalWriter | None, job: BatchJob, inputs: builtins.list[str]
    ) -> BatchLog | None:
        if journal is None or job.log_to is None:
            return None
        return BatchLog(
            journal,
            endpoint=job.log_to,
            revision=self._backend.get_endpoint(job.log_to).revision,
            model=job.model,
            version=job.version,
            job_id=job.id,
            inputs=inputs,
        )

    def _run(self, run: _Run, engine: Engine) -> BatchJob:
        job = run.job
        heartbeat = _Heartbeat(self._backend, job.id)
        writer: Writer | None = None
        try:
            version = self._backend.get_version(job.version_ref)
            package = self._backend.fetch_package(version)
            printer = Fingerprinter(run.source)
            logged = run.log.inputs if run.log is not None else []
            task = Task(package, job.package_digest, run.source, list(job.keep), logged)
            writer = Writer(run.write)
            engine.run(task, functools.partial(run.deliver, writer))
            writer.close()
            run.report(writer)
            output_fingerprint = run.sink.commit(_empty_output(run.source, job.keep))
            outcome = JobOutcome(
                JobStatus.SUCCEEDED,
                rows_in=run.rows_in,
                rows_out=run.sink.rows,
                input_fingerprint=printer.result(),
                output_fingerprint=output_fingerprint,
                input_columns=run.source.columns(),
                output_columns=_columns(run.sink.schema),
                workers=_chosen(engine, job),
            )
        except BaseException as exc:
            if writer is not None:
                writer.abort()  # nothing writes to the sink any more
            run.sink.abort()
            message = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            failed = JobOutcome(
                JobStatus.FAILED,
                rows_in=run.rows_in,
                rows_out=0,
                error=message or type(exc).__name__,
                workers=_chosen(engine, job),
            )
            self._backend.finish_batch_job(job.id, failed)
            raise
        finally:
            heartbeat.stop()
            if run.log is not None:
                run.log.close()
        return self._backend.finish_batch_job(job.id, outcome)

    def jobs(
        self, *, model: str | None = None, status: str | None = None, limit: int = 100
    ) -> builtins.list[BatchJob]:
        """The newest jobs first (of the yard's workspace), by model and status."""
        return self._backend.list_batch_jobs(model, status, limit)

    def job(self, job_id: str) -> BatchJob:
        return self._backend.get_batch_job(job_id)


class _Heartbeat:
    """Renews the job's heartbeat every ``HEARTBEAT_MS`` while it scores, on a thread; a
    job whose process dies stops renewing it and shows ``abandoned`` after ``STALE_MS``.
    A renewal that fails is logged and tried again: it never fails the job."""

    def __init__(self, backend: Backend, job_id: str) -> None:
        self._backend = backend
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="batch-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_MS / 1000):
            try:
                self._backend.heartbeat_batch_job(self._job_id)
            except Exception:
                log.warning("could not renew batch job %s's heartbeat", self._job_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _chosen(engine: Engine, job: BatchJob) -> int | None:
    """How many workers scored, when the engine chose otherwise than the record says."""
    return engine.workers if engine.workers != job.workers else None


def _signature(version: ModelVersion) -> Signature:
    if version.signature is None:
        raise InvalidInput(f"{version.ref} has no signature: batch scoring enforces one")
    return Signature.from_dict(version.signature)


def _check_columns(source: Source, version: ModelVersion, keep: list[str]) -> None:
    """Refuse, before any record is made, an input without a column the job needs."""
    names = set(source.schema.names)
    first = source.location.name_of(source.files[0])
    for column in keep:
        if column not in names:
            raise InvalidInput(f"'{first}' has no column '{column}' to keep (--keep)")
    for spec in _signature(version).inputs:
        if spec.name not in names:
            raise InvalidInput(
                f"'{first}': column '{spec.name}' is missing from the input "
                f"({version.ref} reads {', '.join(_signature(version).input_names)})"
            )


def _empty_output(source: Source, keep: list[str]) -> pa.Schema:
    fields = [source.schema.field(name) for name in keep]
    return pa.schema([*fields, pa.field(PREDICTION, pa.null())])


def _columns(schema: pa.Schema | None) -> list[tuple[str, str]]:
    if schema is None:
        return []
    from modelyard.tracking.datasets import columns_of

    return [(c.name, c.type) for c in columns_of(schema)]
