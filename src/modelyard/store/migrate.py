"""Schema migrations: where the database is, where it should be, and the way there.

A new, empty database is created at the newest revision. An older one is never
upgraded silently: ``modelyard db upgrade`` does it, and everything else refuses
to run with ``NotMigrated`` naming that command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import inspect, text

from modelyard.errors import NotMigrated
from modelyard.store.database import Database

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(_SCRIPTS)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_empty(db: Database) -> bool:
    with db.read() as conn:
        return not inspect(conn).get_table_names()


_ADVISORY_LOCK_ID = 0x6D7964  # one schema change at a time per PostgreSQL database


@contextmanager
def schema_lock(db: Database) -> Iterator[None]:
    """Serialise schema changes between processes (a file lock for SQLite)."""
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID})
                conn.commit()
        return
    database = db.engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with FileLock(f"{database}.lock", timeout=120):
        yield


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    with schema_lock(db):
        before = current_revision(db)
        config = _config(db)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return before, head_revision()


def _create_if_still_empty(db: Database) -> bool:
    with schema_lock(db):
        if current_revision(db) == head_revision():
            return True  # another process created it while this one waited
        if not is_empty(db):
            return False
        config = _config(db)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return True


def ensure_current(db: Database, *, create_if_empty: bool) -> None:
    """Refuse to work on a schema that is not at head (an empty one may be created)."""
    current = current_revision(db)
    if current == head_revision():
        return
    if current is None and create_if_empty and _create_if_still_empty(db):
        return
    current = current_revision(db)
    state = "has no modelyard schema" if current is None else f"is at revision {current}"
    raise NotMigrated(
        f"the database at {db.describe()} {state}, not {head_revision()}: "
        "run `modelyard db upgrade` first"
    )
