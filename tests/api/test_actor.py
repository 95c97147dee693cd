"""Who acted comes from the API key, never from what a request carries.

The schema walk proves no request body has a field that could name an actor; the
route walk proves every write route refuses such a field instead of ignoring it;
the scenarios prove the recorded author, requester, approver and stage mover are
the key's user, so the maker-checker rule holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import connect
from tests.api.test_permissions import _message, concrete
from tests.conftest import ServerProcess

# a field with one of these names, or ending in ``_by`` (``created_by``, but not an ordering
# such as ``order_by``), would let a caller say who acted
ACTOR_LIKE = re.compile(
    r"^(user|username|actor|author|owner|requester|approver|reviewer|who|principal)$"
    r"|(?<!order)(?<!sort)(?<!group)_by$"
)
WRITES = ("post", "put", "patch", "delete")
CLAIMS = ("created_by", "actor", "user", "requested_by", "approved_by", "author")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    found: dict[str, Any] = schema
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def _fields(
    schema: dict[str, Any], node: dict[str, Any], path: str, seen: set[str]
) -> Iterator[str]:
    """Every property name reachable from ``node``, as a dotted path."""
    ref = node.get("$ref")
    if ref in seen:
        return
    if ref:
        seen = seen | {ref}
    node = _resolve(schema, node)
    for name, child in node.get("properties", {}).items():
        yield f"{path}{name}"
        yield from _fields(schema, child, f"{path}{name}.", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _fields(schema, node[key], path, seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            yield from _fields(schema, option, path, seen)


def _json_bodies(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield method, path, content["application/json"]["schema"]


@pytest.fixture(scope="module")
def schema(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    return dict(answer.json())


def test_no_request_body_has_a_field_that_names_an_actor(schema: dict[str, Any]) -> None:
    bodies = list(_json_bodies(schema))
    assert len(bodies) >= 30  # the walk reaches the write routes
    named = [
        (method.upper(), path, field)
        for method, path, body in bodies
        for field in _fields(schema, body, "", set())
        if ACTOR_LIKE.search(field.rpartition(".")[2])
    ]
    assert named == []


def test_the_walk_would_see_an_actor_field() -> None:
    """The detector itself: a body with ``created_by`` (nested or not) is caught."""
    schema = {
        "components": {
            "schemas": {
                "Inner": {"properties": {"approved_by": {"type": "string"}}},
                "Outer": {
                    "properties": {
                        "name": {"type": "string"},
                        "inner": {"$ref": "#/components/schemas/Inner"},
                    }
                },
            }
        }
    }
    found = list(_fields(schema, {"$ref": "#/components/schemas/Outer"}, "", set()))
    assert found == ["name", "inner", "inner.approved_by"]
    assert [f for f in found if ACTOR_LIKE.search(f.rpartition(".")[2])] == ["inner.approved_by"]


def test_every_write_route_refuses_a_body_that_names_an_actor(
    schema: dict[str, Any], server: ServerProcess
) -> None:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    checked = 0
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as admin:
        for method, path, _ in _json_bodies(schema):
            if method not in WRITES:
                continue
            for claim in CLAIMS:
                answer = admin.request(method.upper(), concrete(path), json={claim: "mallory"})
                refused = 400 if path.startswith("/api/2.0/mlflow/") else 422  # MLflow's status
                assert answer.status_code == refused, (method, path, claim, answer.text)
                message = _message(answer.json())
                assert re.search(rf"\b{claim}\b", message), (method, path, message)
                checked += 1
    assert checked >= 30 * len(CLAIMS)


class Team:
    """Users with keys on the session's server, and an admin client."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.suffix = uuid.uuid4().hex[:8]
        self.admin = httpx.Client(
            base_url=server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {server.admin_key}"},
        )
        self.tokens: dict[str, str] = {}

    def user(self, name: str, role: str) -> httpx.Client:
        user = f"{name}-{self.suffix}"
        self.admin.post("/api/v1/users", json={"name": user, "role": role}).raise_for_status()
        answer = self.admin.post(f"/api/v1/users/{user}/keys", json={"name": "actor test"})
        self.tokens[name] = answer.json()["token"]
        headers = {"Authorization": f"Bearer {self.tokens[name]}"}
        return httpx.Client(base_url=self.server.url, timeout=30, headers=headers)


@pytest.fixture
def team(server: ServerProcess) -> Iterator[Team]:
    made = Team(server)
    yield made
    made.admin.close()


def test_the_author_cannot_approve_a_version_registered_under_another_name(
    team: Team, server: ServerProcess, tmp_path: Any
) -> None:
    """The reported hole: alice names mallory as the author, then approves her own version."""
    alice = team.user("alice", "maintainer")
    bob = team.user("bob", "contributor")
    bunch = load_iris(as_frame=True)
    fitted = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    name = f"a{team.suffix}"
    with connect(server.url, api_key=team.tokens["alice"], home=tmp_path) as yard:
        first = yard.models.register(fitted, name=name, input_example=bunch.data.head(2))
    assert first.created_by == f"alice-{team.suffix}"
    claimed = alice.post(
        f"/api/v1/models/{name}/versions", json={"source": first.source, "created_by": "mallory"}
    )
    assert claimed.status_code == 422
    assert "created_by" in claimed.json()["error"]["message"]
    versions = alice.get("/api/v1/versions", params={"name": name}).json()
    assert [v["version"] for v in versions] == [1]  # nothing was registered

    base = f"/api/v1/models/{name}/versions/1"
    try:
        team.admin.put("/api/v1/policies/approvals", json={"required": 1}).raise_for_status()
        asked = bob.post(f"{base}/approval-requests", json={"comment": "ship it"})
        assert asked.status_code == 200 and asked.json()["requested_by"] == f"bob-{team.suffix}"
        own = alice.post(f"{base}/approvals", json={"decision": "approve"})
        assert own.status_code == 403, own.text
        assert "registered" in own.json()["error"]["message"]
        forged = alice.post(f"{base}/approvals", json={"decision": "approve", "actor": "carol"})
        assert forged.status_code == 422
        status = alice.get(f"{base}/approvals").json()
        assert status["state"] != "approved" and status["approved_by"] == []
    finally:
        team.admin.put("/api/v1/policies/approvals", json={"required": 0}).raise_for_status()
        alice.close()
        bob.close()


def test_runs_and_stage_moves_are_attributed_to_the_key(
    team: Team, server: ServerProcess, tmp_path: Any
) -> None:
    carol = team.user("carol", "maintainer")
    experiment = f"e{team.suffix}"
    assert carol.post("/api/v1/experiments", json={"name": experiment}).status_code == 201
    forged = carol.post("/api/v1/runs", json={"experiment": experiment, "user": "mallory"})
    assert forged.status_code == 422 and "user" in forged.json()["error"]["message"]
    made = carol.post("/api/v1/runs", json={"experiment": experiment})
    assert made.status_code == 201 and made.json()["user"] == f"carol-{team.suffix}"

    bunch = load_iris(as_frame=True)
    fitted = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    with connect(server.url, api_key=team.tokens["carol"], home=tmp_path) as yard:
        version = yard.models.register(fitted, name=f"s{team.suffix}", input_example=bunch.data)
    stage = f"/api/v1/models/{version.model}/versions/{version.version}/stage"
    refused = carol.post(stage, json={"stage": "staging", "actor": "mallory"})
    assert refused.status_code == 422 and "actor" in refused.json()["error"]["message"]
    assert carol.post(stage, json={"stage": "staging"}).status_code == 200
    history = carol.get(f"{stage.removesuffix('/stage')}/stages").json()
    assert [h["actor"] for h in history] == [f"carol-{team.suffix}"]
    carol.close()
