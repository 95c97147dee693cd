"""Batches in shared memory: written once, read in place, blocks reused and unlinked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from modelyard.batch.shared import Blocks, read

SHM = Path("/dev/shm")


def batch(rows: int) -> pa.RecordBatch:
    values = np.arange(rows, dtype=np.float64)
    return pa.record_batch({"id": np.arange(rows), "x": values, "name": [f"r{i}" for i in values]})


def names(prefix: str) -> set[str]:
    return {path.name for path in SHM.glob(f"{prefix}*")}


def test_a_batch_is_read_as_written_and_outlives_its_block() -> None:
    blocks = Blocks("modelyard-test-read-")
    try:
        ref = blocks.put(batch(1_000))
        first = read(ref)
        assert first.equals(batch(1_000))
    finally:
        blocks.close()
    assert not names("modelyard-test-read-")
    assert first.column("name")[999].as_py() == "r999.0"  # still mapped while it lives


def test_a_free_block_holds_the_next_batch_and_close_unlinks_all() -> None:
    prefix = "modelyard-test-reuse-"
    blocks = Blocks(prefix)
    try:
        ref = blocks.put(batch(1_000))
        held = blocks.put(batch(10))
        assert names(prefix) == {ref[0], held[0]}
        blocks.release(ref)
        again = blocks.put(batch(500))  # smaller: the free block takes it
        assert again[0] == ref[0] and read(again).equals(batch(500))
        blocks.release(again)
        larger = blocks.put(batch(5_000))  # the free block is too small: replaced
        assert larger[0] not in (ref[0], held[0]) and names(prefix) == {held[0], larger[0]}
        assert read(larger).equals(batch(5_000))
    finally:
        blocks.close()
    assert not names(prefix)
