from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch.sinks import infer_format, open_sink
from modelyard.errors import Conflict, InvalidInput

SCHEMA = pa.schema([("prediction", pa.int64())])


def batch(values: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"prediction": values})


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_nothing_is_under_the_final_name_until_commit(tmp_path: Path, kind: str) -> None:
    final = tmp_path / "deep" / f"out.{kind}"
    sink = open_sink(str(final), kind, token="t1")
    sink.write(batch([1, 2]))
    sink.write(batch([3]))
    assert not final.exists() and Path(sink.temp_path).name.startswith(".out.")
    digest = sink.commit(SCHEMA)
    assert final.is_file() and not Path(sink.temp_path).exists()
    assert digest == hashlib.sha256(final.read_bytes()).hexdigest()
    assert sink.rows == 3
    if kind == "parquet":
        assert pq.read_table(final).column("prediction").to_pylist() == [1, 2, 3]
    else:
        assert final.read_text().splitlines() == ['"prediction"', "1", "2", "3"]


def test_abort_leaves_nothing_behind(tmp_path: Path) -> None:
    sink = open_sink(str(tmp_path / "out.parquet"), "parquet", token="t2")
    sink.write(batch([1]))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_refused_unless_overwritten(tmp_path: Path) -> None:
    final = tmp_path / "out.parquet"
    final.write_text("old")
    with pytest.raises(Conflict, match="exists already"):
        open_sink(str(final), "parquet", token="t3")
    sink = open_sink(str(final), "parquet", token="t3", overwrite=True)
    sink.commit(SCHEMA)
    assert pq.read_table(final).num_rows == 0


def test_formats() -> None:
    assert infer_format("x/out.CSV", None) == "csv"
    assert infer_format("x/out.parquet", None) == "parquet"
    assert infer_format("x/out", "csv") == "csv"
    with pytest.raises(InvalidInput, match="not one of parquet, csv"):
        infer_format("x/out", "json")
