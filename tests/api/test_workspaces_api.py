"""Workspaces through a real server: a role in one team grants nothing in another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard, connect
from modelyard.errors import InvalidInput, PermissionDenied
from tests.conftest import ServerProcess


class Teams:
    def __init__(self, server: ServerProcess, tag: str) -> None:
        self.server = server
        self.fraud, self.churn = f"fraud-{tag}", f"churn-{tag}"
        self.keys: dict[str, str] = {}
        self.tag = tag

    def client(self, who: str, workspace: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        if workspace is not None:
            headers["X-Modelyard-Workspace"] = workspace
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def yard(self, who: str, home: Path, workspace: str | None = None) -> Yard:
        return connect(self.server.url, api_key=self.keys[who], home=home, workspace=workspace)


@pytest.fixture(scope="module")
def teams(server: ServerProcess) -> Iterator[Teams]:
    import uuid

    built = Teams(server, uuid.uuid4().hex[:8])
    built.keys["admin"] = server.admin_key
    with built.client("admin") as admin:
        for name in (built.fraud, built.churn):
            created = admin.post("/api/v1/workspaces", json={"name": name})
            assert created.status_code == 201, created.text
            assert created.json()["members"] == 1  # its creator, as admin
        people = {
            "ana": (built.fraud, "maintainer"),
            "bob": (built.churn, "maintainer"),
            "carol": (built.fraud, "viewer"),
        }
        for person, (workspace, role) in people.items():
            user = f"{person}-{built.tag}"
            body = {"name": user, "role": role, "workspace": workspace}
            assert admin.post("/api/v1/users", json=body).status_code == 201
            built.keys[person] = admin.post(f"/api/v1/users/{user}/keys", json={}).json()["token"]
        carol = f"carol-{built.tag}"
        added = admin.put(
            f"/api/v1/workspaces/{built.churn}/members/{carol}", json={"role": "contributor"}
        )
        assert added.status_code == 200, added.text
        assert added.json()["workspaces"] == {built.churn: "contributor", built.fraud: "viewer"}
    yield built


@pytest.fixture(scope="module")
def fraud_model(teams: Teams, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model of the fraud team, registered by ana (her only workspace is fraud)."""
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(features, target)
    name = f"scorer-{teams.tag}"
    with teams.yard("ana", tmp_path_factory.mktemp("ana")) as yard:
        with yard.start_run(f"exp-{teams.tag}") as run:
            run.log_metric("auc", 0.9)
        yard.models.register(model, name=name, input_example=features.head(), run_id=run.id)
        yard.endpoints.create(f"ep-{teams.tag}", routes=[f"{name}/1=100"])
    return name


def test_a_team_sees_and_changes_only_its_own_resources(teams: Teams, fraud_model: str) -> None:
    with teams.client("ana") as ana:
        assert ana.get(f"/api/v1/models/{fraud_model}").json()["workspace"] == teams.fraud
        mine = [m["name"] for m in ana.get("/api/v1/models").json()]
        assert fraud_model in mine
        experiments = [e["name"] for e in ana.get("/api/v1/experiments").json()]
        assert experiments == [f"exp-{teams.tag}"]
    with teams.client("bob") as bob:
        assert fraud_model not in [m["name"] for m in bob.get("/api/v1/models").json()]
        assert bob.get("/api/v1/endpoints").json() == []
        assert bob.get("/api/v1/runs/search").json()["runs"] == []
        refused = bob.get(f"/api/v1/models/{fraud_model}")
        assert refused.status_code == 403
        assert f"not a member of workspace '{teams.fraud}'" in refused.json()["error"]["message"]
        for method, path in [
            ("PATCH", f"/api/v1/models/{fraud_model}"),
            ("GET", f"/api/v1/endpoints/ep-{teams.tag}/predictions"),
            ("POST", f"/api/v1/endpoints/ep-{teams.tag}/rollback"),
            ("GET", f"/api/v1/lineage?node=version:{fraud_model}/1"),
            ("GET", f"/api/v1/references?version={fraud_model}/1"),
        ]:
            answer = bob.request(method, path, json={})
            assert answer.status_code == 403, (method, path, answer.text)


def test_resources_combine_only_within_one_workspace(teams: Teams, fraud_model: str) -> None:
    with teams.client("bob") as bob:
        crossed = bob.post(
            "/api/v1/endpoints",
            json={
                "name": f"steal-{teams.tag}",
                "routes": [{"model": fraud_model, "version": 1, "weight": 100}],
            },
        )
        assert crossed.status_code == 422
        assert f"belongs to workspace '{teams.fraud}'" in crossed.json()["error"]["message"]
        assert bob.get(f"/api/v1/endpoints/steal-{teams.tag}").status_code == 404
        monitor = bob.post(
            "/api/v1/monitors",
            json={"name": f"peek-{teams.tag}", "spec": {"endpoint": f"ep-{teams.tag}"}},
        )
        assert monitor.status_code == 422, monitor.text
        # the fraud team's experiment cannot take runs from the churn team
        run = bob.post("/api/v1/runs", json={"experiment": f"exp-{teams.tag}"})
        assert run.status_code == 422 and teams.fraud in run.json()["error"]["message"]


def test_a_member_of_two_workspaces_acts_with_each_role_and_must_name_one(
    teams: Teams, fraud_model: str
) -> None:
    with teams.client("carol") as unnamed:
        ambiguous = unnamed.get("/api/v1/models")
        assert ambiguous.status_code == 422
        assert teams.churn in ambiguous.json()["error"]["message"]
        # a route naming a resource acts in its owner's workspace: viewer in fraud
        assert unnamed.get(f"/api/v1/models/{fraud_model}").status_code == 200
        edit = unnamed.patch(f"/api/v1/models/{fraud_model}", json={"description": "x"})
        assert edit.status_code == 403 and "viewer" in edit.json()["error"]["message"]
    with teams.client("carol", teams.churn) as in_churn:
        created = in_churn.post("/api/v1/experiments", json={"name": f"carol-exp-{teams.tag}"})
        assert created.status_code == 201 and created.json()["workspace"] == teams.churn
        assert [e["name"] for e in in_churn.get("/api/v1/experiments").json()] == [
            f"carol-exp-{teams.tag}"
        ]
    with teams.client("carol", teams.fraud) as in_fraud:
        assert in_fraud.post("/api/v1/experiments", json={"name": "nope"}).status_code == 403
        assert fraud_model in [m["name"] for m in in_fraud.get("/api/v1/models").json()]
    with teams.client("carol", "default") as elsewhere:
        outside = elsewhere.get("/api/v1/models")
        assert outside.status_code == 403 and "not a member of workspace 'default'" in outside.text


def test_approval_policies_and_membership_are_per_workspace(teams: Teams, fraud_model: str) -> None:
    with teams.client("admin", teams.fraud) as admin:
        assert admin.put("/api/v1/policies/approvals", json={"required": 1}).status_code == 200
        assert admin.get("/api/v1/policies/approvals").json() == {"required": 1}
    with teams.client("bob") as bob:
        assert bob.get("/api/v1/policies/approvals").json() == {"required": 0}
        # bob administers nothing: he cannot add himself to the fraud team
        joined = bob.put(
            f"/api/v1/workspaces/{teams.fraud}/members/bob-{teams.tag}", json={"role": "admin"}
        )
        assert joined.status_code == 403
    with teams.client("ana") as ana:
        # under the fraud policy, a new revision routes only to approved versions
        change = ana.patch(f"/api/v1/endpoints/ep-{teams.tag}", json={"description": "again"})
        assert change.status_code == 403 and "approv" in change.json()["error"]["message"]
    with teams.client("admin", teams.fraud) as admin:
        members = admin.get(f"/api/v1/workspaces/{teams.fraud}/members").json()
        assert sorted(m["name"] for m in members) == sorted(
            ["admin", f"ana-{teams.tag}", f"carol-{teams.tag}"]
        )
        assert admin.put("/api/v1/policies/approvals", json={"required": 0}).status_code == 200
    with teams.client("bob") as bob:  # an attempt in his own workspace, refused for its route
        route = {"model": fraud_model, "version": 1, "weight": 100}
        attempt = bob.post("/api/v1/endpoints", json={"name": "x", "routes": [route]})
        assert attempt.status_code == 422
    with teams.client("admin") as platform:
        events = platform.get(
            "/api/v1/audit", params={"actor": f"bob-{teams.tag}", "limit": 10_000}
        ).json()
    refused = [e for e in events if e["status"] == 403 and "members" in e["action"]]
    assert refused and refused[-1]["summary"]["workspace"] == teams.fraud  # where he tried
    crossed = [e for e in events if e["action"] == "POST /api/v1/endpoints"]
    assert crossed and crossed[-1]["summary"]["workspace"] == teams.churn
    with teams.client("admin", teams.fraud) as team_admin:
        mine = team_admin.get(f"/api/v1/workspaces/{teams.fraud}/audit").json()
    assert mine and {e["summary"]["workspace"] for e in mine} == {teams.fraud}
    assert f"bob-{teams.tag}" in {e["actor"] for e in mine}  # his refused attempt is there
    with teams.client("ana") as maintainer:
        denied = maintainer.get(f"/api/v1/workspaces/{teams.fraud}/audit")
        assert denied.status_code == 403


def test_the_sdk_picks_its_workspace(teams: Teams, fraud_model: str, tmp_path: Path) -> None:
    with teams.yard("carol", tmp_path, workspace=teams.fraud) as yard:
        assert fraud_model in [m.name for m in yard.models.list()]
        with pytest.raises(PermissionDenied):
            yard.models.update(fraud_model, description="viewers cannot")
    with teams.yard("carol", tmp_path) as yard, pytest.raises(InvalidInput):
        yard.models.list()


def test_a_teams_stored_dataset_is_downloaded_only_by_its_members(
    teams: Teams, tmp_path: Path
) -> None:
    import pandas as pd

    from modelyard.errors import NotFound

    frame = pd.DataFrame({"account": [1, 2], "amount": [9.5, 120.0]})
    name = f"fraud-data-{teams.tag}"
    with teams.yard("ana", tmp_path / "ana") as ana:
        with ana.start_run(f"exp-{teams.tag}") as run:
            logged = run.log_dataset(frame, name=name)
        assert ana.datasets.download(logged.fingerprint, tmp_path / "mine.parquet").exists()
    with teams.yard("bob", tmp_path / "bob") as bob:
        with pytest.raises(PermissionDenied, match=f"not a member of workspace '{teams.fraud}'"):
            bob.datasets.download(name, tmp_path / "stolen.parquet")
        # by content, the request acts in bob's own workspace, where no such dataset is
        with pytest.raises(NotFound, match="does not exist"):
            bob.datasets.download(logged.fingerprint, tmp_path / "stolen.parquet")
    with teams.client("bob") as raw:
        path = f"/api/v1/datasets/{name}/content"
        refused = raw.get(path, params={"fingerprint": logged.fingerprint})
        assert refused.status_code == 403
    assert not (tmp_path / "stolen.parquet").exists()
