"""The sealed side of the file prediction log: segments, sealing, compaction, erasure.

An endpoint's folder holds journals (``serving/journal.py``, written by serving
processes) and Parquet segments::

    segment-<token>.parquet            a sealed journal, same token
    segment-<token>-m<hex>.parquet     a merged segment; its footer names the tokens
                                       of the segments it replaces

Readers keep the folder tidy before they read (``tidy``):

- **sealing**: a journal no writer holds (closed by its writer, or left by a dead
  process: its flock is free) becomes a segment of the same token (temporary file,
  rename, then the journal is removed). Two readers race on the flock; one seals.
- **compaction**: once ``COMPACT_AFTER`` small segments pile up (a serving process
  closes a journal every minute), they are merged into one, rows sorted by time, so
  a query opens a few large files instead of thousands. The merged file is renamed
  into place, and from then on ``live_segments`` hides every segment it replaces,
  so a reader never sees a row twice or misses one. The replaced files stay
  ``GRACE`` seconds, for queries that listed them just before. One compaction at a
  time per folder (an flock on ``.lock``); ``exclusive`` holds the same lock for
  erasure and retention, which rewrite segments in place and remove replaced
  files at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.serving.journal import JOURNAL_NAME

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("modelyard.serving.segments")

SEGMENT_NAME = re.compile(r"^segment-(?P<token>[A-Za-z0-9_\-]+)\.parquet$")
MERGED = re.compile(r"-m[0-9a-f]+$")
REPLACES = b"modelyard.replaces"
COMPACT_AFTER = 32  # small segments in a folder before they are merged
SMALL_SEGMENT = 64 * 1024 * 1024  # bytes: larger segments are left as they are
MERGE_BYTES = 256 * 1024 * 1024  # source bytes merged into one segment at most
GRACE = 600.0  # seconds a replaced segment stays on disk for queries that listed it
ABANDONED_AFTER = 60.0  # seconds before a journal left unnamed by a dead writer goes


@functools.cache
def prediction_schema() -> pa.Schema:
    """The columns of a logged prediction (``serving.journal.COLUMNS``), typed."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("endpoint", pa.string()),
            ("revision", pa.int64()),
            ("model", pa.string()),
            ("version", pa.int64()),
            ("role", pa.string()),
            ("ts", pa.int64()),
            ("latency_ms", pa.float64()),
            ("input", pa.string()),
            ("output", pa.string()),
            ("scores", pa.string()),
            ("error", pa.string()),
        ]
    )


@functools.cache
def label_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("label", pa.string()),
            ("labelled_at", pa.int64()),
            ("seq", pa.int64()),
            ("actor", pa.string()),
        ]
    )


# -- sealing ---------------------------------------------------------------


def seal_closed(directory: Path) -> int:
    """Seal the journals in the endpoint folder ``directory`` that no writer holds (it
    closed them, or it died); the number sealed. A journal another reader is sealing
    right now is left to it."""
    sealed = 0
    for path in sorted(directory.glob("journal-*.jsonl")):
        match = JOURNAL_NAME.match(path.name)
        if match is None:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if path.exists():  # not sealed by a reader that held the lock before us
                _seal(path, match["token"])
                sealed += 1
        except BlockingIOError:
            pass
        except PermissionError:  # a reader that may not write the log reads journals as is
            pass
        except OSError as exc:  # a full disk, say: the journal is read as it is meanwhile
            log.warning("could not seal %s: %s", path, exc)
        finally:
            os.close(fd)
    _remove_abandoned_openings(directory)
    return sealed


def _remove_abandoned_openings(directory: Path) -> None:
    """Remove journals a writer created and died before naming (``Journal`` creates one
    under a hidden name, locks it and renames it at once: one left a minute is empty)."""
    cutoff = time.time() - ABANDONED_AFTER
    for path in directory.glob(".journal-*.jsonl.new"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_mtime <= cutoff and os.fstat(fd).st_size == 0:
                path.unlink(missing_ok=True)
        except OSError:  # held by its writer (it renames it now), or not ours to remove
            pass
        finally:
            os.close(fd)


def recover(root: Path) -> int:
    """Seal every endpoint's journals that no writer holds; the number sealed."""
    return sum(seal_closed(folder) for folder in sorted(root.iterdir()) if folder.is_dir())


def _seal(path: Path, token: str) -> None:
    import pyarrow.parquet as pq

    segment = path.with_name(f"segment-{token}.parquet")
    table = read_journal(path)
    if table.num_rows:
        temporary = path.with_name(f".segment-{token}.parquet.tmp")
        with _removed_on_failure(temporary):
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, segment)
    path.unlink(missing_ok=True)


def read_journal(path: Path) -> pa.Table:
    """A journal's complete lines, without erased subjects (a torn last line from a crash
    is ignored)."""
    return without_erased(_parse_journal(path), erasures(path.parent))


def _parse_journal(path: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.json as pa_json

    schema = prediction_schema()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return schema.empty_table()
    end = data.rfind(b"\n")
    if end < 0:
        return schema.empty_table()
    options = pa_json.ParseOptions(explicit_schema=schema)
    try:
        return pa_json.read_json(io.BytesIO(data[: end + 1]), parse_options=options).select(
            schema.names
        )
    except pa.ArrowInvalid:  # a line torn by a full disk and written after: skip it
        good, bad = _whole_lines(data[: end + 1])
        log.warning("%s: skipped %d damaged line(s), numbers %s", path, len(bad), bad[:10])
        if not good:
            return schema.empty_table()
        return pa_json.read_json(io.BytesIO(good), parse_options=options).select(schema.names)


def _whole_lines(data: bytes) -> tuple[bytes, list[int]]:
    """The lines of ``data`` that are whole JSON objects, and the numbers of the others.

    ``Journal.append`` cuts a failed write back out of its journal, so only a journal
    written without that cut (or damaged otherwise) needs this; it then stays readable
    and sealable instead of failing every read of its endpoint."""
    good, bad = bytearray(), []
    for number, text in enumerate(data.splitlines(keepends=True), start=1):
        try:
            whole = isinstance(orjson.loads(text), dict)
        except orjson.JSONDecodeError:
            whole = False
        if whole:
            good += text
        elif text.strip():
            bad.append(number)
    return bytes(good), bad


# -- erasure ---------------------------------------------------------------


def erasures(directory: Path) -> list[tuple[str, str, int]]:
    """(column, digest, time) of every erasure recorded for the endpoint folder
    ``directory``; an erasure covers predictions logged up to its time."""
    folder = directory / "erasures"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(FileNotFoundError, ValueError):
            record = orjson.loads(path.read_bytes())
            found.append((str(record["column"]), str(record["digest"]), int(record["at"])))
    return found


def erased_in_journal(path: Path, tombstone: list[tuple[str, str, int]]) -> set[str]:
    """Ids in an open journal that ``tombstone`` matches (they are dropped when read)."""
    table = _parse_journal(path)
    kept = set(without_erased(table, tombstone).column("id").to_pylist())
    return {i for i in table.column("id").to_pylist() if i not in kept}


def _json_path(column: str) -> str:
    return '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'


def without_erased(table: pa.Table, tombstones: list[tuple[str, str, int]]) -> pa.Table:
    """``table`` without the rows an erasure covers (its subject, logged up to its time)."""
    if not tombstones or table.num_rows == 0:
        return table
    con = duckdb_connection()
    con.register("rows_in", table)
    conditions, params = [], []
    for column, digest, at in tombstones:
        conditions.append(
            "NOT (ts <= ? AND sha256(coalesce(json_extract_string(input, ?), '')) = ?)"
        )
        params += [at, _json_path(column), digest]
    kept: pa.Table = con.sql(
        f"SELECT * FROM rows_in WHERE {' AND '.join(conditions)}", params=params
    ).to_arrow_table()
    schema = prediction_schema()
    return kept.select(schema.names).cast(schema)


# -- live segments and compaction -------------------------------------------


def tidy(directory: Path) -> tuple[int, int]:
    """Seal the closed journals of the endpoint folder ``directory``, and compact its
    segments when enough small ones piled up (unless another reader is at it); the
    number of journals sealed and of segments merged."""
    sealed, merged = seal_closed(directory), 0
    try:
        with exclusive(directory, wait=False):
            merged = compact(directory)
    except (BlockingIOError, PermissionError):  # another reader compacts, or we may not
        pass
    except OSError as exc:  # a full disk, say: the sources stay and are read as they are
        log.warning("could not compact %s: %s", directory, exc)
    return sealed, merged


@contextlib.contextmanager
def exclusive(directory: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the folder's lock: one compaction, erasure or prune at a time.

    With ``wait=False`` a held lock raises ``BlockingIOError`` at once."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Listing:
    """The segments of a folder to read, oldest first, and the token of every segment
    (replaced ones too): a journal with one of those tokens is sealed already."""

    segments: list[Path]
    tokens: frozenset[str]


def live_segments(directory: Path) -> Listing:
    """List the segments to read: those a merged segment replaces are left out (they
    stay on disk ``GRACE`` seconds for queries that listed them before the merge)."""
    segments = [p for p in sorted(directory.glob("segment-*.parquet")) if _token(p)]
    replaced: set[str] = set()
    for path in segments:
        replaced |= _replaces(path)
    tokens = frozenset(t for p in segments if (t := _token(p))) | replaced
    return Listing([p for p in segments if _token(p) not in replaced], tokens)


def drop_replaced(directory: Path, *, grace: float = GRACE) -> None:
    """Remove the segments merged into another more than ``grace`` seconds ago."""
    cutoff = time.time() - grace
    segments = [p for p in sorted(directory.glob("segment-*.parquet")) if _token(p)]
    replaced: set[str] = set()
    for path in segments:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime <= cutoff:
                replaced |= _replaces(path)
    for path in segments:
        if _token(path) in replaced:
            path.unlink(missing_ok=True)


def compact(directory: Path) -> int:
    """Merge small segments once ``COMPACT_AFTER`` of them piled up; how many were merged.

    Call it holding ``exclusive(directory)``."""
    drop_replaced(directory)
    small = [p for p in live_segments(directory).segments if _size(p) < SMALL_SEGMENT]
    if len(small) < COMPACT_AFTER:
        return 0
    merged, batch_bytes = 0, 0
    batch: list[Path] = []
    for path in small:
        batch.append(path)
        batch_bytes += _size(path)
        if batch_bytes >= MERGE_BYTES:
            merged += _merge(directory, batch)
            batch, batch_bytes = [], 0
    if len(batch) > 1:
        merged += _merge(directory, batch)
    return merged


def _merge(directory: Path, sources: list[Path]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = prediction_schema()
    tables = [pq.read_table(p, schema=schema) for p in sources]
    table = pa.concat_tables(tables).sort_by([("ts", "ascending"), ("id", "ascending")])
    replaces = set()
    for path in sources:
        replaces.add(_token(path))
        replaces |= _replaces(path)
    first = _token(sources[0]) or ""
    token = f"{MERGED.sub('', first)}-m{secrets.token_hex(4)}"
    metadata = {REPLACES: orjson.dumps(sorted(t for t in replaces if t))}
    temporary = directory / f".segment-{token}.parquet.tmp"
    with _removed_on_failure(temporary):
        pq.write_table(
            table.replace_schema_metadata(metadata),
            temporary,
            compression="zstd",
            row_group_size=128 * 1024,
        )
        os.replace(temporary, directory / f"segment-{token}.parquet")
    return len(sources)  # the sources go after GRACE seconds (drop_replaced)


@contextlib.contextmanager
def _removed_on_failure(temporary: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _token(path: Path) -> str | None:
    match = SEGMENT_NAME.match(path.name)
    return match["token"] if match else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@functools.lru_cache(maxsize=4096)
def _replaces_of(path: str, mtime_ns: int) -> frozenset[str]:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return frozenset(orjson.loads(metadata.get(REPLACES, b"[]")))


def _replaces(path: Path) -> frozenset[str]:
    """The tokens a merged segment replaces (none for a sealed journal's segment)."""
    token = _token(path)
    if token is None or not MERGED.search(token):
        return frozenset()
    try:
        return _replaces_of(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return frozenset()


_SHARED: list[Any] = []  # [the process's DuckDB database, the pid that opened it]
_SHARED_LOCK = threading.Lock()
_INHERITED: list[Any] = []  # a forked parent's database: never used, never closed here


def duckdb_connection() -> Any:
    """A new DuckDB connection of its own for one query or job: its registered tables and
    temporary views are seen by no other. All are cursors of one in-memory database per
    process: opening a database costs 20-60 ms, a cursor well under one (a monitor pass
    opened several per window). A process forked after it was opened opens its own."""
    import duckdb

    with _SHARED_LOCK:
        if not _SHARED or _SHARED[1] != os.getpid():
            _INHERITED.extend(_SHARED[:1])  # closing it here could wait on the parent's threads
            _SHARED[:] = [duckdb.connect(config={"threads": 2}), os.getpid()]
        return _SHARED[0].cursor()
