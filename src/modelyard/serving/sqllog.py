"""The prediction log in the metadata database (``MODELYARD_PREDICTIONS=database``).

For teams on PostgreSQL that want predictions beside the catalog, queryable in
SQL, shared by many serving processes on many hosts. A serving process hands
each batch's records to a writer thread that inserts whatever has queued in one
transaction (group commit); the response waits for that commit, so an
acknowledged prediction is in the database. Queries read only the endpoint and
time range asked for, then run the same DuckDB analysis as the file log.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import Connection, select

from modelyard.domain.endpoints import check_endpoint_name
from modelyard.serving.journal import COLUMNS, subject_digest
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.segments import label_schema, prediction_schema
from modelyard.store import schema as t
from modelyard.store.database import Database

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")


class SqlJournal:
    """Group-committing writer of one endpoint's predictions into the database."""

    def __init__(self, db: Database, endpoint: str) -> None:
        self.db = db
        self.endpoint = endpoint
        self._pending: deque[tuple[bytes, Future[None]]] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"log {endpoint}", daemon=True)
        self._thread.start()

    def append(self, lines: bytes) -> Future[None]:
        """Queue JSON lines; the future completes when they are committed."""
        done: Future[None] = Future()
        with self._ready:
            self._pending.append((lines, done))
            self._ready.notify()
        return done

    def due(self) -> bool:
        return False

    def rotate(self) -> None:
        return None

    def close(self) -> None:
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closing:
                    self._ready.wait()
                if not self._pending and self._closing:
                    return
                batch = list(self._pending)
                self._pending.clear()
            rows = [
                orjson.loads(line)
                for lines, _ in batch
                for line in lines.splitlines()
                if line.strip()
            ]
            try:
                with self.db.write() as conn:
                    conn.execute(t.predictions.insert(), rows)
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)


class SqlPredictionLog(PredictionLog):
    """``PredictionLog`` over the ``predictions`` and ``prediction_labels`` tables."""

    def __init__(self, db: Database) -> None:  # no folder: nothing of the base's files is used
        self.db = db

    def describe(self) -> str:
        return f"the predictions table of {self.db.describe()}"

    def write_and_record(
        self,
        db: Database,
        write: Callable[[Connection | None], T],
        record: Callable[[Connection, T], None],
    ) -> T:
        """``write`` and ``record`` in one transaction: the rows and their record commit
        together or not at all."""
        with db.write() as conn:
            done = write(conn)
            record(conn, done)
        return done

    @contextmanager
    def _writing(self, conn: Connection | None) -> Iterator[Connection]:
        """``conn``'s transaction, or a new one when none is given."""
        if conn is not None:
            yield conn
            return
        with self.db.write() as own:
            yield own

    def maintain(self) -> tuple[int, int]:
        return 0, 0  # rows are committed where queries read them: nothing to seal or merge

    def journal(self, endpoint: str) -> SqlJournal:  # type: ignore[override]
        return SqlJournal(self.db, check_endpoint_name(endpoint))

    def table(
        self, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> pa.Table:
        p = t.predictions.c
        query = select(*[getattr(p, name) for name in COLUMNS]).where(
            p.endpoint == check_endpoint_name(endpoint)
        )
        if since is not None:
            query = query.where(p.ts >= since)
        if until is not None:
            query = query.where(p.ts < until)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return _arrow(rows, prediction_schema())

    def _attach(
        self, con: Any, endpoint: str, *, since: int | None = None, until: int | None = None
    ) -> None:
        con.register("predictions", self.table(endpoint, since=since, until=until))

    def prune(self, endpoint: str, before: int, conn: Connection | None = None) -> int:
        name = check_endpoint_name(endpoint)
        with self._writing(conn) as conn:
            done = conn.execute(
                t.predictions.delete().where(
                    t.predictions.c.endpoint == name, t.predictions.c.ts < before
                )
            )
            conn.execute(
                t.prediction_labels.delete().where(
                    t.prediction_labels.c.endpoint == name,
                    t.prediction_labels.c.labelled_at < before,
                )
            )
        return int(done.rowcount or 0)

    def erase(self, endpoint: str, column: str, value: Any, conn: Connection | None = None) -> int:
        name = check_endpoint_name(endpoint)
        p, label = t.predictions.c, t.prediction_labels.c
        wanted = subject_digest(value)
        with self._writing(conn) as conn:
            matched = set()
            for prediction_id, text in conn.execute(
                select(p.id, p.input).where(p.endpoint == name)
            ):
                found = orjson.loads(text).get(column)
                if found is not None and subject_digest(found) == wanted:
                    matched.add(prediction_id)
            deleted = 0
            ids = sorted(matched)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                done = conn.execute(
                    t.predictions.delete().where(p.endpoint == name, p.id.in_(chunk))
                )
                deleted += int(done.rowcount or 0)
                conn.execute(
                    t.prediction_labels.delete().where(
                        label.endpoint == name, label.prediction_id.in_(chunk)
                    )
                )
        return deleted

    def labels(self, endpoint: str) -> pa.Table:
        label = t.prediction_labels.c
        query = (
            select(
                label.prediction_id.label("id"),
                label.label,
                label.labelled_at,
                label.seq,
                label.actor,
            )
            .where(label.endpoint == check_endpoint_name(endpoint))
            .order_by(label.seq)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return _arrow(rows, label_schema())

    def known_ids(self, endpoint: str, ids: list[str]) -> set[str]:
        p = t.predictions.c
        found: set[str] = set()
        unique = sorted(set(ids))
        with self.db.read() as conn:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                query = (
                    select(p.id)
                    .where(p.endpoint == check_endpoint_name(endpoint), p.id.in_(chunk))
                    .distinct()
                )
                found.update(conn.execute(query).scalars())
        return found

    def _store_labels(self, endpoint: str, table: pa.Table, conn: Connection | None) -> None:
        rows = [
            {
                "endpoint": endpoint,
                "prediction_id": row["id"],
                "label": row["label"],
                "labelled_at": row["labelled_at"],
                "actor": row["actor"],
            }
            for row in table.to_pylist()
        ]
        with self._writing(conn) as writing:
            writing.execute(t.prediction_labels.insert(), rows)


def _arrow(rows: Sequence[Any], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    columns = {name: [row[i] for row in rows] for i, name in enumerate(schema.names)}
    return pa.table(columns, schema=schema)
