"""Batch scoring jobs as records: who scored what, with which version, into where.

A job is created ``running`` when scoring starts and finished once, ``succeeded`` or
``failed`` (with the error). While it scores, its process renews a heartbeat every
``HEARTBEAT_MS``; a running job whose heartbeat is older than ``STALE_MS`` (its process
was killed, or lost the server) is shown ``abandoned``, and may still be finished. The
data never enters the record: only where it was read and written, content fingerprints
and row counts.

>>> job = yard.batch.score("churn@champion", "customers/", "scores.parquet")
>>> job.status, job.version, job.rows_out
('succeeded', 3, 120000)
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from modelyard.errors import InvalidInput


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"  # shown, never stored: running, with no heartbeat for STALE_MS


HEARTBEAT_MS = 30_000
STALE_MS = 5 * 60_000  # ten heartbeats missed


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)
FORMATS = ("parquet", "csv")
ENGINES = ("local", "ray")
PREDICTION = "prediction"
SCORE_PREFIX = "score_"
_COLUMN = re.compile(r"^[^\x00-\x1f]{1,250}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BatchJob:
    """One batch scoring job.

    ``ref`` is what was asked for (``churn@champion``); ``model``, ``version`` and
    ``package_digest`` what actually scored; ``engine`` (``local`` or ``ray``) and
    ``workers`` how (``engine`` is None for jobs recorded before it was kept).
    ``input_dataset`` and ``output_dataset`` are the ids of the dataset records lineage
    links the job to (set when it succeeds).
    """

    id: str
    workspace: str
    ref: str
    model: str
    version: int
    package_digest: str
    status: JobStatus
    input_uri: str
    output_uri: str
    output_format: str
    created_by: str
    created_at: int
    keep: list[str] = field(default_factory=list)
    workers: int = 1
    engine: str | None = None
    log_to: str | None = None
    finished_at: int | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    input_fingerprint: str | None = None
    output_fingerprint: str | None = None
    input_dataset: str | None = None
    output_dataset: str | None = None
    error: str | None = None
    heartbeat_at: int | None = None

    @property
    def version_ref(self) -> str:
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, as the engine that ran it reports it to the record.

    ``columns`` are the input's and the output's (name, type) pairs, for the dataset
    records lineage links to. ``workers`` is how many scored, when the engine chose
    that while scoring (None: as many as the job was started with).
    """

    status: JobStatus
    rows_in: int = 0
    rows_out: int = 0
    input_fingerprint: str | None = None
    output_fingerprint: str | None = None
    input_columns: list[tuple[str, str]] = field(default_factory=list)
    output_columns: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    workers: int | None = None


def parse_status(value: str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"unknown job status '{value}' (expected one of {allowed})") from None


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise InvalidInput(f"output format '{value}' is not one of {', '.join(FORMATS)}")
    return value


def check_keep(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The input columns to copy beside the outputs: named once each, never an output's name."""
    kept: list[str] = []
    for column in columns:
        if not isinstance(column, str) or not _COLUMN.match(column):
            raise InvalidInput(f"--keep column {column!r} is not a column name")
        if column == PREDICTION or column.startswith(SCORE_PREFIX):
            raise InvalidInput(
                f"--keep column '{column}' would clash with the outputs "
                f"('{PREDICTION}' and '{SCORE_PREFIX}<class>')"
            )
        if column in kept:
            raise InvalidInput(f"--keep names column '{column}' twice")
        kept.append(column)
    return kept


def check_workers(workers: int) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 256:
        raise InvalidInput(f"workers must be a whole number from 1 to 256, got {workers!r}")
    return workers


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise InvalidInput(f"batch engine '{name}' is not one of {', '.join(ENGINES)}")
    return name


def check_fingerprint(value: str | None, what: str) -> str | None:
    if value is not None and not _FINGERPRINT.match(value):
        raise InvalidInput(f"{what} fingerprint {value!r} is not a sha256 hex digest")
    return value
