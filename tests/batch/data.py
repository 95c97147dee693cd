"""Inputs for batch tests: a small classifier on four float columns and Parquet/CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

FEATURES = ["a", "b", "c", "d"]


def frame(rows: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows with an ``id`` (from ``start``), a ``customer`` and four features."""
    rng = np.random.default_rng(seed + start)
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    data.insert(0, "id", np.arange(start, start + rows))
    data.insert(1, "customer", [f"c{i}" for i in range(start, start + rows)])
    return data


def model() -> LogisticRegression:
    train = frame(500, seed=7)
    return LogisticRegression().fit(train[FEATURES], (train["a"] + train["b"] > 0).astype(int))


def write_parts(folder: Path, parts: int, rows: int, *, row_group: int | None = None) -> Path:
    """``parts`` Parquet files of ``rows`` rows each, ids running on across them."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        table = pa.Table.from_pandas(frame(rows, start=part * rows), preserve_index=False)
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=row_group)
    return folder


def break_row(path: Path, row: int, column: str = "b") -> None:
    """Leave ``column`` of ``path`` empty at ``row`` (the signature says it is never null)."""
    data = pq.read_table(path).to_pandas()
    data.loc[row, column] = np.nan
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path)


def mend(path: Path, column: str = "b") -> None:
    data = pq.read_table(path).to_pandas()
    data[column] = pd.to_numeric(data[column], errors="coerce").fillna(0.0)
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path)
