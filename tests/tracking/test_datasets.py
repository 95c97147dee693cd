from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from modelyard.errors import InvalidInput, NotFound
from modelyard.tracking.datasets import profile_dataset


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 22],
            "income": [1.5, 2.25, None],
            "plan": ["a", "b", "a"],
            "churned": [True, False, True],
            "joined": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )


def test_frame_profile_has_schema_rows_and_a_content_fingerprint() -> None:
    profile = profile_dataset(_frame())
    assert profile.row_count == 3
    assert [(c.name, c.type) for c in profile.columns] == [
        ("age", "integer"),
        ("income", "float"),
        ("plan", "string"),
        ("churned", "boolean"),
        ("joined", "datetime"),
    ]
    assert profile_dataset(_frame()).fingerprint == profile.fingerprint
    changed = _frame()
    changed.loc[1, "plan"] = "c"
    assert profile_dataset(changed).fingerprint != profile.fingerprint


def test_arrow_table_and_frame_of_same_data_agree() -> None:
    table = pa.Table.from_pandas(_frame(), preserve_index=False)
    assert profile_dataset(table).fingerprint == profile_dataset(_frame()).fingerprint


def test_files_are_profiled_by_reading_metadata(tmp_path: Path) -> None:
    parquet = tmp_path / "train.parquet"
    csv = tmp_path / "train.csv"
    _frame().to_parquet(parquet)
    _frame().to_csv(csv, index=False)
    from_parquet = profile_dataset(parquet)
    from_csv = profile_dataset(str(csv))
    assert from_parquet.row_count == from_csv.row_count == 3
    assert from_parquet.uri == parquet.as_uri() and from_parquet.table is None
    assert [c.name for c in from_csv.columns] == list(_frame().columns)


def test_bad_dataset_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        profile_dataset(tmp_path / "missing.parquet")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InvalidInput, match="not Parquet or CSV"):
        profile_dataset(notes)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(InvalidInput, match="cannot read dataset file"):
        profile_dataset(broken)
    with pytest.raises(InvalidInput, match="cannot log a dataset of type list"):
        profile_dataset([1, 2, 3])
