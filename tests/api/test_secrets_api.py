"""The secrets routes and the remote SDK through a real server: values go in, never out."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from modelyard.bootstrap import bootstrap
from modelyard.client.yard import connect
from modelyard.config import Settings
from modelyard.errors import InvalidInput, NotConfigured, NotFound
from tests.conftest import sqlite_settings
from tests.liveapp import LiveApp, live_app

VALUE = "whk-4c2e8b1f9d-top-secret"


@dataclass
class Store:
    home: Path
    settings: Settings
    admin_key: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A migrated store with a first admin, as `db upgrade` and `admin init` leave it."""
    home = tmp_path_factory.mktemp("secrets-server")
    settings = sqlite_settings(home)
    services = bootstrap(settings)
    admin = services.identity.create_user("admin", "admin")
    _, admin_key = services.identity.create_key(admin.name, name="test admin")
    services.close()
    return Store(home, settings, admin_key)


@contextmanager
def serving(store: Store, secret_key: str | None) -> Iterator[LiveApp]:
    """The app as `modelyard server` builds it (never creating a store) over ``store``."""
    services = bootstrap(replace(store.settings, secret_key=secret_key), create_if_empty=False)
    try:
        with live_app(services) as running:
            yield running
    finally:
        services.close()


@pytest.fixture(scope="module")
def keyed(store: Store) -> Iterator[LiveApp]:
    """A server given MODELYARD_SECRET_KEY."""
    with serving(store, Fernet.generate_key().decode()) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(keyed: LiveApp, store: Store) -> dict[str, str]:
    found = {}
    with httpx.Client(base_url=keyed.url, headers=_auth(store.admin_key), timeout=30) as admin:
        for role in ("viewer", "contributor", "maintainer"):
            admin.post("/api/v1/users", json={"name": f"s-{role}", "role": role})
            found[role] = admin.post(f"/api/v1/users/s-{role}/keys", json={}).json()["token"]
    return found


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_maintainers_set_list_and_delete_and_never_see_a_value(
    keyed: LiveApp, tokens: dict[str, str]
) -> None:
    with httpx.Client(base_url=keyed.url, headers=_auth(tokens["maintainer"])) as api:
        put = api.put("/api/v1/secrets/pager-token", json={"value": VALUE})
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "pager-token" and put.json()["created_by"] == "s-maintainer"
        assert api.put("/api/v1/secrets/pager-token", json={"value": VALUE}).status_code == 200
        listed = api.get("/api/v1/secrets")
        assert [s["name"] for s in listed.json()] == ["pager-token"]
        assert set(listed.json()[0]) == {
            "name",
            "workspace",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        }
        deleted = api.delete("/api/v1/secrets/pager-token")
        assert deleted.json() == {"name": "pager-token", "deleted": True}
        missing = api.delete("/api/v1/secrets/pager-token")
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "secret 'pager-token' does not exist"
        for answer in (put, listed, deleted, missing):
            assert VALUE not in answer.text


def test_viewers_and_contributors_are_refused(keyed: LiveApp, tokens: dict[str, str]) -> None:
    for role in ("viewer", "contributor"):
        with httpx.Client(base_url=keyed.url, headers=_auth(tokens[role])) as api:
            for method, path in (
                ("PUT", "/api/v1/secrets/x"),
                ("GET", "/api/v1/secrets"),
                ("DELETE", "/api/v1/secrets/x"),
            ):
                answer = api.request(method, path, json={"value": VALUE})
                assert answer.status_code == 403, (role, method, answer.text)
                assert role in answer.json()["error"]["message"]


def test_bad_input_is_named_without_echoing_the_value(keyed: LiveApp, store: Store) -> None:
    with httpx.Client(base_url=keyed.url, headers=_auth(store.admin_key)) as api:
        bad_name = api.put("/api/v1/secrets/has%20space", json={"value": VALUE})
        assert bad_name.status_code == 422
        assert "invalid secret name 'has space'" in bad_name.json()["error"]["message"]
        for body in ({}, {"value": 12345}, {"value": ""}, {"value": None}):
            answer = api.put("/api/v1/secrets/hook", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["error"]["kind"] == "invalid_input"
        assert VALUE not in bad_name.text


def test_changes_are_audited_by_name_and_the_value_is_nowhere(
    keyed: LiveApp, store: Store, tokens: dict[str, str]
) -> None:
    with httpx.Client(base_url=keyed.url, headers=_auth(tokens["maintainer"])) as api:
        assert api.put("/api/v1/secrets/audited", json={"value": VALUE}).status_code == 200
        assert api.delete("/api/v1/secrets/audited").status_code == 200
    with httpx.Client(base_url=keyed.url, headers=_auth(store.admin_key)) as admin:
        events = admin.get("/api/v1/audit", params={"actor": "s-maintainer"}).json()
        assert admin.get("/api/v1/audit/verify").json()["intact"] is True
    mine = [e for e in events if "audited" in e["resource"]]
    assert [(e["action"], e["resource"]) for e in mine] == [
        ("set secret", "secrets/audited"),
        ("delete secret", "secrets/audited"),
    ]
    assert mine[0]["summary"] == {
        "workspace": "default",
        "before": {"set": False},
        "after": {"set": True},
    }
    assert mine[1]["summary"]["before"] == {"set": True}
    assert mine[1]["summary"]["after"] == {"set": False}
    assert {e["client"] for e in mine} == {"127.0.0.1"} and all(e["key_id"] for e in mine)
    assert VALUE not in json.dumps(events)
    assert VALUE not in keyed.output()  # nor in the server's log


def test_the_database_holds_ciphertext_only(keyed: LiveApp, store: Store) -> None:
    with httpx.Client(base_url=keyed.url, headers=_auth(store.admin_key)) as api:
        assert api.put("/api/v1/secrets/stored", json={"value": VALUE}).status_code == 200
    with sqlite3.connect(store.home / "modelyard.db") as conn:
        rows = conn.execute(
            "SELECT ciphertext, key_id FROM secrets WHERE name = 'stored'"
        ).fetchall()
    assert len(rows) == 1 and rows[0][0].startswith("gAAAA") and VALUE not in rows[0][0]
    raw = b"".join(p.read_bytes() for p in store.home.glob("modelyard.db*"))
    assert VALUE.encode() not in raw  # nor in the WAL
    assert not (store.home / "secret.key").exists()


def test_the_remote_sdk_sets_lists_and_deletes(
    keyed: LiveApp, store: Store, tmp_path: Path
) -> None:
    with connect(keyed.url, api_key=store.admin_key, home=tmp_path) as yard:
        record = yard.secrets.set("sdk-token", VALUE)
        assert record.name == "sdk-token" and record.created_by == "admin"
        assert "sdk-token" in [s.name for s in yard.secrets.list()]
        yard.secrets.delete("sdk-token")
        assert "sdk-token" not in [s.name for s in yard.secrets.list()]
        with pytest.raises(NotFound, match="secret 'sdk-token' does not exist"):
            yard.secrets.delete("sdk-token")
        with pytest.raises(InvalidInput, match="invalid secret name '..'"):
            yard.secrets.set("..", VALUE)


def test_a_server_without_the_key_refuses_to_store(store: Store, tmp_path: Path) -> None:
    with serving(store, None) as keyless:
        with connect(keyless.url, api_key=store.admin_key, home=tmp_path) as yard:
            with pytest.raises(NotConfigured, match="secrets need MODELYARD_SECRET_KEY"):
                yard.secrets.set("refused", VALUE)
            assert "refused" not in [s.name for s in yard.secrets.list()]  # names need no key
        answer = httpx.put(
            f"{keyless.url}/api/v1/secrets/refused",
            json={"value": VALUE},
            headers=_auth(store.admin_key),
        )
        assert answer.status_code == 503 and answer.json()["error"]["kind"] == "not_configured"
        assert VALUE not in answer.text and VALUE not in keyless.output()
    assert not (store.home / "secret.key").exists()  # a server never makes a key file
