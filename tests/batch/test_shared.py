"""Batches in shared memory: written once, read in place, blocks reused and unlinked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modelyard.batch.answers import to_ipc
from modelyard.batch.local import _score_in_worker
from modelyard.batch.shared import BlockRef, Blocks, read
from modelyard.packaging import package_digest, write_package
from tests.batch.data import FEATURES, frame, model

SHM = Path("/dev/shm")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("pkg") / "model"
    manifest = write_package(model(), directory, input_example=frame(5)[FEATURES])
    return directory, package_digest(manifest)


def batch(rows: int) -> pa.RecordBatch:
    values = np.arange(rows, dtype=np.float64)
    return pa.record_batch({"id": np.arange(rows), "x": values, "name": [f"r{i}" for i in values]})


def names(prefix: str) -> set[str]:
    return {path.name for path in SHM.glob(f"{prefix}*")}


def put(blocks: Blocks, rows: int) -> BlockRef:
    ref = blocks.put(batch(rows))
    assert ref is not None
    return ref


def test_a_batch_is_read_as_written_and_outlives_its_block() -> None:
    blocks = Blocks("modelyard-test-read-")
    try:
        ref = put(blocks, 1_000)
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
        ref = put(blocks, 1_000)
        held = put(blocks, 10)
        assert names(prefix) == {ref[0], held[0]}
        blocks.release(ref)
        again = put(blocks, 500)  # smaller: the free block takes it
        assert again[0] == ref[0] and read(again).equals(batch(500))
        blocks.release(again)
        larger = put(blocks, 5_000)  # the free block is too small: replaced
        assert larger[0] not in (ref[0], held[0]) and names(prefix) == {held[0], larger[0]}
        assert read(larger).equals(batch(5_000))
    finally:
        blocks.close()
    assert not names(prefix)


def test_a_batch_that_does_not_fit_in_shared_memory_goes_as_bytes(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    """With /dev/shm short (32 MB free here), no block is made: the worker is sent
    the batch as IPC bytes, and answers as from a block."""
    short = Blocks("modelyard-test-short-", free_bytes=lambda: 32 * 2**20)
    assert short.put(batch(10)) is None and not names("modelyard-test-short-")
    inputs = pa.RecordBatch.from_pandas(frame(300))
    blocks = Blocks("modelyard-test-worker-")
    try:
        ref = blocks.put(inputs)
        assert ref is not None
        model = (str(package[0]), package[1], ("id",))
        from_block, _ = _score_in_worker(model, ref)
        from_bytes, _ = _score_in_worker(model, to_ipc(inputs))
    finally:
        blocks.close()
    assert isinstance(from_block, pa.RecordBatch) and from_block.equals(from_bytes)
    assert from_block.schema.names == ["id", "prediction", "score_0", "score_1"]
