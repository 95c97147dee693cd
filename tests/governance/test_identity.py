from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from modelyard.bootstrap import Services
from modelyard.domain.identity import Permission, Role
from modelyard.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from modelyard.governance.identity import bearer_key
from modelyard.store import schema as t
from tests.actors import as_user
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path) as built:
        yield built


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer my_abc_def", "my_abc_def"),
        ("bearer   my_abc_def  ", "my_abc_def"),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("my_abc_def", None),
        ("", None),
    ],
)
def test_the_bearer_key_of_an_authorization_header(header: str, key: str | None) -> None:
    assert bearer_key(header) == key


def test_keys_authenticate_their_user_and_role(services: Services) -> None:
    identity = services.identity
    identity.create_user("ana", Role.CONTRIBUTOR)
    record, token = identity.create_key("ana", name="laptop")
    principal = identity.authenticate(token)
    assert (principal.user, principal.role, principal.key_id) == (
        "ana",
        Role.CONTRIBUTOR,
        record.id,
    )
    assert principal.can(Permission.TRACK) and not principal.can(Permission.PROMOTE)
    assert identity.authenticate(token) == principal  # remembered, still the same answer
    with services.db.read() as conn:
        stored = conn.execute(select(t.api_keys.c.secret_hash)).scalar_one()
    assert stored.startswith("scrypt$") and token.split("_", 2)[2] not in stored


def test_bad_keys_are_refused_without_echoing_them(services: Services) -> None:
    identity = services.identity
    identity.create_user("bo", "viewer")
    record, token = identity.create_key("bo")
    forged = token[:-4] + "AAAA"
    cases = [
        (None, "an API key is required"),
        ("not-a-key", "malformed"),
        (forged, f"API key '{record.id}' is not valid"),
        ("my_0000000000000000_secret", "is not valid"),
    ]
    for given, message in cases:
        with pytest.raises(NotAuthenticated, match=message) as caught:
            identity.authenticate(given)
        assert token not in str(caught.value) and (given is None or given not in str(caught.value))
    identity.revoke_key(record.id)
    with pytest.raises(NotAuthenticated, match="was revoked"):
        identity.authenticate(token)


def test_expired_keys_and_disabled_users(services: Services) -> None:
    identity = services.identity
    identity.create_user("cy", Role.ADMIN)
    _, token = identity.create_key("cy", expires_in_days=1)
    identity.authenticate(token)
    with services.db.write() as conn:
        conn.execute(update(t.api_keys).values(expires_at=1))
    with pytest.raises(NotAuthenticated, match="has expired"):
        identity.authenticate(token)
    with pytest.raises(InvalidInput, match="lifetime must be positive"):
        identity.create_key("cy", expires_in_days=0)


def test_users_and_roles(services: Services) -> None:
    identity = services.identity
    assert not identity.has_admin()
    identity.create_user("root", "admin")
    assert identity.has_admin()
    with pytest.raises(Conflict, match="user 'root' already exists"):
        identity.create_user("root", "viewer")
    with pytest.raises(InvalidInput, match="unknown role 'boss'"):
        identity.create_user("x", "boss")
    with pytest.raises(Conflict, match="without an admin"):
        identity.set_role("root", "maintainer")  # the last admin stays one
    identity.create_user("ops", "admin")
    assert identity.set_role("root", "maintainer").role is Role.MAINTAINER
    assert [u.name for u in identity.list_users()] == ["ops", "root"]
    with pytest.raises(NotFound, match="user 'ghost' does not exist"):
        identity.create_key("ghost")
    with pytest.raises(NotFound, match="API key 'nope' does not exist"):
        identity.revoke_key("nope")


def test_every_identity_change_is_recorded_by_the_service_never_a_key(
    services: Services,
) -> None:
    identity, workspaces = services.identity, services.workspaces
    as_user("root", identity.create_user, "ana", "viewer")
    as_user("root", workspaces.create, "fraud")
    as_user("root", identity.set_role, "ana", "maintainer", workspace="fraud")
    as_user("root", identity.set_role, "ana", "admin", workspace="fraud")
    as_user("root", identity.remove_member, "ana", "default")
    record, token = as_user("root", identity.create_key, "ana", name="ci")
    as_user("root", identity.revoke_key, record.id)
    with pytest.raises(Conflict):  # refused: no change, no event
        identity.create_user("ana", "viewer")
    with pytest.raises(Conflict, match="without an admin"):
        identity.set_role("ana", "viewer", workspace="fraud")

    events = services.audit.events()
    assert [(e.action, e.resource, e.summary["workspace"]) for e in events] == [
        ("create user", "users/ana", "default"),
        ("create workspace", "workspaces/fraud", "fraud"),
        ("add member", "users/ana", "fraud"),
        ("set role", "users/ana", "fraud"),
        ("remove member", "users/ana", "default"),
        ("create key", f"keys/{record.id}", "default"),
        ("revoke key", f"keys/{record.id}", "default"),
    ]
    assert {(e.actor, e.client, e.status) for e in events} == {("root", "embedded", 200)}
    changes: list[tuple[Any, Any]] = [
        (e.summary.get("before"), e.summary.get("after")) for e in events[:5]
    ]
    assert changes == [
        (None, {"workspace": "default", "role": "viewer"}),
        (None, {"name": "fraud"}),
        ({"workspace": "fraud", "role": None}, {"workspace": "fraud", "role": "maintainer"}),
        (
            {"workspace": "fraud", "role": "maintainer"},
            {"workspace": "fraud", "role": "admin"},
        ),
        ({"workspace": "default", "role": "viewer"}, {"workspaces": ["fraud"]}),
    ]
    created, revoked = events[5].summary, events[6].summary
    assert (created["after"]["key_id"], created["after"]["user"]) == (record.id, "ana")
    assert created["after"]["name"] == "ci" and created["after"]["revoked_at"] is None
    assert revoked["before"] == {"revoked_at": None}
    assert revoked["after"]["revoked_at"] == identity.get_key(record.id).revoked_at
    _, secret = token.removeprefix("my_").split("_", 1)
    assert all(secret not in repr(e) for e in events)
    assert services.audit.verify() == 7
