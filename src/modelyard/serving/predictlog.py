"""The prediction log: every prediction, primary and shadow, and its ground truth.

Layout under the log root (``MODELYARD_HOME/predictions`` by default)::

    <endpoint>/journal-<token>.jsonl    journal of one serving process (serving/journal.py)
    <endpoint>/segment-<token>.parquet  a sealed journal, same token
    <endpoint>/labels/labels-<token>.parquet   ground truth posted by prediction id

Serving processes only append to journals (``serving/journal.py``) and close them
from time to time. This module is the reading side: before it reads an endpoint,
it seals the journals no process holds any more (closed ones, and those of dead
processes: their lock is free) into Parquet segments of the same token (written
to a temporary name, then renamed) and only then removes them. A reader that sees
both uses the segment. Open journals are read as they are, ignoring a torn last
line.

Queries run in DuckDB over the segments and the journals. Labels are appended,
never updated: the newest label of an id wins and the history is kept.

pyarrow and DuckDB are imported by the functions that use them, so a serving
process, which builds this object but never reads, does not load them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import os
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.domain.endpoints import check_endpoint_name
from modelyard.errors import InvalidInput
from modelyard.serving.journal import JOURNAL_NAME, Journal, canonical, subject_digest

if TYPE_CHECKING:
    import pyarrow as pa


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
        finally:
            os.close(fd)
    return sealed


def recover(root: Path) -> int:
    """Seal every endpoint's journals that no writer holds; the number sealed."""
    return sum(seal_closed(folder) for folder in sorted(root.iterdir()) if folder.is_dir())


def _seal(path: Path, token: str) -> None:
    import pyarrow.parquet as pq

    segment = path.with_name(f"segment-{token}.parquet")
    table = read_journal(path)
    if table.num_rows:
        temporary = path.with_name(f".segment-{token}.parquet.tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, segment)
    path.unlink(missing_ok=True)


def read_journal(path: Path) -> pa.Table:
    """A journal's complete lines, without erased subjects (a torn last line from a crash
    is ignored)."""
    return without_erased(_parse_journal(path), erasures(path.parent))


def _parse_journal(path: Path) -> pa.Table:
    import pyarrow.json as pa_json

    schema = prediction_schema()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return schema.empty_table()
    end = data.rfind(b"\n")
    if end < 0:
        return schema.empty_table()
    return pa_json.read_json(
        io.BytesIO(data[: end + 1]),
        parse_options=pa_json.ParseOptions(explicit_schema=schema),
    ).select(schema.names)


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


def _erased_ids(path: Path, tombstone: list[tuple[str, str, int]]) -> set[str]:
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
    con = _duckdb()
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


# -- reading ---------------------------------------------------------------


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

    def _sealed_dir(self, endpoint: str) -> Path:
        """``endpoint``'s folder, its closed journals sealed first."""
        directory = self._dir(endpoint)
        if directory.is_dir():
            seal_closed(directory)
        return directory

    def describe(self) -> str:
        return str(self.root)

    def table(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> pa.Table:
        """Every logged prediction of ``endpoint`` (segments and open journals).

        ``since`` and ``until`` are hints a store may use to read less; callers
        filter again.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = prediction_schema()
        directory = self._sealed_dir(endpoint)
        if not directory.is_dir():
            return schema.empty_table()
        tables = []
        segments = set()
        for path in sorted(directory.glob("segment-*.parquet")):
            with contextlib.suppress(FileNotFoundError):
                tables.append(pq.read_table(path, schema=schema))
                segments.add(path.name[len("segment-") : -len(".parquet")])
        for path in sorted(directory.glob("journal-*.jsonl")):
            match = JOURNAL_NAME.match(path.name)
            if match is None or match["token"] in segments:
                continue
            # a journal sealed between the listing and now is read from its segment
            table = read_journal(path)
            if table.num_rows == 0:
                segment = path.with_name(f"segment-{match['token']}.parquet")
                with contextlib.suppress(FileNotFoundError):
                    table = pq.read_table(segment, schema=schema)
            tables.append(table)
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def _attach(
        self, con: Any, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> None:
        """Make ``predictions`` a view in ``con``: Parquet segments read by DuckDB itself
        (only the row groups and columns a query needs), plus the open journals."""
        import pyarrow as pa

        schema = prediction_schema()
        directory = self._sealed_dir(endpoint)
        segments = sorted(directory.glob("segment-*.parquet")) if directory.is_dir() else []
        sealed = {p.name[len("segment-") : -len(".parquet")] for p in segments}
        journals = []
        for path in sorted(directory.glob("journal-*.jsonl")) if directory.is_dir() else []:
            match = JOURNAL_NAME.match(path.name)
            if match is None or match["token"] in sealed:
                continue
            table = read_journal(path)
            segment = path.with_name(f"segment-{match['token']}.parquet")
            if table.num_rows == 0 and segment.is_file():  # sealed since the listing
                segments.append(segment)
            else:
                journals.append(table)
        con.register(
            "open_journals", pa.concat_tables(journals) if journals else schema.empty_table()
        )
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

    def prune(self, endpoint: str, before: int) -> int:
        """Delete predictions logged before epoch ms ``before`` and labels posted before it;
        the number of predictions deleted. Sealed segments are dropped or rewritten
        (temp file + rename); open journals are younger than a rotation interval."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        directory = self._sealed_dir(endpoint)
        if not directory.is_dir():
            return 0
        deleted = 0
        for path in sorted(directory.glob("segment-*.parquet")):
            try:
                table = pq.read_table(path, schema=prediction_schema())
            except FileNotFoundError:
                continue
            keep = pc.greater_equal(table.column("ts"), before)
            kept = table.filter(keep)
            if kept.num_rows == table.num_rows:
                continue
            deleted += table.num_rows - kept.num_rows
            self._rewrite(path, kept)
        labels = directory / "labels"
        for path in sorted(labels.glob("labels-*.parquet")) if labels.is_dir() else []:
            table = pq.read_table(path, schema=label_schema())
            kept = table.filter(pc.greater_equal(table.column("labelled_at"), before))
            if kept.num_rows != table.num_rows:
                self._rewrite(path, kept)
        return deleted

    def erase(self, endpoint: str, column: str, value: Any) -> int:
        """Delete every prediction whose input ``column`` equals ``value``, and its labels.

        The erasure is remembered by digest and time, so rows logged before it that
        are still in an open journal are dropped when read and when sealed; the
        subject's later predictions are kept. The number of predictions deleted.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        directory = self._sealed_dir(endpoint)
        if not directory.is_dir():
            return 0
        digest = subject_digest(value)
        stamp = int(time.time() * 1000)
        folder = directory / "erasures"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{digest}.json.tmp"
        temporary.write_bytes(orjson.dumps({"column": column, "digest": digest, "at": stamp}))
        os.replace(temporary, folder / f"{digest}-{stamp}.json")
        tombstone = [(column, digest, stamp)]
        erased_ids: set[str] = set()
        deleted = 0
        for path in sorted(directory.glob("segment-*.parquet")):
            try:
                table = pq.read_table(path, schema=prediction_schema())
            except FileNotFoundError:
                continue
            kept = without_erased(table, tombstone)
            if kept.num_rows == table.num_rows:
                continue
            remaining = set(kept.column("id").to_pylist())
            erased_ids |= {i for i in table.column("id").to_pylist() if i not in remaining}
            deleted += table.num_rows - kept.num_rows
            self._rewrite(path, kept)
        for path in sorted(directory.glob("journal-*.jsonl")):
            in_journal = _erased_ids(path, tombstone)  # dropped when read, and when sealed
            erased_ids |= in_journal
            deleted += len(in_journal)
        labels = directory / "labels"
        for path in sorted(labels.glob("labels-*.parquet")) if labels.is_dir() else []:
            table = pq.read_table(path, schema=label_schema())
            kept = table.filter(
                pc.invert(pc.is_in(table.column("id"), pa.array(sorted(erased_ids), pa.string())))
            )
            if kept.num_rows != table.num_rows:
                self._rewrite(path, kept)
        return deleted

    @staticmethod
    def _rewrite(path: Path, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if table.num_rows == 0:
            path.unlink(missing_ok=True)
            return
        temporary = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)

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
        role: str | None = None,
        since: int | None = None,
        until: int | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = 10_000,
        with_labels: bool = True,
        offset: int = 0,
    ) -> pa.Table:
        """Predictions filtered by version, role, time range (epoch ms) or ids, oldest first
        (by time, then id); ``offset`` skips that many of them.

        With ``with_labels`` each row carries the newest label of its id (or null).
        """
        if role is not None and role not in ("primary", "shadow"):
            raise InvalidInput(f"role must be 'primary' or 'shadow', got {role!r}")
        if limit is not None and limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        conditions, params = _conditions(version, model, role, since, until, prefix="p.")
        con = _duckdb()
        self._attach(con, endpoint, since=since, until=until)
        if ids is not None:
            import pyarrow as pa

            con.register("wanted", pa.table({"id": pa.array(list(ids), pa.string())}))
            conditions.append("p.id IN (SELECT id FROM wanted)")
        label_join, label_column = "", ""
        if with_labels:
            con.register("labels", self.labels(endpoint))
            label_join = f"LEFT JOIN ({LATEST_LABELS}) l ON l.id = p.id"
            label_column = ", l.label, l.labelled_at"
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        tail = f"LIMIT {int(limit)}" if limit is not None else ""
        if offset:
            tail += f" OFFSET {int(offset)}"
        sql = (
            f"SELECT p.*{label_column} FROM predictions p {label_join} {where} "
            f"ORDER BY p.ts, p.id, p.role {tail}"
        )
        return con.sql(sql, params=params).to_arrow_table()

    def count(
        self,
        endpoint: str,
        *,
        role: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> int:
        """How many predictions match (role, time range)."""
        conditions, params = _conditions(None, None, role, since, until)
        con = _duckdb()
        self._attach(con, endpoint, since=since, until=until)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = con.execute(f"SELECT count(*) FROM predictions {where}", params).fetchall()
        return int(rows[0][0])

    def record_labels(
        self, endpoint: str, labels: Iterable[tuple[str, Any]], *, actor: str = ""
    ) -> LabelResult:
        """Store ground truth by prediction id; ids the log does not hold are returned.

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
            self._store_labels(endpoint, table)
        return LabelResult(recorded=len(keep), unknown=unknown)

    def known_ids(self, endpoint: str, ids: list[str]) -> set[str]:
        import pyarrow as pa

        con = _duckdb()
        self._attach(con, endpoint)
        con.register("posted", pa.table({"id": pa.array(ids, pa.string())}))
        found = con.execute(
            "SELECT DISTINCT id FROM posted WHERE id IN (SELECT id FROM predictions)"
        ).fetchall()
        return {row[0] for row in found}

    def _store_labels(self, endpoint: str, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        directory = self._dir(endpoint) / "labels"
        directory.mkdir(parents=True, exist_ok=True)
        token = f"{int(time.time() * 1000):013d}-{secrets.token_hex(6)}"
        temporary = directory / f".labels-{token}.parquet.tmp"
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, directory / f"labels-{token}.parquet")

    def label_history(self, endpoint: str, prediction_id: str) -> list[dict[str, Any]]:
        con = _duckdb()
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
        conditions, params = _conditions(None, None, None, since, until, prefix="p.")
        where = " AND ".join([*conditions, "p.error IS NULL"])
        con = _duckdb()
        self._attach(con, endpoint, since=since, until=until)
        con.register("labels", self.labels(endpoint))
        sql = f"""
            SELECT p.model, p.version, p.role,
                   count(*) AS predictions,
                   count(l.label) AS labelled,
                   avg(CASE WHEN l.label IS NULL THEN NULL
                            WHEN p.output = l.label THEN 1.0 ELSE 0.0 END) AS accuracy
            FROM predictions p LEFT JOIN ({LATEST_LABELS}) l ON l.id = p.id
            WHERE {where}
            GROUP BY p.model, p.version, p.role ORDER BY p.role, p.model, p.version
        """
        columns = ["model", "version", "role", "predictions", "labelled", "accuracy"]
        return [dict(zip(columns, row, strict=True)) for row in con.execute(sql, params).fetchall()]

    def compare(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> list[dict[str, Any]]:
        """The primary and each shadow side by side, on the requests the shadow saw.

        For each (model, version, role): requests, errors, agreement with the
        primary answer to the same request, latency p50/p99, accuracy where labels
        exist, and the distribution of outputs (shares of the most common values).
        """
        conditions, params = _conditions(None, None, None, since, until)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        con = _duckdb()
        self._attach(con, endpoint, since=since, until=until)
        con.register("labels", self.labels(endpoint))
        con.execute(f"CREATE TEMP TABLE window_rows AS SELECT * FROM predictions {where}", params)
        stats = con.execute(
            f"""
            SELECT s.model, s.version, s.role,
                   count(*) AS requests,
                   count(s.error) AS errors,
                   avg(CASE WHEN s.role = 'primary' THEN NULL
                            WHEN s.error IS NULL AND s.output = p.output THEN 1.0
                            ELSE 0.0 END) AS agreement,
                   quantile_cont(s.latency_ms, 0.5) AS latency_p50_ms,
                   quantile_cont(s.latency_ms, 0.99) AS latency_p99_ms,
                   count(l.label) AS labelled,
                   avg(CASE WHEN l.label IS NULL OR s.error IS NOT NULL THEN NULL
                            WHEN s.output = l.label THEN 1.0 ELSE 0.0 END) AS accuracy
            FROM window_rows s
            LEFT JOIN window_rows p ON p.id = s.id AND p.role = 'primary'
            LEFT JOIN ({LATEST_LABELS}) l ON l.id = s.id
            GROUP BY s.model, s.version, s.role
            ORDER BY s.role, s.model, s.version
            """
        ).fetchall()
        columns = [
            "model",
            "version",
            "role",
            "requests",
            "errors",
            "agreement",
            "latency_p50_ms",
            "latency_p99_ms",
            "labelled",
            "accuracy",
        ]
        rows = [dict(zip(columns, row, strict=True)) for row in stats]
        shares = con.execute(
            """
            SELECT model, version, role, output, count(*) AS n
            FROM window_rows WHERE error IS NULL
            GROUP BY model, version, role, output
            ORDER BY model, version, role, n DESC, output
            """
        ).fetchall()
        for row in rows:
            mine = [s for s in shares if s[:3] == (row["model"], row["version"], row["role"])]
            total = sum(s[4] for s in mine) or 1
            row["outputs"] = [
                {"value": orjson.loads(s[3]), "share": round(s[4] / total, 4)} for s in mine[:10]
            ]
        return rows


LATEST_LABELS = (
    "SELECT id, arg_max(label, seq) AS label, max(labelled_at) AS labelled_at "
    "FROM labels GROUP BY id"
)


def _conditions(
    version: int | None,
    model: str | None,
    role: str | None,
    since: int | None,
    until: int | None,
    *,
    prefix: str = "",
) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("version", "=", version),
        ("model", "=", model),
        ("role", "=", role),
        ("ts", ">=", since),
        ("ts", "<", until),
    ):
        if value is not None:
            conditions.append(f"{prefix}{column} {op} ?")
            params.append(value)
    return conditions, params


def _duckdb() -> Any:
    import duckdb

    return duckdb.connect(config={"threads": 2})
