"""A metadata database whose disk fills up or turns read-only: writes are refused with a
clear 507 (embedded: ``StorageUnavailable``), reads go on, nothing stored is lost, and
writes succeed again once there is space."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard, connect
from modelyard.config import Settings
from modelyard.errors import StorageUnavailable
from tests.cli.test_cli import invoke
from tests.conftest import ServerProcess, embedded_yard, prepare_store
from tests.disk import small_disk
from tests.stores import PG_ADMIN_URL, throwaway_postgres

pytestmark = pytest.mark.slow

FULL = "metadata database cannot be written: database or disk is full (nothing was changed)"


def test_a_full_database_disk_answers_507_and_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with small_disk(tmp_path / "db", "8m") as disk:
        env = {"MODELYARD_DB_URL": f"sqlite:///{disk.path / 'modelyard.db'}"}
        key = prepare_store(home, env)
        server = ServerProcess(home, env).start()
        api = httpx.Client(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}
        )
        try:
            assert api.post("/experiments", json={"name": "before"}).status_code == 201
            filler = disk.fill()
            refused = api.post("/experiments", json={"name": "during"})
            assert refused.status_code == 507, refused.text
            error = refused.json()["error"]
            assert error["kind"] == "storage_unavailable"
            assert error["message"] == FULL
            assert str(disk.path) not in refused.text  # the server's paths stay in its log
            listed = api.get("/experiments")  # reads go on
            assert listed.status_code == 200
            names = {item["name"] for item in listed.json()}
            assert "before" in names and "during" not in names
            yard = connect(server.url, api_key=key, home=tmp_path / "client")
            with pytest.raises(StorageUnavailable, match="database or disk is full"):
                yard.experiments.create("through-the-sdk")
            disk.free(filler)
            assert api.post("/experiments", json={"name": "after"}).status_code == 201
            names = {item["name"] for item in api.get("/experiments").json()}
            assert {"before", "after"} <= names and "during" not in names
            verified = api.get("/audit/verify")
            assert verified.status_code == 200 and verified.json()["intact"], verified.text
            yard.close()
        finally:
            api.close()
            server.stop()
        assert "Traceback" not in server.output()


def test_a_store_on_a_read_only_disk_is_refused_by_name(tmp_path: Path) -> None:
    """SQLite writes beside the database even to read it, so a store whose disk turned
    read-only cannot be opened: the command says so in one line (exit 2), the SDK raises
    StorageUnavailable, and the store is whole again once the disk is writable."""
    with small_disk(tmp_path / "home", "8m") as disk:
        code, _, err = invoke(disk.path, "experiments", "create", "kept")
        assert code == 0, err
        disk.remount(read_only=True)
        for args in (("experiments", "list"), ("experiments", "create", "refused")):
            code, _, err = invoke(disk.path, *args)
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert err.startswith("error: metadata database cannot be opened: its folder is "
                                  "read-only or not writable by this process"), err  # fmt: skip
        with pytest.raises(StorageUnavailable, match="cannot be opened"):
            embedded_yard(disk.path).experiments.list()
        disk.remount(read_only=False)
        yard = embedded_yard(disk.path)
        try:
            yard.experiments.create("again")
            assert {"kept", "again"} <= {e.name for e in yard.experiments.list()}
        finally:
            yard.close()


def test_a_read_only_postgresql_database_refuses_writes_by_name(tmp_path: Path) -> None:
    """PostgreSQL made read-only for new sessions (what a standby or a full disk's
    emergency setting does): a write is StorageUnavailable, reads go on, and the same
    write succeeds once the database is writable again."""
    with throwaway_postgres() as url:
        services = bootstrap(Settings(tmp_path, url, str(tmp_path / "artifacts")))
        yard = Yard(LocalBackend(services))
        name = make_url(url).database
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            yard.experiments.create("kept")
            for setting in ("on", "off"):
                with admin.connect() as conn:
                    conn.execute(
                        text(
                            f'ALTER DATABASE "{name}" SET default_transaction_read_only = {setting}'
                        )
                    )
                services.db.dispose()  # the pool's sessions keep the setting they began with
                if setting == "on":
                    with pytest.raises(StorageUnavailable) as refused:
                        yard.experiments.create("refused")
                    assert str(refused.value) == (
                        "metadata database cannot be written: the database is read-only "
                        "(nothing was changed)"
                    )
                    assert [e.name for e in yard.experiments.list()] == ["kept"]
            yard.experiments.create("again")
            assert {e.name for e in yard.experiments.list()} == {"kept", "again"}
        finally:
            yard.close()
            admin.dispose()


def test_a_full_temporary_folder_refuses_a_large_upload_and_recovers(tmp_path: Path) -> None:
    """A body past 8 MiB is spooled to the server's temporary folder: a full one is a
    507 naming it, not a 500, and nothing is staged."""
    home = tmp_path / "home"
    with small_disk(tmp_path / "tmp", "16m") as disk:
        key = prepare_store(home)
        server = ServerProcess(home, {"TMPDIR": str(disk.path)}).start()
        api = httpx.Client(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}
        )
        body = b"m" * (9 << 20)  # past what is kept in memory
        try:
            # Python picks its temporary folder on first use, skipping one it cannot
            # write to, so the server uses it once before it fills up
            first = api.put(f"/uploads/{'a' * 32}/model.pkl", content=body)
            assert first.status_code == 201, first.text
            filler = disk.fill()
            refused = api.put(f"/uploads/{'a' * 32}/weights.bin", content=body)
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"]["message"] == (
                "the server's temporary folder cannot hold the request body: no space left on "
                "device (nothing was stored)"
            )
            assert str(disk.path) not in refused.text
            staged = home / "artifacts" / "uploads" / ("a" * 32)
            assert sorted(p.name for p in staged.iterdir()) == ["model.pkl"]
            disk.free(filler)
            again = api.put(f"/uploads/{'a' * 32}/weights.bin", content=body)
            assert again.status_code == 201, again.text
            assert (staged / "weights.bin").stat().st_size == len(body)
        finally:
            api.close()
            server.stop()
        assert "Traceback" not in server.output()
