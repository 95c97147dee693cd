"""Schema migrations: where the database is, where it should be, and the way there.

A new, empty database is created at the newest revision. An older one is never
upgraded silently: ``modelyard db upgrade`` does it, and everything else refuses
to run with ``NotMigrated`` naming that command.

Alembic is imported only to create or upgrade a schema: every process checks
the stored revision against ``HEAD`` with one query, so a serving process does
not load the migration machinery (about 11 MB). A test keeps ``HEAD`` equal to
the newest migration script.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock
from sqlalchemy import inspect, text

from modelyard.errors import NotMigrated
from modelyard.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0022"  # the newest script in migrations/versions
_SCRIPTS = Path(__file__).with_name("migrations")


def _config(db: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    """The newest revision, as the migration scripts say (``HEAD`` must agree)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_SCRIPTS)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None: no modelyard schema)."""
    with db.read() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found[0] if len(found) == 1 else None


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
        _upgrade_to_head(db)
    return before, head_revision()


def _create_if_still_empty(db: Database) -> bool:
    with schema_lock(db):
        if current_revision(db) == HEAD:
            return True  # another process created it while this one waited
        if not is_empty(db):
            return False
        _upgrade_to_head(db)
        return True


def _upgrade_to_head(db: Database) -> None:
    from alembic import command

    config = _config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def ensure_current(db: Database, *, create_if_empty: bool) -> None:
    """Refuse to work on a schema that is not at head (an empty one may be created)."""
    current = current_revision(db)
    if current == HEAD:
        return
    if current is None and create_if_empty and _create_if_still_empty(db):
        return
    current = current_revision(db)
    state = "has no modelyard schema" if current is None else f"is at revision {current}"
    raise NotMigrated(
        f"the database at {db.describe()} {state}, not {HEAD}: run `modelyard db upgrade` first"
    )
