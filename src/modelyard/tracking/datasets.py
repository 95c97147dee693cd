"""Describe a dataset by its content: fingerprint, schema and row count.

Accepts a pandas DataFrame, a PyArrow Table, or a path to a Parquet or CSV file.
The fingerprint is a sha256 over the schema and the data (Arrow IPC bytes for
frames and tables, file bytes for paths), so the same data always gets the same
fingerprint and a changed cell a different one.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from modelyard.domain.datasets import Column
from modelyard.errors import InvalidInput, NotFound

_FILE_SUFFIXES = {".parquet", ".pq", ".csv"}


@dataclass(frozen=True)
class DatasetProfile:
    """What a run records of a dataset before it is stored."""

    fingerprint: str
    row_count: int
    columns: list[Column]
    uri: str | None
    table: pa.Table | None


def _column_type(arrow_type: pa.DataType) -> str:
    checks = (
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_integer, "integer"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "float"),
        (pa.types.is_timestamp, "datetime"),
        (pa.types.is_date, "date"),
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_dictionary, "category"),
    )
    for check, name in checks:
        if check(arrow_type):
            return name
    return str(arrow_type)


def columns_of(schema: pa.Schema) -> list[Column]:
    return [Column(name=field.name, type=_column_type(field.type)) for field in schema]


def _table_fingerprint(table: pa.Table) -> str:
    digest = hashlib.sha256()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(batch)
    digest.update(sink.getvalue())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_file_schema(path: Path) -> tuple[pa.Schema, int]:
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
        return table.schema, table.num_rows
    meta = pq.read_metadata(path)
    return meta.schema.to_arrow_schema(), meta.num_rows


def profile_path(path: Path) -> DatasetProfile:
    if not path.is_file():
        raise NotFound(f"dataset file '{path}' does not exist")
    if path.suffix.lower() not in _FILE_SUFFIXES:
        raise InvalidInput(f"dataset file '{path}' is not Parquet or CSV (by its suffix)")
    try:
        schema, rows = _read_file_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"cannot read dataset file '{path}': {exc}") from None
    return DatasetProfile(
        fingerprint=file_fingerprint(path),
        row_count=rows,
        columns=columns_of(schema),
        uri=path.absolute().as_uri(),
        table=None,
    )


def to_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidInput(
        f"cannot log a dataset of type {type(data).__name__}: "
        "pass a pandas DataFrame, a PyArrow Table or a path to a Parquet or CSV file"
    )


def profile_dataset(data: Any, uri: str | None = None) -> DatasetProfile:
    """Fingerprint, schema and row count of ``data`` (a frame, a table or a file path)."""
    if isinstance(data, str | Path):
        return profile_path(Path(data))
    table = to_arrow(data)
    return DatasetProfile(
        fingerprint=_table_fingerprint(table),
        row_count=table.num_rows,
        columns=columns_of(table.schema),
        uri=uri,
        table=table,
    )
