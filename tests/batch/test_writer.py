"""The writer thread: input order, a byte budget on what is queued, failures raised here."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from modelyard.batch.engine import Scored
from modelyard.batch.writer import Writer


def scored(index: int, rows: int = 1_000) -> Scored:
    batch = pa.record_batch([pa.array([float(index)] * rows)], names=["prediction"])
    return Scored("in.parquet", index * rows, batch, batch, 0.0)


def test_batches_are_written_in_order_and_the_queue_stays_within_its_budget() -> None:
    size = 2 * scored(0).outputs.nbytes  # inputs and outputs of one batch
    gate = threading.Event()
    written: list[int] = []

    def write(item: Scored) -> None:
        gate.wait()  # a slow disk: the engine gets ahead until the budget stops it
        written.append(item.offset)

    writer = Writer(write, budget=3 * size)

    def engine() -> None:
        for index in range(20):
            writer.put(scored(index))

    blocked = threading.Thread(target=engine)
    blocked.start()
    blocked.join(timeout=0.5)
    assert blocked.is_alive()  # waiting for room: three batches queued, none written
    gate.set()
    blocked.join(timeout=30)
    writer.close()
    assert written == [i * 1_000 for i in range(20)]
    assert writer.peak_bytes <= 3 * size and writer.written_rows == 20_000


def test_a_failed_write_is_raised_by_the_next_put_or_by_close() -> None:
    def write(item: Scored) -> None:
        if item.offset == 2_000:
            raise OSError("No space left on device")

    writer = Writer(write, budget=1)  # one batch at a time
    with pytest.raises(OSError, match="No space left"):
        for index in range(10):
            writer.put(scored(index))
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    quiet = Writer(lambda item: None)
    quiet.put(scored(0))
    quiet.abort()  # nothing raised, the thread is gone
    assert not any(t.name == "batch-writer" and t.is_alive() for t in threading.enumerate())
