"""Batch input: a Parquet or CSV file, or a folder of them, local or at any fsspec URL,
read in record batches so memory stays bounded whatever the input's size.

>>> source = open_source("s3://bucket/customers/")      # every *.parquet under it, by name
>>> for chunk in source.chunks():                        # about 16 MB of input at a time
...     chunk.file, chunk.offset, chunk.batch.num_rows

Files are read one after another in name order (Parquet a row group at a time as the
batches are taken, CSV with pyarrow's dataset scanner), so a chunk knows its file and
the row it starts at: errors name both. A batch holds about ``BATCH_BYTES`` of input
in memory, whatever the row's width: the reader's batches are joined, or sliced, to
that size within a file. The size is a
trade: every call of a model costs something whatever its rows (a forest dispatches
each tree, and checks its input, once per call: 8% more CPU in 64k-row batches than in
one call), while memory holds a few batches. Memory is bounded by the batch size and by
a Parquet file's row group, which the reader decodes whole (pyarrow writes row groups
of up to a million rows: a few hundred MB at most for wide rows, whatever the file's size).

The fingerprint is a sha256 of the bytes: of the file itself for one file (the same
fingerprint a run gives it when it logs that file as a dataset), else over each file's
name and sha256. It is computed by a thread beside the scan (``Fingerprinter``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from modelyard.errors import InvalidInput, NotFound

BATCH_BYTES = 16 * 2**20
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Location:
    """Where a file or folder is: a filesystem and the path on it, and the URI to record."""

    filesystem: Any  # a pyarrow LocalFileSystem, or an fsspec filesystem
    path: str
    uri: str
    local: bool

    def name_of(self, path: str) -> str:
        """How messages name ``path``: as the user wrote the location, plus the file."""
        if path == self.path:
            return self.uri if not self.local else self.path
        relative = path[len(self.path.rstrip("/")) + 1 :]
        return f"{self.uri.rstrip('/')}/{relative}" if not self.local else path


def locate(location: str | Path) -> Location:
    """A local path (or ``file://`` URL) or an fsspec URL as a ``Location``."""
    text = str(location)
    if not text.strip():
        raise InvalidInput("the location is empty")
    if "://" not in text or text.startswith("file://"):
        from pyarrow.fs import LocalFileSystem

        path = Path(text.removeprefix("file://")).expanduser().absolute()
        return Location(LocalFileSystem(), str(path), path.as_uri(), local=True)
    import fsspec

    try:
        filesystem, path = fsspec.core.url_to_fs(text)
    except (ValueError, ImportError) as exc:
        raise InvalidInput(f"cannot open '{text}': {exc}") from None
    return Location(filesystem, str(path), text, local=False)


@dataclass(frozen=True)
class Chunk:
    """One record batch of the input: its file and the row of that file it starts at."""

    file: str
    offset: int
    batch: pa.RecordBatch


@dataclass
class Source:
    """An input opened for scanning (see ``open_source``)."""

    location: Location
    files: list[str]
    format: str
    schema: pa.Schema
    total_rows: int | None
    batch_bytes: int = BATCH_BYTES
    batch_rows: int | None = None
    file_rows: dict[str, int] = field(default_factory=dict)  # when Parquet footers say

    @property
    def uri(self) -> str:
        return self.location.uri

    def chunks(self) -> Iterator[Chunk]:
        """Every batch of every file, in order; a file that cannot be read is named."""
        for path in self.files:
            name = self.location.name_of(path)
            offset = 0
            for batch in self._batches(path, name):
                if batch.num_rows:
                    yield Chunk(name, offset, batch)
                    offset += batch.num_rows

    def _batches(self, path: str, name: str) -> Iterator[pa.RecordBatch]:
        try:
            # each file with its own types: the signature check converts and names bad rows
            scanned = self._parquet(path) if self.format == "parquet" else self._csv(path)
            yield from sized(scanned, self.batch_bytes, self.batch_rows, self.file_rows.get(path))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise InvalidInput(f"cannot read input '{name}': {_first_line(exc)}") from None

    def _parquet(self, path: str) -> Iterator[pa.RecordBatch]:
        """A Parquet file's batches, decoded a row group at a time as they are taken. (The
        dataset scanner decodes ahead of a slow consumer, whatever its readahead says: a
        forest scoring a 340 MB file found 300 MB of it decoded and waiting.) Local files
        are read without pre-buffering, which only saves round trips to remote stores."""
        import pyarrow.parquet as pq

        local = self.location.local
        with contextlib.ExitStack() as stack:
            handle = path if local else stack.enter_context(self.location.filesystem.open(path))
            parquet = stack.enter_context(pq.ParquetFile(handle, pre_buffer=not local))
            yield from parquet.iter_batches(batch_size=self._read_rows(parquet.schema_arrow))

    def _csv(self, path: str) -> Iterator[pa.RecordBatch]:
        dataset = ds.dataset(path, format="csv", filesystem=self.location.filesystem)
        yield from dataset.to_batches(
            batch_size=self._read_rows(dataset.schema), batch_readahead=1, fragment_readahead=1
        )

    def _read_rows(self, schema: pa.Schema) -> int:
        """The scanner's batch size: the rows of about ``batch_bytes`` by the schema's
        widths (``sized`` corrects the guess for text by the bytes actually read)."""
        rows = max(1, self.batch_bytes // _row_bytes(schema))
        return rows if self.batch_rows is None else min(rows, self.batch_rows)

    def fingerprint(self) -> str:
        """The sha256 of the input's bytes (see the module docstring)."""
        digests = [(path, self._file_sha256(path)) for path in self.files]
        if len(digests) == 1 and digests[0][0] == self.location.path:
            return digests[0][1]
        whole = hashlib.sha256()
        for path, digest in digests:
            relative = path[len(self.location.path.rstrip("/")) + 1 :]
            whole.update(f"{relative}\0{digest}\n".encode())
        return whole.hexdigest()

    def _file_sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        opened = self.location.filesystem.open(path) if not self.location.local else None
        with opened or open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()

    def columns(self) -> list[tuple[str, str]]:
        from modelyard.tracking.datasets import columns_of

        return [(c.name, c.type) for c in columns_of(self.schema)]


def open_source(
    location: str | Path, *, batch_bytes: int = BATCH_BYTES, batch_rows: int | None = None
) -> Source:
    """Open ``location`` (a file, or a folder of files of one format) for scanning, in
    batches of about ``batch_bytes`` of input in memory and at most ``batch_rows`` rows."""
    if batch_bytes < 1:
        raise InvalidInput(f"batch_bytes must be at least 1, got {batch_bytes}")
    if batch_rows is not None and batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    where = locate(location)
    files = _files(where)
    kinds = {FORMATS[_suffix(path)] for path in files}
    if len(kinds) > 1:
        raise InvalidInput(f"input '{where.uri}' mixes Parquet and CSV files: use one format")
    kind = kinds.pop()
    schema, rows = _inspect(where, files, kind)
    total = None if rows is None else sum(rows.values())
    return Source(where, files, kind, schema, total, batch_bytes, batch_rows, rows or {})


def sized(
    batches: Iterable[pa.RecordBatch],
    target_bytes: int,
    max_rows: int | None = None,
    total_rows: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """``batches`` joined and sliced into batches of about ``target_bytes`` (by the bytes
    per row of the batch being read) and at most ``max_rows`` rows, in order; without
    ``max_rows``, of equal rows when ``total_rows`` (the file's) is known, so that the
    workers sharing a file's batches end together.
    Slices cost nothing; a join copies the rows it joins once."""
    held: list[pa.RecordBatch] = []
    held_rows = 0
    for batch in batches:
        limit = max(1, target_bytes // max(1, batch.nbytes // max(1, batch.num_rows)))
        limit = limit if max_rows is None else min(limit, max_rows)
        if total_rows and max_rows is None:
            limit = -(-total_rows // -(-total_rows // limit))  # as many batches, all equal
        while batch.num_rows:
            if held_rows >= limit:
                yield _joined(held)
                held, held_rows = [], 0
            piece = batch.slice(0, limit - held_rows)
            held.append(piece)
            held_rows += piece.num_rows
            batch = batch.slice(piece.num_rows)
    if held:
        yield _joined(held)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


def _row_bytes(schema: pa.Schema) -> int:
    """A row's bytes in memory: fixed widths exactly, anything else guessed at 32 bytes."""
    total = 0
    for column in schema:
        try:
            total += max(1, column.type.bit_width // 8)
        except ValueError:  # no fixed width: text, binary, nested
            total += 32
    return max(1, total)


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def _files(where: Location) -> list[str]:
    info = _info(where, where.path)
    if info == "missing":
        raise NotFound(f"input '{where.uri}' does not exist")
    if info == "file":
        if _suffix(where.path) not in FORMATS:
            raise InvalidInput(
                f"input '{where.uri}' is not a Parquet or CSV file (by its suffix: "
                f"{', '.join(FORMATS)})"
            )
        return [where.path]
    found = sorted(path for path in _listing(where) if _suffix(path) in FORMATS)
    if not found:
        raise InvalidInput(f"input folder '{where.uri}' holds no Parquet or CSV files")
    return found


def _info(where: Location, path: str) -> str:
    if where.local:
        from pyarrow.fs import FileType

        kind = where.filesystem.get_file_info(path).type
        return {FileType.File: "file", FileType.Directory: "folder"}.get(kind, "missing")
    if not where.filesystem.exists(path):
        return "missing"
    return "folder" if where.filesystem.isdir(path) else "file"


def _listing(where: Location) -> list[str]:
    """Every visible file under the folder (names starting with '.' or '_' are skipped)."""
    if where.local:
        from pyarrow.fs import FileSelector

        infos = where.filesystem.get_file_info(FileSelector(where.path, recursive=True))
        paths = [info.path for info in infos if info.is_file]
    else:
        paths = [str(path) for path in where.filesystem.find(where.path)]
    base = where.path.rstrip("/")
    return [p for p in paths if not any(part[:1] in "._" for part in _parts(p, base))]


def _parts(path: str, base: str) -> list[str]:
    return [part for part in path[len(base) + 1 :].split("/") if part]


def _inspect(
    where: Location, files: list[str], kind: str
) -> tuple[pa.Schema, dict[str, int] | None]:
    """The first file's schema, and each file's row count when Parquet footers say it."""
    try:
        first = ds.dataset(files[0], format=kind, filesystem=where.filesystem)
        schema = first.schema
        if kind != "parquet":
            return schema, None
        rows = {}
        for path in files:
            fragment = next(
                iter(ds.dataset(path, format=kind, filesystem=where.filesystem).get_fragments())
            )
            rows[path] = sum(group.num_rows for group in fragment.row_groups)
        return schema, rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"cannot read input '{where.uri}': {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Fingerprinter:
    """A source's fingerprint, computed by a thread while the scan runs.

    >>> printer = Fingerprinter(source)      # starts hashing at once
    >>> ...                                  # scoring reads the same files meanwhile
    >>> printer.result()                     # waits for the last file
    """

    def __init__(self, source: Source) -> None:
        self._source = source
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fingerprint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._source.fingerprint()
        except BaseException as exc:  # reported by result(), in the caller's thread
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise InvalidInput(
                f"cannot fingerprint input '{self._source.uri}': {_first_line(self._error)}"
            )
        assert self._value is not None
        return self._value
