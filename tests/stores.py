"""Metadata stores for tests: a SQLite file, and a throwaway PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test run; dropped afterwards."""
    name = f"my_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def services_on(kind: str, home: Path) -> Iterator[Services]:
    """Services over ``kind`` ("sqlite" or "postgresql") with artifacts in ``home``."""
    if kind == "sqlite":
        settings = Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
        services = bootstrap(settings)
        yield services
        services.close()
        return
    with throwaway_postgres() as url:
        services = bootstrap(Settings(home, url, str(home / "artifacts")))
        yield services
        services.close()
