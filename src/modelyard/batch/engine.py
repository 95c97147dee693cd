"""The engine interface: what scores a job's batches, wherever it runs.

An engine takes a ``Task`` (a verified package, a source, the columns to keep) and
hands every scored batch, in input order, to ``deliver``; the caller writes the output
and the prediction log. ``LocalEngine`` (``batch/local.py``): this process, or worker
processes on this machine. ``RayEngine`` (``batch/raydata.py``): Ray Data on a Ray
cluster; only it imports Ray, so nothing on the local path loads it.

>>> engine = engine_for("local", workers=4)     # or ("ray", workers=8, address=...)
>>> engine.run(Task(package, digest, source, keep=["id"]), deliver=sink_and_log)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from modelyard.batch.sources import Source
from modelyard.domain.batch import check_engine
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.batch.local import WorkerPool


@dataclass(frozen=True)
class Task:
    """What to score: the package (checked against ``digest`` where it is loaded), the
    input, the input columns to copy beside the outputs, and the input columns the
    prediction log reads (``log_inputs``: an engine that scores elsewhere sends back only
    these with each batch, and its row count)."""

    package: Path
    digest: str
    source: Source
    keep: list[str] = field(default_factory=list)
    log_inputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scored:
    """One scored batch: where it came from, the input rows (at least the task's
    ``log_inputs`` columns, and as many rows as the outputs) and the output rows."""

    file: str
    offset: int
    inputs: pa.RecordBatch
    outputs: pa.RecordBatch
    compute_ms: float


Deliver = Callable[[Scored], None]


class Engine(Protocol):
    """Scores every batch of a task and hands them to ``deliver`` in input order.

    A batch that breaks the signature raises ``SignatureError`` naming the file and row
    (``SignatureError.located``); nothing after it is delivered. ``workers`` is how many
    scored (an engine that chooses them knows it once ``run`` has scored a batch).
    """

    workers: int

    def run(self, task: Task, deliver: Deliver) -> None: ...


def engine_for(
    name: str,
    *,
    workers: int,
    address: str | None = None,
    pool: WorkerPool | None = None,
    choose: bool = False,
) -> Engine:
    """The engine called ``name`` with ``workers`` scoring processes (Ray: actors);
    ``address`` is the Ray cluster's (default ``MODELYARD_RAY_ADDRESS``); ``pool`` keeps
    the local engine's worker processes from one job to the next; ``choose`` lets the
    local engine score in this process when the model is cheap beside reading the input
    (``workers`` is then the most it uses). A cluster address that accepts no connection
    is refused here, in seconds, before any job is recorded."""
    check_engine(name)
    if name == "ray":
        from modelyard.batch.raydata import RayEngine, check_reachable

        check_reachable(address)
        return RayEngine(workers, address=address)
    if address is not None:
        raise InvalidInput("a Ray address goes with the ray engine only (--engine ray)")
    from modelyard.batch.local import LocalEngine

    return LocalEngine(workers, pool=pool, choose=choose)
