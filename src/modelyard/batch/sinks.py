"""Batch output: one Parquet or CSV file, written under a hidden temporary name beside
the final one and renamed only when the whole job succeeded.

>>> sink = open_sink("scores.parquet", "parquet", token=job.id)
>>> sink.write(batch)        # ... for every scored batch, in input order
>>> sink.commit()            # the sha256 of the file; now it exists under its name
>>> sink.abort()             # or: nothing was ever visible under the final name

A failed job therefore never leaves a half-written file under the final name, and
re-running it after fixing the input simply writes again. Locally the rename is atomic
(``os.replace``); on object stores it is the store's move (a copy, then a delete).
The sha256 is taken from the bytes as they are written, so committing reads nothing
back.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pyarrow as pa

from modelyard.batch.sources import Location, locate
from modelyard.domain.batch import check_format
from modelyard.errors import Conflict, InvalidInput


class _HashingFile:
    """A writable binary file that hashes what passes through it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self._raw.write(view)
        return len(view)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return int(self._raw.tell())


class Sink:
    """The output of one job (see ``open_sink``)."""

    def __init__(self, location: Location, output_format: str, temp_path: str) -> None:
        self.location = location
        self.format = output_format
        self.temp_path = temp_path
        self._file: _HashingFile | None = None
        self._writer: Any = None
        self.schema: pa.Schema | None = None
        self.rows = 0

    @property
    def uri(self) -> str:
        return self.location.uri

    def write(self, batch: pa.RecordBatch) -> None:
        """Append ``batch`` (the first one fixes the file's schema)."""
        if self._writer is None:
            self._open(batch.schema)
        elif batch.schema != self.schema:
            batch = _conform(batch, self.schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def _open(self, schema: pa.Schema) -> None:
        filesystem = self.location.filesystem
        if self.location.local:
            raw: Any = open(self.temp_path, "wb")  # noqa: SIM115 - closed by commit/abort
        else:
            raw = filesystem.open(self.temp_path, "wb")
        self._file = _HashingFile(raw)
        self.schema = schema
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(
                self._file, schema, use_dictionary=_dictionary_columns(schema)
            )
        else:
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(self._file, schema)

    def commit(self, empty_schema: pa.Schema) -> str:
        """Close the file and give it its final name; the sha256 of its bytes."""
        if self._writer is None:
            self._open(empty_schema)
        self._writer.close()
        assert self._file is not None
        self._file.close()
        digest = self._file.digest.hexdigest()
        if self.location.local:
            os.replace(self.temp_path, self.location.path)
        else:
            self.location.filesystem.mv(self.temp_path, self.location.path)
        return digest

    def abort(self) -> None:
        """Close and remove the temporary file; the final name was never touched."""
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception:  # closing a half-written file may fail; it is removed anyway
            pass
        if self._file is not None:
            self._file.close()
        _remove(self.location, self.temp_path)


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: not the floats. Scores and regression
    outputs hardly repeat, so a dictionary would be built, overflow and be dropped for
    every page (writing took seven times as long for a classifier's scores)."""
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _conform(batch: pa.RecordBatch, schema: pa.Schema | None) -> pa.RecordBatch:
    assert schema is not None
    try:
        return pa.Table.from_batches([batch]).cast(schema).combine_chunks().to_batches()[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InvalidInput(
            f"output columns changed type between batches ({batch.schema} vs {schema}): {exc}"
        ) from None


def _remove(location: Location, path: str) -> None:
    try:
        if location.local:
            os.unlink(path)
        else:
            location.filesystem.rm(path)
    except (FileNotFoundError, OSError):
        pass


def open_sink(location: str, output_format: str, *, token: str, overwrite: bool = False) -> Sink:
    """The sink for ``location``; refuses an existing output unless ``overwrite``."""
    check_format(output_format)
    where = locate(location)
    if _exists(where) and not overwrite:
        raise Conflict(f"output '{where.uri}' exists already: choose another name or overwrite")
    parent, _, name = where.path.rstrip("/").rpartition("/")
    if not name:
        raise InvalidInput(f"output '{where.uri}' names no file")
    _make_parent(where, parent)
    return Sink(where, output_format, f"{parent}/.{name}.{token}.partial")


def _exists(where: Location) -> bool:
    if where.local:
        return os.path.lexists(where.path)
    return bool(where.filesystem.exists(where.path))


def _make_parent(where: Location, parent: str) -> None:
    try:
        if where.local:
            os.makedirs(parent or "/", exist_ok=True)
        else:
            where.filesystem.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the folder of output '{where.uri}': {exc}") from None


def infer_format(location: str, output_format: str | None) -> str:
    """``output_format``, else what the output's suffix says (default Parquet)."""
    if output_format is not None:
        return check_format(output_format)
    return "csv" if str(location).lower().endswith(".csv") else "parquet"
