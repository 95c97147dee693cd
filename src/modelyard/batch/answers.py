"""Scoring one batch wherever an engine runs it, and raising its failure where the batch is
delivered: shared by the local engine's worker processes and the Ray engine's actors.

A failure travels as plain values (exceptions with their own constructors do not cross
a process boundary intact), and batches as Arrow IPC: bytes to and from Ray's actors,
a shared-memory block to the local engine's workers (``batch/shared.py``).

>>> answer = score_batch(scorer, batch)            # in a worker
>>> outputs = located(answer, chunk)               # where it is delivered: raises, naming the row
"""

from __future__ import annotations

from typing import TypeAlias

import pyarrow as pa

from modelyard.batch.scorer import Scorer
from modelyard.batch.sources import Chunk
from modelyard.errors import ModelFailed, ModelyardError, SignatureError

Answer: TypeAlias = "pa.RecordBatch | tuple[str, ...]"


def score_batch(scorer: Scorer, batch: pa.RecordBatch) -> Answer:
    """The scored batch, or its failure as a tuple of strings."""
    try:
        scored: pa.RecordBatch = scorer.score(batch)
        return scored
    except SignatureError as exc:
        return ("signature", exc.column, exc.problem, "" if exc.row is None else str(exc.row))
    except ModelyardError as exc:
        return ("error", exc.message)
    except Exception as exc:
        return ("model", f"{type(exc).__name__}: {exc}")


def located(answer: Answer, chunk: Chunk) -> pa.RecordBatch:
    """The outputs, or the failure raised naming the chunk's file and rows."""
    if isinstance(answer, pa.RecordBatch):
        return answer
    kind, *details = answer
    if kind == "signature":
        column, problem, row = details
        error = SignatureError(column, problem, row=int(row) if row else None)
        raise error.located(chunk.file, chunk.offset)
    last = chunk.offset + chunk.batch.num_rows - 1
    where = f"'{chunk.file}', rows {chunk.offset} to {last}"
    if kind == "error":
        raise ModelyardError(f"{where}: {details[0]}")
    raise ModelFailed(f"the model failed on {where}: {details[0]}")


def to_ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pa.RecordBatch:
    return pa.ipc.open_stream(data).read_next_batch()
