from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from modelyard.domain.actors import os_user
from tests.cli.test_cli import invoke


def test_admin_init_users_keys_and_audit(tmp_path: Path) -> None:
    code, out, _ = invoke(tmp_path, "admin", "init", "--name", "root")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("my_")
    code, _, err = invoke(tmp_path, "admin", "init")
    assert code == 2 and "an admin already exists" in err
    assert invoke(tmp_path, "admin", "user", "add", "ana", "--role", "viewer")[0] == 0
    code, out, _ = invoke(tmp_path, "admin", "user", "list", "--json")
    assert {u["name"]: u["role"] for u in json.loads(out)} == {"ana": "viewer", "root": "admin"}
    code, out, _ = invoke(tmp_path, "admin", "key", "create", "ana", "--expires-days", "30")
    key_id = out.split()[1]
    assert code == 0 and out.strip().splitlines()[-1].startswith(f"my_{key_id}_")
    assert invoke(tmp_path, "admin", "key", "revoke", key_id)[0] == 0
    code, out, _ = invoke(tmp_path, "audit", "verify")
    assert code == 0 and "5 events" in out
    code, out, _ = invoke(tmp_path, "audit", "export", "--since", "2020-01-01")
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["action"], e["resource"]) for e in events] == [
        ("create user", "users/root"),
        ("create key", events[1]["resource"]),
        ("create user", "users/ana"),
        ("create key", f"keys/{key_id}"),
        ("revoke key", f"keys/{key_id}"),
    ]
    assert {(e["actor"], e["client"]) for e in events} == {(os_user(), "embedded")}
    assert events[0]["summary"]["after"] == {"workspace": "default", "role": "admin"}
    assert all(token not in line for line in out.splitlines())
    code, out, _ = invoke(tmp_path, "audit", "search", "--resource", "keys/", "--json")
    assert len(json.loads(out)) == 3


def test_audit_verify_names_the_edited_event(tmp_path: Path) -> None:
    invoke(tmp_path, "admin", "init", "--name", "root")
    invoke(tmp_path, "admin", "user", "add", "ana", "--role", "viewer")
    with sqlite3.connect(tmp_path / "modelyard.db") as conn:
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = 2")
    code, _, err = invoke(tmp_path, "audit", "verify")
    assert code == 2 and "error: audit event 2 was edited" in err
    code, _, err = invoke(tmp_path, "audit", "export", "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a date" in err


def test_workspaces_members_and_the_workspace_option(tmp_path: Path) -> None:
    invoke(tmp_path, "admin", "init", "--name", "root")
    code, out, _ = invoke(tmp_path, "admin", "workspace", "create", "fraud")
    assert code == 0
    assert "its admins: root (the admins of 'default', since no --admin was given)" in out
    code, _, err = invoke(tmp_path, "admin", "workspace", "create", "Bad Name")
    assert code == 2 and "workspace name 'Bad Name' is not valid" in err
    add = ("admin", "user", "add", "ana", "--role", "maintainer", "--workspace", "fraud")
    assert invoke(tmp_path, *add)[0] == 0
    member = ("admin", "workspace", "add-member", "fraud")
    code, _, err = invoke(tmp_path, *member, "root", "--role", "viewer")
    assert code == 2 and "without an admin" in err  # root is its only admin
    assert invoke(tmp_path, *member, "ana", "--role", "admin")[0] == 0
    assert invoke(tmp_path, *member, "root", "--role", "viewer")[0] == 0
    code, out, _ = invoke(tmp_path, "admin", "user", "list", "--workspace", "fraud", "--json")
    assert {u["name"]: u["role"] for u in json.loads(out)} == {"ana": "admin", "root": "viewer"}
    code, _, err = invoke(tmp_path, "admin", "user", "list", "--workspace", "risk")
    assert code == 2 and "workspace 'risk' does not exist" in err
    code, out, _ = invoke(tmp_path, "admin", "workspace", "list", "--json")
    assert {w["name"]: w["members"] for w in json.loads(out)} == {"default": 1, "fraud": 2}
    code, _, err = invoke(tmp_path, "admin", "workspace", "remove-member", "fraud", "ana")
    assert code == 2 and "only one" in err
    assert invoke(tmp_path, "admin", "workspace", "remove-member", "fraud", "root")[0] == 0

    assert invoke(tmp_path, "--workspace", "fraud", "experiments", "create", "fraud-exp")[0] == 0
    code, out, _ = invoke(tmp_path, "--workspace", "fraud", "experiments", "list", "--json")
    assert [e["workspace"] for e in json.loads(out)] == ["fraud"]
    code, out, _ = invoke(tmp_path, "--workspace", "default", "experiments", "list", "--json")
    assert json.loads(out) == []
    code, _, err = invoke(tmp_path, "--workspace", "risk", "experiments", "create", "x")
    assert code == 2 and "workspace 'risk' does not exist" in err


def test_audit_search_by_workspace(tmp_path: Path) -> None:
    invoke(tmp_path, "admin", "init", "--name", "root")
    invoke(tmp_path, "admin", "workspace", "create", "fraud")
    invoke(tmp_path, "admin", "user", "add", "ana", "--role", "viewer")
    invoke(tmp_path, "admin", "workspace", "add-member", "fraud", "ana", "--role", "admin")
    code, out, _ = invoke(tmp_path, "audit", "search", "--workspace", "fraud", "--json")
    assert code == 0
    assert [(e["action"], e["resource"]) for e in json.loads(out)] == [
        ("create workspace", "workspaces/fraud"),
        ("add member", "users/root"),
        ("add member", "users/ana"),
    ]
    code, out, _ = invoke(tmp_path, "audit", "search", "--json")
    assert len(json.loads(out)) == 6
