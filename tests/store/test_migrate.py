from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import text

from modelyard.errors import NotMigrated
from modelyard.store.database import Database
from modelyard.store.migrate import current_revision, ensure_current, head_revision, upgrade
from tests.stores import throwaway_postgres


def test_empty_database_is_created_at_head_only_when_allowed(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(NotMigrated, match="run `modelyard db upgrade`"):
        ensure_current(db, create_if_empty=False)
    ensure_current(db, create_if_empty=True)
    assert current_revision(db) == head_revision()


def test_old_database_is_never_upgraded_silently(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    upgrade(db)
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with pytest.raises(NotMigrated, match="is at revision older"):
        ensure_current(db, create_if_empty=True)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE something_else (id INTEGER)"))
    with pytest.raises(NotMigrated, match="has no modelyard schema"):
        ensure_current(db, create_if_empty=True)


@pytest.mark.postgres
def test_upgrade_on_postgresql() -> None:
    with throwaway_postgres() as url:
        db = Database(url)
        before, after = upgrade(db)
        assert (before, after) == (None, head_revision())
        ensure_current(db, create_if_empty=False)
        db.dispose()


def test_database_url_is_validated() -> None:
    from modelyard.errors import InvalidInput

    with pytest.raises(InvalidInput, match="invalid database URL"):
        _ = Database("not a url").engine


def test_upgrade_from_the_first_revision_keeps_data(tmp_path: Path) -> None:
    from alembic import command

    from modelyard.store.migrate import _config

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    config = _config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text("INSERT INTO experiments (name, description, created_at) VALUES ('kept', '', 1)")
        )
    with pytest.raises(NotMigrated, match="is at revision 0001"):
        ensure_current(db, create_if_empty=True)
    assert upgrade(db) == ("0001", head_revision())
    ensure_current(db, create_if_empty=False)
    with db.read() as conn:
        assert conn.execute(text("SELECT name FROM experiments")).scalar_one() == "kept"
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 0


def test_the_head_constant_is_the_newest_migration_script() -> None:
    # the fast startup check compares the stored revision with HEAD, never loading alembic
    from modelyard.store.migrate import HEAD

    assert head_revision() == HEAD


@pytest.mark.slow  # starts a process
def test_checking_a_current_store_does_not_load_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(Database(db_url))
    probe = (
        "import sys\n"
        "from modelyard.store.database import Database\n"
        "from modelyard.store.migrate import ensure_current\n"
        f"ensure_current(Database({db_url!r}), create_if_empty=False)\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_upgrading_to_0020_seals_the_uploads_versions_were_registered_from(
    tmp_path: Path, backend: str
) -> None:
    from alembic import command

    from modelyard.store.migrate import _config

    staged = "ab" * 16
    with ExitStack() as stack:
        url = (
            stack.enter_context(throwaway_postgres())
            if backend == "postgresql"
            else f"sqlite:///{tmp_path / 'uploads.db'}"
        )
        db = Database(url)
        stack.callback(db.dispose)
        config = _config(db)
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0019")
            conn.execute(
                text(
                    "INSERT INTO models (name, description, last_version, created_at, "
                    "updated_at, workspace) VALUES ('churn', '', 2, 1, 1, 'fraud')"
                )
            )
            for number, source in ((1, f"uploads/{staged}"), (2, "runs/r1/artifacts/model")):
                conn.execute(
                    text(
                        "INSERT INTO model_versions (model_id, version, stage, source, "
                        "package_digest, flavor, description, created_by, created_at, "
                        "updated_at) VALUES (1, :number, 'candidate', :source, 'd', 'sklearn', "
                        "'', 'ana', 1, 1)"
                    ),
                    {"number": number, "source": source},
                )
        assert upgrade(db) == ("0019", head_revision())
        with db.read() as conn:
            rows = conn.execute(
                text("SELECT upload_id, workspace, created_by, version_id FROM package_uploads")
            ).all()
        assert [tuple(row) for row in rows] == [(staged, "fraud", "ana", 1)]
