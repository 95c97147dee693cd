from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from modelyard.batch.sources import Fingerprinter, open_source
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
