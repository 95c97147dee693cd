"""Encrypted secrets on SQLite and PostgreSQL: stored as ciphertext, audited by name only."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings
from modelyard.errors import IntegrityError, InvalidInput, NotConfigured, NotFound
from modelyard.governance.secrets import SecretBox, SecretService, key_id_of
from modelyard.jsonable import plain
from modelyard.store import schema as t
from tests.actors import as_user
from tests.stores import services_on

VALUE = "tok-7f3a9c1e5b-very-secret"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


def stored_rows(services: Services) -> list[dict[str, object]]:
    with services.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(t.secrets))]


def test_set_list_reveal_replace_and_delete(services: Services, key: str) -> None:
    secrets = SecretService(services.db, SecretBox(key))
    created = as_user("ana", secrets.set, "pager-token", VALUE)
    assert (created.name, created.created_by, created.updated_by) == ("pager-token", "ana", "ana")
    assert secrets.reveal("pager-token") == VALUE
    replaced = as_user("bo", secrets.set, "pager-token", VALUE + "-2")
    assert (replaced.created_by, replaced.updated_by) == ("ana", "bo")
    assert replaced.created_at == created.created_at <= replaced.updated_at
    assert secrets.reveal("pager-token") == VALUE + "-2"
    secrets.set("smtp.password_1", "hunter2-smtp")
    assert [r.name for r in secrets.names()] == ["pager-token", "smtp.password_1"]
    assert VALUE not in repr(secrets.names()) and VALUE not in repr(secrets)

    rows = stored_rows(services)
    assert {row["key_id"] for row in rows} == {key_id_of(key.encode())}
    for row in rows:  # the column holds Fernet tokens, never the value
        assert VALUE not in str(row["ciphertext"]) and "hunter2" not in str(row["ciphertext"])
        assert str(row["ciphertext"]).startswith("gAAAA")

    secrets.delete("pager-token")
    with pytest.raises(NotFound, match="secret 'pager-token' does not exist"):
        secrets.reveal("pager-token")
    with pytest.raises(NotFound, match="secret 'pager-token' does not exist"):
        secrets.delete("pager-token")
    assert [r.name for r in secrets.names()] == ["smtp.password_1"]


def test_every_change_is_audited_with_the_name_and_never_the_value(
    services: Services, key: str
) -> None:
    secrets = SecretService(services.db, SecretBox(key))
    as_user("ana", secrets.set, "hook", VALUE)
    as_user("ana", secrets.set, "hook", VALUE + "-new")
    as_user("bo", secrets.delete, "hook")
    events = services.audit.events()
    assert [(e.action, e.resource, e.actor) for e in events] == [
        ("set secret", "secrets/hook", "ana"),
        ("set secret", "secrets/hook", "ana"),
        ("delete secret", "secrets/hook", "bo"),
    ]
    assert [(e.summary["before"], e.summary["after"]) for e in events] == [
        ({"set": False}, {"set": True}),
        ({"set": True}, {"set": True}),
        ({"set": True}, {"set": False}),
    ]
    assert {e.summary["workspace"] for e in events} == {"default"}
    exported = json.dumps(plain(events))
    assert VALUE not in exported
    assert services.audit.verify() == 3


def test_names_and_values_are_checked_before_anything_is_stored(
    services: Services, key: str
) -> None:
    secrets = SecretService(services.db, SecretBox(key))
    for bad in ("", "a/b", "has space", "..", "x" * 129, "ünïcode", "semi;colon"):
        with pytest.raises(InvalidInput, match="invalid secret name"):
            secrets.set(bad, VALUE)
    assert secrets.set("A-z_0.9", VALUE).name == "A-z_0.9"
    with pytest.raises(InvalidInput, match="the value of secret 'x' is empty"):
        secrets.set("x", "")
    with pytest.raises(InvalidInput, match="the value of secret 'x' must be text"):
        secrets.set("x", 12345)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="the value of secret 'x' is not valid Unicode text"):
        secrets.set("x", "ab\ud800")
    with pytest.raises(InvalidInput, match="longer than 65536 characters"):
        secrets.set("x", "v" * 65_537)
    assert [r.name for r in secrets.names()] == ["A-z_0.9"]
    assert len(services.audit.events()) == 1


def test_a_value_under_another_key_is_named_not_a_traceback(services: Services, key: str) -> None:
    SecretService(services.db, SecretBox(key)).set("hook", VALUE)
    other = SecretService(services.db, SecretBox(Fernet.generate_key().decode()))
    with pytest.raises(NotConfigured) as raised:
        other.reveal("hook")
    message = str(raised.value)
    assert message == (
        f"secret 'hook' was encrypted with another key (key id {key_id_of(key.encode())}); "
        "set MODELYARD_SECRET_KEY to that key"
    )
    assert key not in message and VALUE not in message


def test_an_altered_ciphertext_fails_its_integrity_check(services: Services, key: str) -> None:
    secrets = SecretService(services.db, SecretBox(key))
    secrets.set("hook", VALUE)
    forged = Fernet(key.encode()).encrypt(b"x")[:-4].decode() + "AAAA"
    with services.db.write() as conn:
        conn.execute(update(t.secrets).values(ciphertext=forged))
    with pytest.raises(IntegrityError, match="secret 'hook' does not decrypt with key"):
        secrets.reveal("hook")


def test_embedded_mode_keeps_its_key_in_a_0600_file_made_once(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "secret.key"
    boxes = [SecretBox(None, key_file=key_file) for _ in range(8)]
    assert not key_file.exists()  # constructors store, methods act
    ids: list[str] = []
    threads = [threading.Thread(target=lambda b=box: ids.append(b.key_id)) for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(set(ids)) == 1 and len(ids) == 8  # racing first uses agree on one key
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]  # no temp files left
    again = SecretBox(None, key_file=key_file)
    assert again.decrypt(boxes[0].encrypt(VALUE)) == VALUE
    assert "secret.key" in repr(again) and key_file.read_text().strip() not in repr(again)


def test_the_environment_key_wins_over_the_key_file(tmp_path: Path, key: str) -> None:
    home = tmp_path / "home"
    settings = Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    services = bootstrap(Settings(**{**settings.__dict__, "secret_key": key + "\n"}))
    try:
        services.secrets.set("hook", VALUE)
        assert services.secrets.box.key_id == key_id_of(key.encode())
        assert not (home / "secret.key").exists()
        assert key not in repr(services.settings)
    finally:
        services.close()


def test_a_server_refuses_secrets_without_the_variable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    bootstrap(settings).close()  # migrate the store, as `modelyard db upgrade` would
    server = bootstrap(settings, create_if_empty=False)  # what `modelyard server` builds
    try:
        for attempt in (
            lambda: server.secrets.set("hook", VALUE),
            lambda: server.secrets.reveal("hook"),
        ):
            with pytest.raises(NotConfigured, match="secrets need MODELYARD_SECRET_KEY"):
                attempt()
        assert server.secrets.names() == []  # names need no key
        assert not (home / "secret.key").exists()
    finally:
        server.close()


def test_a_malformed_key_is_named_without_being_echoed(services: Services) -> None:
    secrets = SecretService(services.db, SecretBox("not-a-fernet-key-but-secret"))
    with pytest.raises(NotConfigured) as raised:
        secrets.set("hook", VALUE)
    assert str(raised.value).startswith("MODELYARD_SECRET_KEY is not a Fernet key")
    assert "not-a-fernet-key-but-secret" not in str(raised.value)
    assert stored_rows(services) == []
