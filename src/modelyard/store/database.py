"""The metadata database: one engine, read and write transactions.

SQLite runs in WAL mode with a generous busy timeout, and write transactions
start with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing a
lock upgrade half-way. PostgreSQL uses its defaults (READ COMMITTED).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from modelyard.errors import InvalidInput, StorageUnavailable

log = logging.getLogger(__name__)

_IMMEDIATE = "modelyard_immediate"
_PENDING = "modelyard_pending_events"

Handler = Callable[[Connection, list[Any]], None]
"""Called with a write transaction's connection and the events published in it, just
before it commits; an error it raises rolls the whole transaction back."""


class Database:
    """Connection factory for the metadata store at ``url``.

    >>> db = Database("sqlite:///.modelyard/modelyard.db")
    >>> with db.write() as conn:
    ...     conn.execute(...)
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._handlers: dict[str, Handler] = {}

    def on_commit(self, name: str, handler: Handler) -> None:
        """Have ``handler`` see the events of every write transaction before it commits
        (one handler per ``name``: wiring twice replaces, never doubles)."""
        self._handlers[name] = handler

    @cached_property
    def engine(self) -> Engine:
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise InvalidInput(f"invalid database URL {self._redacted()!r}: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(self.url, parsed.database)
        return create_engine(self.url, pool_pre_ping=True, pool_size=8, max_overflow=8)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect() as conn:
            yield conn

    def _connect(self) -> Connection:
        """A connection; a SQLite file its folder no longer lets us open (a disk turned
        read-only: SQLite writes beside the database even to read it) is refused by
        name rather than as an internal error."""
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            folder = _sqlite_folder(self.engine)
            if folder is None or "unable to open database file" not in str(exc.orig):
                raise
            if folder.is_dir() and os.access(folder, os.W_OK):
                raise
            log.error("the database at %s cannot be opened: %s", self.describe(), exc.orig)
            raise StorageUnavailable(
                "metadata database cannot be opened: its folder is read-only or not "
                "writable by this process (SQLite writes beside the database even to read it)"
            ) from None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; what ``publish`` adds to it reaches the handlers of
        ``on_commit`` inside it, so the change and its record commit together."""
        try:
            with self._connect() as conn:
                conn = conn.execution_options(**{_IMMEDIATE: True})
                with conn.begin():
                    pending: list[Any] = []
                    conn.info[_PENDING] = pending
                    try:
                        yield conn
                        for handler in self._handlers.values():
                            if pending:
                                handler(conn, pending)
                    finally:
                        conn.info.pop(_PENDING, None)
        except DBAPIError as exc:
            reason = storage_refusal(exc)
            if reason is None:
                raise
            log.error("the database at %s refused a write: %s", self.describe(), exc.orig)
            raise StorageUnavailable(
                f"metadata database cannot be written: {reason} (nothing was changed)"
            ) from None

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    def _redacted(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<unparseable>"

    def describe(self) -> str:
        """The URL with any password hidden, for messages."""
        return self._redacted()


_SQLITE_REFUSALS = ("database or disk is full", "readonly database", "disk i/o error")
_POSTGRES_REFUSALS = {
    "53100": "database or disk is full",  # disk_full
    "25006": "the database is read-only",  # read_only_sql_transaction
}


def storage_refusal(exc: DBAPIError) -> str | None:
    """What a database error says about the disk under the database (full, read-only),
    in a message's words; None for any other error (a bug, a constraint, a lost
    connection), which stays what it is."""
    state = getattr(exc.orig, "sqlstate", None)
    if state in _POSTGRES_REFUSALS:
        return _POSTGRES_REFUSALS[state]
    text = str(exc.orig).lower()
    for refusal in _SQLITE_REFUSALS:
        if refusal in text:
            return "the database is read-only" if refusal == "readonly database" else refusal
    return None


def publish(conn: Connection, event: Any) -> None:
    """Add ``event`` to the write transaction of ``conn`` (see ``Database.write``)."""
    pending = conn.info.get(_PENDING)
    if pending is None:
        raise RuntimeError(f"{type(event).__name__} published outside a write transaction")
    pending.append(event)


def _number(text: object) -> float | None:
    """Text as a number for SQLite, or NULL when it is not one (``'abc'`` is not 0)."""
    if isinstance(text, int | float):
        return float(text)
    try:
        return float(str(text))
    except ValueError:
        return None


def _sqlite_folder(engine: Engine) -> Path | None:
    """The folder of a SQLite database file; None for other databases and memory."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    return Path(database).resolve().parent if database and database != ":memory:" else None


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun explicitly below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()
        dbapi_conn.create_function("modelyard_number", 1, _number, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
