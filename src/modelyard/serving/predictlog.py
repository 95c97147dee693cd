"""The prediction log: every prediction, primary and shadow, and its ground truth.

Layout under the log root (``MODELYARD_HOME/predictions`` by default)::

    <endpoint>/journal-<token>.jsonl    journal of one serving process (serving/journal.py)
    <endpoint>/segment-<token>.parquet  sealed journals and merged segments (serving/segments.py)
    <endpoint>/labels/labels-<token>.parquet   ground truth posted by prediction id

Serving processes only append to journals and close them from time to time.
This is the reading side: before it reads an endpoint it seals the journals no
process holds any more and merges small segments (``segments.tidy``); then it reads
the live segments and the open journals, ignoring a torn last line. Journals are
listed before segments, so a journal sealed in between is found in its segment.

Queries run in DuckDB over the segments and the journals. Labels are appended,
never updated: the newest label of an id wins and the history is kept.

The writes (labels, prune, erase) are recorded by the services that call them
(``serving/feedback.py``, ``serving/retention.py``) through ``write_and_record``:
files cannot join a database transaction, so the record commits just after them.

pyarrow and DuckDB are imported by the functions that use them, so a serving
process, which builds this object but never reads, does not load them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import orjson

from modelyard.domain.actors import current_actor
from modelyard.domain.endpoints import check_endpoint_name
from modelyard.errors import STORAGE_ERRNOS, InvalidInput, StorageUnavailable, os_reason
from modelyard.serving import evidence
from modelyard.serving.journal import JOURNAL_NAME, Journal, canonical, subject_digest
from modelyard.serving.segments import (
    drop_replaced,
    duckdb_connection,
    erased_in_journal,
    exclusive,
    label_schema,
    live_segments,
    prediction_schema,
    read_journal,
    tidy,
    without_erased,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy import Connection

    from modelyard.store.database import Database

T = TypeVar("T")
P = ParamSpec("P")

ROLES = ("primary", "shadow", "batch")  # batch: a batch job's rows (``--log-to``)
READ_ATTEMPTS = 5  # listings of a folder before a read holds off compaction


def _disk_refusals(
    method: Callable[Concatenate[Any, str, P], T],
) -> Callable[Concatenate[Any, str, P], T]:
    """A write of an endpoint's log files the disk refuses (full, read-only) raises
    ``StorageUnavailable`` (507) naming the endpoint, instead of an ``OSError``."""

    @functools.wraps(method)
    def guarded(self: Any, endpoint: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(self, endpoint, *args, **kwargs)
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            raise StorageUnavailable(
                f"prediction log of endpoint '{endpoint}' cannot be written: "
                f"{os_reason(exc)}; try again once there is space"
            ) from None

    return guarded


# -- reading ---------------------------------------------------------------


def check_roles(role: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    """``role`` checked: one of ``ROLES``, several of them (at least one), or None (all)."""
    if role is None or isinstance(role, str):
        roles: tuple[str, ...] = () if role is None else (role,)
    else:
        roles = tuple(role)
        if not roles:
            raise InvalidInput(f"roles: name at least one of {', '.join(ROLES)}")
    for one in roles:
        if one not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {one!r}")
    return role if role is None or isinstance(role, str) else roles


@dataclass(frozen=True)
class LabelResult:
    recorded: int
    unknown: list[str]


class PredictionLog:
    """Read predictions and record labels under ``root``.

    >>> log = PredictionLog(settings.home / "predictions")
    >>> log.query("churn", version=3, since=t0).num_rows
    >>> log.record_labels("churn", [("p-1", 1), ("p-2", 0)]).unknown
    []
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, endpoint: str) -> Path:
        return self.root / check_endpoint_name(endpoint)

    def journal(self, endpoint: str) -> Journal:
        return Journal(self._dir(endpoint))

    def _tidy_dir(self, endpoint: str) -> Path:
        """``endpoint``'s folder, its closed journals sealed and its segments compacted."""
        directory = self._dir(endpoint)
        if directory.is_dir():
            tidy(directory)
        return directory

    def describe(self) -> str:
        return str(self.root)

    def write_and_record(
        self,
        db: Database,
        write: Callable[[Connection | None], T],
        record: Callable[[Connection, T], None],
    ) -> T:
        """``write`` to the log, then ``record`` what it did in a write transaction of
        ``db`` (where a service publishes its ``Changed``); what ``write`` returns.

        Files cannot join a database transaction: they are written first (without
        holding the database's write lock), then the record commits in a small
        transaction of its own. ``write`` gets no connection. The database log
        (``SqlPredictionLog``) writes and records in one transaction.
        """
        done = write(None)
        with db.write() as conn:
            record(conn, done)
        return done

    def maintain(self) -> tuple[int, int]:
        """Seal and compact every endpoint's log now (``modelyard worker`` does, so a log
        nobody reads for a while is ready when someone does); journals sealed and
        segments merged."""
        sealed = merged = 0
        for directory in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if directory.is_dir():
                done = tidy(directory)
                sealed, merged = sealed + done[0], merged + done[1]
        return sealed, merged

    def table(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> pa.Table:
        """Every logged prediction of ``endpoint`` (segments and open journals).

        ``since`` and ``until`` are hints a store may use to read less; callers
        filter again.
        """
        import pyarrow as pa

        directory = self._tidy_dir(endpoint)
        if not directory.is_dir():
            return prediction_schema().empty_table()
        for _ in range(READ_ATTEMPTS):  # files sealed or merged meanwhile: list again
            with contextlib.suppress(FileNotFoundError):
                segments, journals = self._snapshot(directory)
                return pa.concat_tables([*map(_read_segment, segments), *journals])
        with exclusive(directory):  # no compaction now; a journal sealed meanwhile is found
            segments, journals = self._snapshot(directory)
            return pa.concat_tables([*map(_read_segment, segments), *journals])

    def _snapshot(self, directory: Path) -> tuple[list[Path], list[pa.Table]]:
        """The live segments and the rows of the unsealed journals of ``directory``.

        A journal sealed after the listing is taken from its segment; if that segment
        is gone too (merged), ``FileNotFoundError``: the caller lists again."""
        unsealed = sorted(directory.glob("journal-*.jsonl"))  # first: one sealed after this
        listing = live_segments(directory)  # listing is then in the segments listed here
        segments, journals = list(listing.segments), [prediction_schema().empty_table()]
        for path in unsealed:
            match = JOURNAL_NAME.match(path.name)
            if match is None or match["token"] in listing.tokens:
                continue
            table = read_journal(path)
            if table.num_rows == 0 and not path.exists():  # sealed since the listing
                segment = path.with_name(f"segment-{match['token']}.parquet")
                if not segment.is_file():
                    raise FileNotFoundError(segment)
                segments.append(segment)
            else:
                journals.append(table)
        return segments, journals

    def _attach(
        self, con: Any, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> None:
        """Make ``predictions`` a view in ``con``: Parquet segments read by DuckDB itself
        (only the row groups and columns a query needs), plus the open journals."""
        import pyarrow as pa

        schema = prediction_schema()
        directory = self._tidy_dir(endpoint)
        segments: list[Path] = []
        journals = [schema.empty_table()]
        try:
            if directory.is_dir():
                segments, journals = self._snapshot(directory)
        except FileNotFoundError:  # sealed and merged while listed: read a consistent copy
            con.register("predictions", self.table(endpoint, since=since, until=until))
            return
        con.register("open_journals", pa.concat_tables(journals))
        columns = ", ".join(schema.names)
        parts = ["SELECT * FROM open_journals"]
        if segments:
            files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in segments)
            parts.append(f"SELECT {columns} FROM read_parquet([{files}])")
        try:
            con.execute(f"CREATE TEMP VIEW predictions AS {' UNION ALL '.join(parts)}")
            con.execute("SELECT count(*) FROM predictions WHERE false").fetchall()
        except Exception:  # a segment sealed or removed meanwhile: read a consistent copy
            con.execute("DROP VIEW IF EXISTS predictions")
            con.register("predictions", self.table(endpoint, since=since, until=until))

    @_disk_refusals
    def prune(self, endpoint: str, before: int, conn: Connection | None = None) -> int:
        """Delete predictions logged before epoch ms ``before`` and labels posted before it;
        the number of predictions deleted. Sealed segments are dropped or rewritten
        (temp file + rename); open journals are younger than a rotation interval.

        ``conn``: a write transaction of the metadata database for the deletion to join
        (the database log's; files are not part of it, see ``write_and_record``)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        directory = self._tidy_dir(endpoint)
        if not directory.is_dir():
            return 0
        deleted = 0
        with exclusive(directory):
            drop_replaced(directory, grace=0)
            for path in live_segments(directory).segments:
                table = pq.read_table(path, schema=prediction_schema())
                kept = table.filter(pc.greater_equal(table.column("ts"), before))
                if kept.num_rows == table.num_rows:
                    continue
                deleted += table.num_rows - kept.num_rows
                _rewrite(path, kept)
        labels = directory / "labels"
        for path in sorted(labels.glob("labels-*.parquet")) if labels.is_dir() else []:
            table = pq.read_table(path, schema=label_schema())
            kept = table.filter(pc.greater_equal(table.column("labelled_at"), before))
            if kept.num_rows != table.num_rows:
                _rewrite(path, kept)
        return deleted

    @_disk_refusals
    def erase(self, endpoint: str, column: str, value: Any, conn: Connection | None = None) -> int:
        """Delete every prediction whose input ``column`` equals ``value``, and its labels.

        The erasure is remembered by digest and time, so rows logged before it that
        are still in an open journal are dropped when read and when sealed; the
        subject's later predictions are kept. The number of predictions deleted.
        ``conn`` as for ``prune``.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        directory = self._tidy_dir(endpoint)
        if not directory.is_dir():
            return 0
        with exclusive(directory):
            drop_replaced(directory, grace=0)  # nothing of the subject stays behind
            deleted, erased_ids = self._erase_rows(directory, column, value)
        labels = directory / "labels"
        for path in sorted(labels.glob("labels-*.parquet")) if labels.is_dir() else []:
            table = pq.read_table(path, schema=label_schema())
            kept = table.filter(
                pc.invert(pc.is_in(table.column("id"), pa.array(sorted(erased_ids), pa.string())))
            )
            if kept.num_rows != table.num_rows:
                _rewrite(path, kept)
        return deleted

    @staticmethod
    def _erase_rows(directory: Path, column: str, value: Any) -> tuple[int, set[str]]:
        """Record the erasure, then rewrite the segments that hold the subject; the
        number of predictions deleted and their ids."""
        import pyarrow.parquet as pq

        digest = subject_digest(value)
        stamp = int(time.time() * 1000)
        folder = directory / "erasures"
        folder.mkdir(parents=True, exist_ok=True)
        record = orjson.dumps({"column": column, "digest": digest, "at": stamp})
        _install(folder / f".{digest}.json.tmp", folder / f"{digest}-{stamp}.json", record)
        tombstone = [(column, digest, stamp)]
        erased_ids: set[str] = set()
        deleted = 0
        listing = live_segments(directory)
        for path in listing.segments:
            table = pq.read_table(path, schema=prediction_schema())
            kept = without_erased(table, tombstone)
            if kept.num_rows == table.num_rows:
                continue
            remaining = set(kept.column("id").to_pylist())
            erased_ids |= {i for i in table.column("id").to_pylist() if i not in remaining}
            deleted += table.num_rows - kept.num_rows
            _rewrite(path, kept)
        for path in sorted(directory.glob("journal-*.jsonl")):
            match = JOURNAL_NAME.match(path.name)
            if match is None or match["token"] in listing.tokens:
                continue
            in_journal = erased_in_journal(path, tombstone)  # dropped when read and sealed
            erased_ids |= in_journal
            deleted += len(in_journal)
        return deleted, erased_ids

    def labels(self, endpoint: str) -> pa.Table:
        """Every label ever posted for ``endpoint``, oldest first."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = self._dir(endpoint) / "labels"
        paths = sorted(directory.glob("labels-*.parquet")) if directory.is_dir() else []
        tables = [pq.read_table(p, schema=label_schema()) for p in paths]
        return pa.concat_tables(tables) if tables else label_schema().empty_table()

    def query(
        self,
        endpoint: str,
        *,
        version: int | None = None,
        model: str | None = None,
        role: str | Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = 10_000,
        with_labels: bool = True,
        offset: int = 0,
        newest_first: bool = False,
    ) -> pa.Table:
        """Predictions filtered by version, role (one, or several: any of them), time range
        (epoch ms) or ids, oldest first (by time, then id) or ``newest_first``; ``offset``
        skips that many of them.

        With ``with_labels`` each row carries the newest label of its id (or null).
        """
        role = check_roles(role)
        if limit is not None and limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        conditions, params = evidence.sql_filters(version, model, role, since, until, prefix="p.")
        con = duckdb_connection()
        self._attach(con, endpoint, since=since, until=until)
        if ids is not None:
            import pyarrow as pa

            con.register("wanted", pa.table({"id": pa.array(list(ids), pa.string())}))
            conditions.append("p.id IN (SELECT id FROM wanted)")
        label_join, label_column = "", ""
        if with_labels:
            con.register("labels", self.labels(endpoint))
            label_join = f"LEFT JOIN ({evidence.LATEST_LABELS}) l ON l.id = p.id"
            label_column = ", l.label, l.labelled_at"
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "p.ts DESC, p.id DESC, p.role" if newest_first else "p.ts, p.id, p.role"
        tail = f"LIMIT {int(limit)}" if limit is not None else ""
        if offset:
            tail += f" OFFSET {int(offset)}"
        sql = (
            f"SELECT p.*{label_column} FROM predictions p {label_join} {where} "
            f"ORDER BY {order} {tail}"
        )
        return con.sql(sql, params=params).to_arrow_table()

    def count(
        self,
        endpoint: str,
        *,
        role: str | Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> int:
        """How many predictions match (role: one or several, time range)."""
        conditions, params = evidence.sql_filters(None, None, check_roles(role), since, until)
        con = duckdb_connection()
        self._attach(con, endpoint, since=since, until=until)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = con.execute(f"SELECT count(*) FROM predictions {where}", params).fetchall()
        return int(rows[0][0])

    @_disk_refusals
    def record_labels(
        self,
        endpoint: str,
        labels: Iterable[tuple[str, Any]],
        conn: Connection | None = None,
    ) -> LabelResult:
        """Store ground truth by prediction id, as the current actor's; ids the log does
        not hold are returned. ``conn`` as for ``prune``.

        A label for an id that already has one is stored too: the newest wins,
        the history is kept.
        """
        ids, values = [], []
        for prediction_id, label in labels:
            if not isinstance(prediction_id, str) or not prediction_id:
                raise InvalidInput(
                    f"prediction id must be a non-empty string, got {prediction_id!r}"
                )
            ids.append(prediction_id)
            values.append(canonical(label))
        if not ids:
            raise InvalidInput("no labels given")
        known = self.known_ids(endpoint, ids)
        keep = [i for i, prediction_id in enumerate(ids) if prediction_id in known]
        unknown = list(dict.fromkeys(p for p in ids if p not in known))
        actor = current_actor().user
        if keep:
            import pyarrow as pa

            stamp = int(time.time() * 1000)
            start = time.time_ns()
            table = pa.table(
                {
                    "id": pa.array([ids[i] for i in keep], pa.string()),
                    "label": pa.array([values[i] for i in keep], pa.string()),
                    "labelled_at": pa.array([stamp] * len(keep), pa.int64()),
                    "seq": pa.array(range(start, start + len(keep)), pa.int64()),
                    "actor": pa.array([actor] * len(keep), pa.string()),
                },
                schema=label_schema(),
            )
            self._store_labels(endpoint, table, conn)
        return LabelResult(recorded=len(keep), unknown=unknown)

    def known_ids(self, endpoint: str, ids: list[str]) -> set[str]:
        import pyarrow as pa

        con = duckdb_connection()
        self._attach(con, endpoint)
        con.register("posted", pa.table({"id": pa.array(ids, pa.string())}))
        found = con.execute(
            "SELECT DISTINCT id FROM posted WHERE id IN (SELECT id FROM predictions)"
        ).fetchall()
        return {row[0] for row in found}

    def _store_labels(self, endpoint: str, table: pa.Table, conn: Connection | None) -> None:
        import pyarrow.parquet as pq

        directory = self._dir(endpoint) / "labels"
        directory.mkdir(parents=True, exist_ok=True)
        token = f"{int(time.time() * 1000):013d}-{secrets.token_hex(6)}"
        _install(
            directory / f".labels-{token}.parquet.tmp",
            directory / f"labels-{token}.parquet",
            lambda temporary: pq.write_table(table, temporary, compression="zstd"),
        )

    def label_history(self, endpoint: str, prediction_id: str) -> list[dict[str, Any]]:
        con = duckdb_connection()
        con.register("labels", self.labels(endpoint))
        rows = con.execute(
            "SELECT label, labelled_at, actor FROM labels WHERE id = ? ORDER BY seq",
            [prediction_id],
        ).fetchall()
        return [{"label": orjson.loads(r[0]), "at": r[1], "actor": r[2]} for r in rows]

    def accuracy(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> list[dict[str, Any]]:
        """Per version and role: predictions, labelled predictions and accuracy."""
        return evidence.accuracy(self._with_labels(endpoint, since, until), since, until)

    def compare(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> list[dict[str, Any]]:
        """The primary and each shadow side by side, on the requests the shadow saw
        (``serving/evidence.compare``: agreement, latency, accuracy, output shares)."""
        return evidence.compare(self._with_labels(endpoint, since, until), since, until)

    def _with_labels(self, endpoint: str, since: int | None, until: int | None) -> Any:
        """A DuckDB connection with ``predictions`` and ``labels`` of ``endpoint``."""
        con = duckdb_connection()
        self._attach(con, endpoint, since=since, until=until)
        con.register("labels", self.labels(endpoint))
        return con


def _read_segment(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=prediction_schema())


def _rewrite(path: Path, table: pa.Table) -> None:
    """Replace the Parquet file ``path`` by ``table`` (none left: remove it), keeping the
    file's own metadata (a merged segment's list of what it replaces)."""
    import pyarrow.parquet as pq

    if table.num_rows == 0:
        path.unlink(missing_ok=True)
        return
    metadata = pq.read_schema(path).metadata
    _install(
        path.with_name(f".{path.name}.tmp"),
        path,
        lambda temporary: pq.write_table(
            table.replace_schema_metadata(metadata), temporary, compression="zstd"
        ),
    )


def _install(temporary: Path, target: Path, content: bytes | Callable[[Path], None]) -> None:
    """Write ``content`` (bytes, or a function that writes the file it is given) to
    ``temporary``, then rename it to ``target``. If that fails the temporary file is
    removed: a full disk must not also keep what did not fit."""
    try:
        if isinstance(content, bytes):
            temporary.write_bytes(content)
        else:
            content(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
