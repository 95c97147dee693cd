"""Administration through the SDK, embedded and remote: users, members, workspaces, keys and
the audit log (``yard.admin``, ``yard.audit``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import modelyard.client.admin as admin_module
from modelyard.client.yard import Yard, connect
from modelyard.domain.actors import os_user
from modelyard.domain.identity import Role
from modelyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.conftest import ServerProcess


def test_users_members_and_their_roles(yard: Yard, unique: str) -> None:
    ana, bob = f"{unique}-ana", f"{unique}-bob"
    created = yard.admin.create_user(ana, "contributor")
    assert (created.name, created.role) == (ana, Role.CONTRIBUTOR)
    assert created.workspaces == {"default": Role.CONTRIBUTOR}
    with pytest.raises(Conflict, match=f"user '{ana}' already exists"):
        yard.admin.create_user(ana, "viewer")
    with pytest.raises(InvalidInput, match="unknown role 'owner'"):
        yard.admin.create_user(bob, "owner")

    team = yard.admin.create_workspace(unique, admin=ana)
    assert team.name == unique and ana in yard.admin.admins(unique)
    yard.admin.create_user(bob, Role.VIEWER, workspace=unique)
    promoted = yard.admin.add_member(unique, bob, "maintainer")
    assert promoted.role is Role.MAINTAINER and promoted.workspaces == {unique: Role.MAINTAINER}
    members = {u.name: u.role for u in yard.admin.users(unique)}
    assert (members[ana], members[bob]) == (Role.ADMIN, Role.MAINTAINER)
    assert ana in [u.name for u in yard.admin.users()]

    with pytest.raises(Conflict, match=f"the only one user '{bob}' belongs to"):
        yard.admin.remove_member(unique, bob)
    yard.admin.set_role(bob, "viewer")  # in default
    left = yard.admin.remove_member(unique, bob)
    assert left.workspaces == {"default": Role.VIEWER}
    # embedded: it does not exist; through a server: the caller is no member of it
    with pytest.raises((NotFound, PermissionDenied), match=f"workspace '{unique}x'"):
        yard.admin.users(f"{unique}x")
    assert unique in [w.name for w in yard.admin.workspaces()]


def test_a_workspace_with_an_admin_who_does_not_exist_is_not_created(
    yard: Yard, unique: str
) -> None:
    with pytest.raises(NotFound, match=f"user '{unique}-nobody' does not exist"):
        yard.admin.create_workspace(unique, admin=f"{unique}-nobody")
    assert unique not in [w.name for w in yard.admin.workspaces()]
    with pytest.raises(InvalidInput, match="workspace name 'Not Valid' is not valid"):
        yard.admin.create_workspace("Not Valid", admin=f"{unique}-nobody")


def test_keys_are_created_listed_and_revoked_never_shown_again(yard: Yard, unique: str) -> None:
    ana = f"{unique}-ana"
    yard.admin.create_user(ana, "viewer")
    key, token = yard.admin.create_key(ana, name="laptop", expires_in_days=30)
    assert token.startswith(f"my_{key.id}_") and (key.user, key.name) == (ana, "laptop")
    assert key.expires_at is not None and key.revoked_at is None
    other, _ = yard.admin.create_key(ana)
    listed = yard.admin.keys(ana)
    assert {k.id for k in listed} == {key.id, other.id}
    assert all(token not in repr(k) for k in listed)
    everyone = yard.admin.keys()
    assert {key.id, other.id} <= {k.id for k in everyone}
    revoked = yard.admin.revoke_key(key.id)
    assert revoked.revoked_at is not None
    assert {k.id: k.revoked_at is not None for k in yard.admin.keys(ana)} == {
        key.id: True,
        other.id: False,
    }
    with pytest.raises(NotFound):
        yard.admin.revoke_key("nokey")


def test_the_audit_log_is_searched_exported_and_verified(
    yard: Yard, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = max([e.at for e in yard.audit.events(limit=100_000)] or [0])
    ana = f"{unique}-ana"
    yard.admin.create_user(ana, "viewer")
    key, token = yard.admin.create_key(ana)
    yard.admin.revoke_key(key.id)
    found = yard.audit.events(resource=f"users/{ana}")
    assert [e.action for e in found] == ["create user"]
    keys = yard.audit.events(resource=f"keys/{key.id}")
    assert [e.action for e in keys] == ["create key", "revoke key"]
    assert yard.audit.events(action="revoke key", resource=f"keys/{key.id}")[0].id == keys[1].id

    monkeypatch.setattr(admin_module, "EXPORT_PAGE", 2)  # several pages
    stream = io.StringIO()
    count = yard.audit.export(stream, since=start)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert count == len(lines) >= 3
    assert [e["id"] for e in lines] == sorted({e["id"] for e in lines})
    assert {e["resource"] for e in lines} >= {f"users/{ana}", f"keys/{key.id}"}
    assert token not in stream.getvalue()
    assert yard.audit.export(tmp_path / "audit.jsonl", since=start) == count
    assert (tmp_path / "audit.jsonl").read_text() == stream.getvalue()
    assert yard.audit.verify() >= lines[-1]["id"]


def test_embedded_a_workspace_is_administered_by_whom_it_names_never_the_os_user(
    tmp_path: Path,
) -> None:
    from tests.conftest import embedded_yard

    yard = embedded_yard(tmp_path / "home")
    try:
        with pytest.raises(Conflict, match="'fraud' would have no admin: name one"):
            yard.admin.create_workspace("fraud")
        assert [w.name for w in yard.admin.workspaces()] == []
        yard.admin.create_user("platform-admin", "admin")
        yard.admin.create_user("ana", "viewer")
        yard.admin.create_workspace("fraud")
        assert yard.admin.admins("fraud") == ["platform-admin"]
        yard.admin.create_workspace("risk", admin="ana")
        assert {u.name: u.role for u in yard.admin.users("risk")} == {"ana": Role.ADMIN}
        assert {u.name for u in yard.admin.users()} == {"platform-admin", "ana"}
        assert os_user() not in {"platform-admin", "ana"}  # the OS user got no membership
        events = yard.audit.events(workspace="risk")
        assert [(e.action, e.resource) for e in events] == [
            ("create workspace", "workspaces/risk"),
            ("add member", "users/ana"),
        ]
    finally:
        yard.close()


def test_through_a_server_the_creator_administers_a_new_workspace(
    server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    with connect(server.url, api_key=server.admin_key, home=tmp_path) as yard:
        yard.admin.create_workspace(unique)
        assert yard.admin.admins(unique) == ["admin"]
        ana = f"{unique}-ana"
        yard.admin.create_user(ana, "viewer")
        yard.admin.create_workspace(f"{unique}-2", admin=ana)
        assert yard.admin.admins(f"{unique}-2") == sorted(["admin", ana])
        _, token = yard.admin.create_key(ana)
    with connect(server.url, api_key=token, home=tmp_path) as viewer:
        with pytest.raises(PermissionDenied, match="viewer role"):
            viewer.admin.users()
        assert [u.name for u in viewer.admin.users(f"{unique}-2")]  # ana administers it
