from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch.sources import Fingerprinter, open_source, sized
from modelyard.errors import InvalidInput, NotFound
from modelyard.tracking.datasets import profile_path
from tests.batch.data import frame, write_parts


def test_a_folder_is_read_file_by_file_in_name_order_with_offsets(tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=100)
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.parquet").write_text("not parquet")
    source = open_source(folder, batch_rows=40)
    assert [Path(f).name for f in source.files] == [f"part-{i}.parquet" for i in range(3)]
    assert source.total_rows == 300 and source.format == "parquet"
    chunks = list(source.chunks())
    assert [(Path(c.file).name, c.offset, c.batch.num_rows) for c in chunks[:3]] == [
        ("part-0.parquet", 0, 40),
        ("part-0.parquet", 40, 40),
        ("part-0.parquet", 80, 20),
    ]
    ids = pa.concat_arrays([c.batch.column("id") for c in chunks]).to_pylist()
    assert ids == list(range(300))


def test_batches_hold_about_the_byte_target_across_row_groups(tmp_path: Path) -> None:
    """Row groups smaller than the target are joined, never across files, into equal
    batches (as many as the target asks); the row cap holds. Two 8-byte columns: 16
    bytes a row, so 4,800 bytes is 300 rows: 1,000 rows are 4 batches of 250."""
    folder = tmp_path / "in"
    folder.mkdir()
    for part in range(2):
        ids = np.arange(part * 1_000, (part + 1) * 1_000)
        table = pa.table({"id": ids, "a": ids * 0.5})
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=50)
    source = open_source(folder, batch_bytes=4_800)
    assert source.total_rows == 2_000
    sizes = [(Path(c.file).name, c.offset, c.batch.num_rows) for c in source.chunks()]
    assert sizes == [
        *(
            (f"part-{part}.parquet", start, 250)
            for part in range(2)
            for start in range(0, 1_000, 250)
        )
    ]
    assert 4_000 <= max(c.batch.nbytes for c in source.chunks()) <= 4_800  # (validity bitmaps)
    ids = pa.concat_arrays([c.batch.column("id") for c in source.chunks()]).to_pylist()
    assert ids == list(range(2_000))
    capped = open_source(folder, batch_bytes=4_800, batch_rows=70)
    assert {c.batch.num_rows for c in capped.chunks()} == {70, 20}  # 1,000 = 14 x 70 + 20


def test_a_slow_consumer_finds_no_more_than_a_batch_or_two_decoded(tmp_path: Path) -> None:
    """Parquet is decoded as the batches are taken: a model slower than the reader (every
    forest) never finds the rest of the file decoded and waiting in memory."""
    path = tmp_path / "wide.parquet"
    ids = np.arange(400_000)
    table = pa.table({f"f{i}": ids * (i + 0.5) for i in range(8)})  # 25.6 MB in memory
    pq.write_table(table, path, row_group_size=20_000)
    source = open_source(path, batch_bytes=2 * 2**20)
    held = []
    for chunk in source.chunks():
        held.append(pa.total_allocated_bytes() - chunk.batch.nbytes)
        time.sleep(0.05)  # scoring: the reader could run ahead meanwhile
    assert len(held) == 13
    assert max(held) < 12 * 2**20, held  # a few 2 MB batches and row groups, not the file


def test_a_batch_larger_than_the_target_is_sliced() -> None:
    read = [pa.record_batch({"x": list(range(1_000))}), pa.record_batch({"x": [1, 2, 3]})]
    out = list(sized(read, target_bytes=8 * 400))  # 400 int64 values
    assert [b.num_rows for b in out] == [400, 400, 203]
    assert pa.concat_arrays([b.column("x") for b in out]).to_pylist() == [
        *range(1_000),
        1,
        2,
        3,
    ]


def test_a_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=1, rows=10)
    with pytest.raises(InvalidInput, match="batch_bytes must be at least 1, got 0"):
        open_source(folder, batch_bytes=0)
    with pytest.raises(InvalidInput, match="batch_rows must be at least 1, got -3"):
        open_source(folder, batch_rows=-3)


def test_a_csv_file_streams_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    frame(250).to_csv(path, index=False)
    source = open_source(path, batch_rows=100)
    assert source.format == "csv" and source.total_rows is None
    assert sum(c.batch.num_rows for c in source.chunks()) == 250


def test_a_single_file_has_the_fingerprint_a_run_gives_it(tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=2, rows=50)
    single = open_source(folder / "part-0.parquet")
    assert Fingerprinter(single).result() == profile_path(folder / "part-0.parquet").fingerprint
    whole = Fingerprinter(open_source(folder)).result()
    assert len(whole) == 64 and whole != single.fingerprint()
    (folder / "part-1.parquet").write_bytes((folder / "part-0.parquet").read_bytes())
    assert open_source(folder).fingerprint() != whole  # a changed file changes it


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "missing.parquet", NotFound, "does not exist"),
        (lambda p: (p / "x.json").write_text("{}") and p / "x.json", InvalidInput, "not a Parquet"),
        (lambda p: (p / "empty").mkdir() or p / "empty", InvalidInput, "holds no Parquet"),
        (
            lambda p: (p / "bad.parquet").write_text("no") and p / "bad.parquet",
            InvalidInput,
            "cannot read",
        ),
    ],
)
def test_bad_inputs_are_named(tmp_path: Path, make, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        open_source(make(tmp_path))


def test_a_folder_mixing_formats_is_refused(tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=1, rows=10)
    frame(10).to_csv(folder / "more.csv", index=False)
    with pytest.raises(InvalidInput, match="mixes Parquet and CSV"):
        open_source(folder)
