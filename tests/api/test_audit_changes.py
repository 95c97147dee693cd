"""Writes through the server are audited with a summary of before and after.

Each test makes a few real writes and reads their events back from ``GET /audit``.
A change is recorded by the service that made it, in its own transaction, under a
domain action (``"set alias"`` on ``models/churn@champion``), with the key's user,
key id and client address: the same event embedded mode writes. Its summary carries
``before`` / ``after`` (ids, names, versions, stages, counts). A refused write is
recorded by the API under its route, and no summary holds an API key or the data a
write carried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelyard.client.yard import connect
from tests.api.conftest import new_run
from tests.conftest import ServerProcess
from tests.serving.models import cancer, classifier

Event = dict[str, Any]


@pytest.fixture(scope="module")
def model(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model with versions 1 and 2, both candidates, registered through the server."""
    name = f"a{uuid.uuid4().hex[:10]}"
    yard = connect(server.url, api_key=server.admin_key, home=tmp_path_factory.mktemp("audit"))
    fitted, example = classifier(), cancer()[0].head()
    for _ in range(2):
        yard.models.register(fitted, name=name, input_example=example)
    yard.close()
    return name


@pytest.fixture
def viewer(api: httpx.Client, server: ServerProcess, unique: str) -> Iterator[httpx.Client]:
    api.post("/api/v1/users", json={"name": f"{unique}-viewer", "role": "viewer"})
    token = api.post(f"/api/v1/users/{unique}-viewer/keys", json={}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        yield client


def events_of(api: httpx.Client, action: str, resource: str) -> list[Event]:
    """The events of ``action`` (a service's, or ``"METHOD /route"`` for what only the API
    records) on exactly ``resource``, oldest first."""
    params: dict[str, str | int] = {"action": action, "resource": resource, "limit": 10_000}
    answer = api.get("/api/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json() if e["action"] == action and e["resource"] == resource]


def change_of(api: httpx.Client, action: str, resource: str) -> tuple[Any, Any]:
    """(before, after) of the newest successful event of ``action`` on ``resource``."""
    done = [e for e in events_of(api, action, resource) if e["outcome"] == "ok"]
    assert done, (action, resource)
    summary = done[-1]["summary"]
    return summary.get("before"), summary.get("after")


def test_a_stage_transition_records_the_stage_before_and_after(
    api: httpx.Client, model: str
) -> None:
    path = f"/api/v1/models/{model}/versions/1/stage"
    answer = api.post(path, json={"stage": "staging", "comment": "ready"})
    assert answer.status_code == 200, answer.text

    before, after = change_of(api, "transition stage", f"models/{model}/1")
    assert before == {"stage": "candidate"}
    assert after == {
        "stage": "staging",
        "comment": "ready",
        "archive_others": False,
        "archived": [],
    }


def test_an_alias_move_records_where_it_pointed(api: httpx.Client, model: str) -> None:
    path = f"/api/v1/models/{model}/aliases/champion"
    resource = f"models/{model}@champion"
    assert api.put(path, json={"version": 1}).status_code == 200
    assert change_of(api, "set alias", resource) == ({"version": None}, {"version": 1})

    assert api.put(path, json={"version": 2}).status_code == 200
    assert change_of(api, "set alias", resource) == ({"version": 1}, {"version": 2})

    assert api.delete(path).status_code == 204
    deleted = change_of(api, "delete alias", resource)
    assert deleted == ({"version": 2}, {"version": None})


def route_events(api: httpx.Client, path: str) -> list[Event]:
    """The events the API wrote itself under a route for ``path`` and below."""
    answer = api.get("/api/v1/audit", params={"resource": path, "limit": 0})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_endpoint_revisions_record_the_routes_before_and_after(
    api: httpx.Client, model: str, unique: str
) -> None:
    body = {"name": unique, "routes": [{"model": model, "version": 1, "weight": 100}]}
    assert api.post("/api/v1/endpoints", json=body).status_code == 201
    path, resource = f"/api/v1/endpoints/{unique}", f"endpoints/{unique}"
    created = change_of(api, "create endpoint", resource)
    assert created[0] is None
    assert created[1]["revision"] == 1 and created[1]["routes"] == {f"{model}/1": 100}

    change = {"routes": [{"model": model, "version": 2, "weight": 100}], "comment": "v2"}
    assert api.patch(path, json=change).status_code == 200
    before, after = change_of(api, "change endpoint", resource)
    assert (before["revision"], before["routes"]) == (1, {f"{model}/1": 100})
    assert (after["revision"], after["routes"], after["comment"]) == (2, {f"{model}/2": 100}, "v2")

    assert api.post(f"{path}/rollback", json={}).status_code == 200
    before, after = change_of(api, "rollback endpoint", resource)
    assert (before["revision"], before["routes"]) == (2, {f"{model}/2": 100})
    assert (after["revision"], after["routes"]) == (3, {f"{model}/1": 100})
    assert after["changes"]["rollback_to"] == 1

    me = api.get("/api/v1/whoami").json()
    (event,) = events_of(api, "rollback endpoint", resource)
    assert (event["actor"], event["client"]) == (me["user"], "127.0.0.1")
    assert event["key_id"] and event["key_id"] == me["key_id"]
    assert event["summary"]["workspace"] == "default"
    assert route_events(api, path) == []  # recorded by the service, not again by the API


def test_labels_retention_and_erasure_are_recorded_by_counts(
    api: httpx.Client, model: str, unique: str
) -> None:
    body = {"name": unique, "routes": [{"model": model, "version": 1, "weight": 100}]}
    assert api.post("/api/v1/endpoints", json=body).status_code == 201
    path, resource = f"/api/v1/endpoints/{unique}", f"endpoints/{unique}"
    labels = {"labels": [{"id": "nobody-predicted-this", "label": "secret-label"}]}
    assert api.post(f"{path}/labels", json=labels).status_code == 200
    assert change_of(api, "post labels", f"{resource}/labels") == (
        None,
        {"recorded": 0, "unknown": 1},
    )
    assert api.put(f"{path}/retention", json={"days": 7}).status_code == 200
    assert change_of(api, "set retention", resource) == (
        {"retention_days": None},
        {"retention_days": 7},
    )
    assert api.post(f"{path}/prune").json() == {"deleted": 0}
    _, pruned = change_of(api, "prune predictions", f"{resource}/predictions")
    assert (pruned["deleted"], pruned["retention_days"]) == (0, 7)
    assert api.put(f"{path}/subject", json={"column": "customer"}).status_code == 200
    assert change_of(api, "set subject column", resource) == (
        {"subject_column": None},
        {"subject_column": "customer"},
    )
    assert api.post(f"{path}/erase", json={"subject": "subject-17"}).json() == {"deleted": 0}
    _, erased = change_of(api, "erase subject", f"{resource}/predictions")
    assert (erased["column"], erased["deleted"]) == ("customer", 0)

    written = json.dumps(api.get("/api/v1/audit", params={"resource": resource}).json())
    assert "secret-label" not in written and "subject-17" not in written
    assert route_events(api, path) == []


def test_monitor_changes_record_the_spec_they_changed(
    api: httpx.Client, model: str, unique: str
) -> None:
    body = {"name": unique, "routes": [{"model": model, "version": 1, "weight": 100}]}
    assert api.post("/api/v1/endpoints", json=body).status_code == 201
    path, resource = f"/api/v1/monitors/{unique}", f"monitors/{unique}"
    assert api.get(path).status_code == 200  # every new endpoint gets a default monitor
    (default,) = events_of(api, "create monitor", resource)
    assert default["actor"] == api.get("/api/v1/whoami").json()["user"]  # the endpoint's creator
    assert default["summary"]["after"]["spec"]["endpoint"] == unique
    assert api.patch(path, json={"enabled": False}).status_code == 200

    before, after = change_of(api, "update monitor", resource)
    assert before["enabled"] is True and before["spec"]["endpoint"] == unique
    assert after == {"enabled": False, "changes": {}}
    assert api.post(f"{path}/run").status_code == 200
    assert change_of(api, "run monitor", resource) == (None, {"windows": 0, "alerts": 0})
    assert route_events(api, path) == []


def test_an_inventory_patch_records_only_the_fields_it_changes(
    api: httpx.Client, model: str
) -> None:
    path = f"/api/v1/models/{model}/inventory"
    action, resource = "update inventory", f"models/{model}/inventory"
    first = {"risk_tier": "high", "business_owner": "risk-team"}
    assert api.patch(path, json=first).status_code == 200
    assert change_of(api, action, resource) == ({"risk_tier": None, "business_owner": ""}, first)

    assert api.patch(path, json={"risk_tier": "low"}).status_code == 200
    assert change_of(api, action, resource) == ({"risk_tier": "high"}, {"risk_tier": "low"})


def test_dataset_writes_record_the_description_and_the_classes(
    api: httpx.Client, unique: str
) -> None:
    run_id = new_run(api, unique)
    description = {
        "name": unique,
        "role": "training",
        "fingerprint": "c" * 64,
        "row_count": 2,
        "columns": [{"name": "x", "type": "float"}, {"name": "y", "type": "int"}],
    }
    assert api.post(f"/api/v1/runs/{run_id}/datasets", json=description).status_code == 201
    _, logged = change_of(api, "log dataset", f"runs/{run_id}/datasets/{unique}")
    assert (logged["name"], logged["role"], logged["fingerprint"]) == (unique, "training", "c" * 64)
    assert (logged["row_count"], logged["columns"], logged["stored"]) == (2, 2, False)

    classes = f"/api/v1/datasets/{unique}/classes"
    assert api.put(classes, json={"classes": ["pii"]}).status_code == 200
    changed = change_of(api, "classify dataset", f"datasets/{unique}")
    assert changed == ({"classes": []}, {"classes": ["pii"]})


def test_uploading_dataset_content_is_recorded_by_the_dataset_that_uses_it(
    api: httpx.Client, unique: str
) -> None:
    run_id = new_run(api, unique)
    fingerprint = uuid.uuid4().hex * 2
    put = api.put(f"/api/v1/datasets/{fingerprint}/content", content=b"parquet bytes here")
    assert put.status_code == 201, put.text
    description = {
        "name": unique,
        "role": "evaluation",
        "fingerprint": fingerprint,
        "row_count": 1,
        "columns": [],
        "stored": True,
    }
    assert api.post(f"/api/v1/runs/{run_id}/datasets", json=description).status_code == 201
    _, logged = change_of(api, "log dataset", f"runs/{run_id}/datasets/{unique}")
    assert logged["stored"] is True and logged["fingerprint"] == fingerprint
    content = f"/api/v1/datasets/{fingerprint}/content"
    assert events_of(api, "PUT /api/v1/datasets/{fingerprint}/content", content) == []


def test_run_writes_record_what_was_written_never_the_values(
    api: httpx.Client, unique: str
) -> None:
    run_id = new_run(api, unique, params={"alpha": "value-of-alpha"})
    _, created = change_of(api, "create run", f"runs/{run_id}")
    assert (created["experiment"], created["params"], created["tags"]) == (unique, ["alpha"], [])
    metrics = {"keys": ["loss", "loss", "acc"], "values": [0.5, 0.25, 0.875]}
    batch = {
        "metrics": {**metrics, "steps": [0, 1, 0], "timestamps": [1, 2, 3]},
        "params": {"beta": "value-of-beta"},
    }
    assert api.post(f"/api/v1/runs/{run_id}/batch", json=batch).status_code == 204
    _, after = change_of(api, "log batch", f"runs/{run_id}")
    assert after == {"params": ["beta"], "tags": [], "metrics": ["acc", "loss"], "points": 3}
    put = api.put(f"/api/v1/runs/{run_id}/artifacts/notes/a.txt", content=b"artifact body")
    assert put.status_code == 201
    _, stored = change_of(api, "log artifact", f"runs/{run_id}/artifacts/notes/a.txt")
    assert (stored["path"], stored["size"]) == ("notes/a.txt", len(b"artifact body"))
    assert stored["sha256"] == put.json()["sha256"]
    finished = api.post(f"/api/v1/runs/{run_id}/finish", json={"status": "FINISHED"})
    assert finished.status_code == 200
    ended = change_of(api, "finish run", f"runs/{run_id}")
    assert ended == ({"status": "RUNNING"}, {"status": "FINISHED"})

    events = api.get("/api/v1/audit", params={"resource": f"runs/{run_id}"}).json()
    assert {e["action"] for e in events} == {
        "create run",
        "log batch",
        "log artifact",
        "finish run",
    }
    assert {e["actor"] for e in events} == {"admin"} and all(e["key_id"] for e in events)
    written = json.dumps([e["summary"] for e in events])
    for value in ("value-of-alpha", "value-of-beta", "0.875", "artifact body"):
        assert value not in written


def test_a_refused_write_is_recorded_as_denied_without_a_change(
    api: httpx.Client, viewer: httpx.Client, model: str, unique: str
) -> None:
    path = f"/api/v1/models/{model}/versions/2/stage"
    refused = viewer.post(path, json={"stage": "staging"})
    assert refused.status_code == 403

    events = events_of(api, "POST /api/v1/models/{name}/versions/{selector}/stage", path)
    denied = [e for e in events if e["actor"] == f"{unique}-viewer"]
    assert [(e["outcome"], e["status"]) for e in denied] == [("denied", 403)]
    assert "before" not in denied[0]["summary"] and "after" not in denied[0]["summary"]
    assert api.get(f"/api/v1/models/{model}/versions/2").json()["stage"] == "candidate"


def test_user_and_key_changes_name_the_key_never_its_token(
    api: httpx.Client, server: ServerProcess, unique: str
) -> None:
    user = f"{unique}-user"
    assert api.post("/api/v1/users", json={"name": user, "role": "viewer"}).status_code == 201
    created_user = change_of(api, "create user", f"users/{user}")
    assert created_user == (None, {"workspace": "default", "role": "viewer"})
    assert api.patch(f"/api/v1/users/{user}", json={"role": "contributor"}).status_code == 200
    role_change = change_of(api, "set role", f"users/{user}")
    assert role_change == (
        {"workspace": "default", "role": "viewer"},
        {"workspace": "default", "role": "contributor"},
    )

    created = api.post(f"/api/v1/users/{user}/keys", json={"name": "ci"}).json()
    token, key_id = created["token"], created["key"]["id"]
    _, key = change_of(api, "create key", f"keys/{key_id}")
    assert (key["key_id"], key["user"], key["name"]) == (key_id, user, "ci")
    assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200
    before, revoked = change_of(api, "revoke key", f"keys/{key_id}")
    assert before == {"revoked_at": None}
    assert revoked["key_id"] == key_id and revoked["revoked_at"] is not None

    everything = json.dumps(api.get("/api/v1/audit", params={"limit": 0}).json())
    assert token not in everything and server.admin_key not in everything
    assert api.get("/api/v1/audit/verify").json()["intact"] is True


def test_a_new_workspace_and_its_first_admin_are_both_recorded(
    api: httpx.Client, unique: str
) -> None:
    assert api.post("/api/v1/workspaces", json={"name": unique}).status_code == 201
    assert change_of(api, "create workspace", f"workspaces/{unique}") == (None, {"name": unique})
    admin = change_of(api, "add member", "users/admin")
    assert admin == ({"workspace": unique, "role": None}, {"workspace": unique, "role": "admin"})
    found = api.get(f"/api/v1/workspaces/{unique}/audit").json()
    assert [(e["action"], e["actor"]) for e in found] == [
        ("create workspace", "admin"),
        ("add member", "admin"),
    ]


def test_setting_the_approval_policy_records_the_old_requirement(api: httpx.Client) -> None:
    current = api.get("/api/v1/policies/approvals").json()["required"]
    assert api.put("/api/v1/policies/approvals", json={"required": current}).status_code == 200
    change = change_of(api, "set approval policy", "policies/approvals")
    assert change == ({"required": current}, {"required": current})
