"""Cross-team isolation: every operation of the live OpenAPI document x {own, other}
workspace x every role; nothing of the other workspace is read, listed or written.

Two workspaces hold the same kinds of resources (experiment, run with metric, param,
artifact and dataset, model with two versions and an alias, endpoint, monitor, secret,
batch job, a member). Users of every role in the first ("own") call each operation with
its path, query and body filled from the OTHER workspace's names and ids: the answer is
a refusal and names nothing of that workspace the request did not already name, and the
other workspace's state and audit trail are unchanged afterwards. The same users naming
the other workspace in the workspace header are refused everywhere. Secrets' values
appear in no answer, server log line, audit event or report.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sklearn.linear_model import LogisticRegression

from modelyard.api.security import PLATFORM_ROUTES
from modelyard.client.yard import connect
from modelyard.domain.identity import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import ServerProcess, prepare_store

pytestmark = pytest.mark.slow

WORKSPACE_HEADER = "X-Modelyard-Workspace"
# a route whose path names one of these acts in the workspace owning it (api/security.py)
OWNED_PREFIXES = (
    "/api/v1/models/{name}",
    "/api/v1/endpoints/{name}",
    "/api/v1/monitors/{name}",
    "/api/v1/experiments/{name}",
    "/api/v1/datasets/{name}",
    "/api/v1/runs/{run_id}",
    "/api/v1/secrets/{name}",
    "/api/v1/batch-jobs/{job_id}",
    "/api/v1/workspaces/{workspace}",
)
REFUSED = {403, 404, 409, 422}


@dataclass
class Team:
    """One workspace and the names and ids of what it holds."""

    workspace: str
    tag: str
    secret_value: str
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def experiment(self) -> str:
        return f"{self.tag}-experiment"

    @property
    def model(self) -> str:
        return f"{self.tag}-model"

    @property
    def endpoint(self) -> str:
        return f"{self.tag}-endpoint"

    @property
    def monitor(self) -> str:
        return f"{self.tag}-monitor"

    @property
    def dataset(self) -> str:
        return f"{self.tag}-dataset"

    @property
    def secret(self) -> str:
        return f"{self.tag}-secret"

    @property
    def member(self) -> str:
        return f"{self.tag}-member"

    def identifying(self) -> dict[str, str]:
        """Every string that identifies something of this workspace (not its name: a
        refusal names the workspace owning what was asked for, by design)."""
        return {
            "experiment": self.experiment,
            "model": self.model,
            "endpoint": self.endpoint,
            "monitor": self.monitor,
            "dataset": self.dataset,
            "secret": self.secret,
            "member": self.member,
            "description": f"{self.tag}-description",
            "param": f"{self.tag}-param-value",
            "secret value": self.secret_value,
            # an environment is content-addressed: both teams may share one
            **{
                kind: value
                for kind, value in self.ids.items()
                if len(value) >= 8 and kind != "environment_id"
            },
        }

    def values(self) -> dict[str, Any]:
        """What fills a parameter or body field of that name, for this workspace."""
        version = f"{self.model}/1"
        return {
            "experiment": self.experiment,
            "experiments": self.experiment,
            "experiment_name": self.experiment,
            "experiment_id": self.ids["experiment_id"],
            "experiment_ids": [self.ids["experiment_id"]],
            "run_id": self.ids["run_id"],
            "run_uuid": self.ids["run_id"],
            "run_ids": [self.ids["run_id"]],
            "selector": "1",
            "alias": "champion",
            "key": "loss",
            "metric_key": "loss",
            "path": "notes.txt",
            "fingerprint": self.ids["fingerprint"],
            "environment_id": self.ids.get("environment_id", "e"),
            "job_id": self.ids["job_id"],
            "workspace": self.workspace,
            "user": self.member,
            "actor": self.member,
            "key_id": self.ids["key_id"],
            "model": self.model,
            "monitor": self.monitor,
            "endpoint": self.endpoint,
            "ref": version,
            "node": f"version:{version}",
            "a": "1",
            "b": "2",
            "filter": f"name = '{self.model}'",
            "upload_id": "a" * 32,
            "request_id": "r" * 32,
            "alert_id": "noalert",
            "value": 1.0,
            "timestamp": 0,
            "step": 0,
            "routes": [{"model": self.model, "version": 1, "weight": 100}],
            "spec": {"endpoint": self.endpoint},
            "description": "changed",
            "status": "FINISHED",
            "role": "viewer",
            "version": "1",
        }

    def name_for(self, path: str) -> str:
        """What ``{name}`` means in ``path``."""
        for prefix, value in (
            ("/api/v1/models/", self.model),
            ("/api/v1/endpoints/", self.endpoint),
            ("/api/v1/monitors/", self.monitor),
            ("/api/v1/experiments/", self.experiment),
            ("/api/v1/datasets/", self.dataset),
            ("/api/v1/secrets/", self.secret),
            ("/api/v1/users/", self.member),
        ):
            if path.startswith(prefix):
                return value
        raise AssertionError(f"no value for {{name}} in {path}")


@dataclass
class Site:
    server: ServerProcess
    own: Team
    other: Team
    keys: dict[Role, str]
    users: dict[Role, str]
    answers: list[str] = field(default_factory=list)  # every body the matrix received

    def admin(self, workspace: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.server.admin_key}"}
        if workspace:
            headers[WORKSPACE_HEADER] = workspace
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)


def _seed(server: ServerProcess, team: Team, home: Path) -> None:
    """Give ``team``'s workspace one of every kind of resource, as the platform admin."""
    admin_headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=admin_headers, timeout=60) as admin:
        assert admin.post("/api/v1/workspaces", json={"name": team.workspace}).status_code == 201
        member = {"name": team.member, "role": "viewer", "workspace": team.workspace}
        assert admin.post("/api/v1/users", json=member).status_code == 201
        key = admin.post(f"/api/v1/users/{team.member}/keys", json={}).json()
        team.ids["key_id"] = key["key"]["id"]
    shift = len(team.workspace) / 100  # each team its own data, and so fingerprint
    frame = pd.DataFrame({"x": [i % 7 + shift for i in range(60)], "y": [i % 2 for i in range(60)]})
    features, target = frame[["x"]], frame["y"]
    with connect(server.url, api_key=server.admin_key, home=home, workspace=team.workspace) as yard:
        with yard.start_run(team.experiment) as run:
            run.log_metric("loss", 0.25)
            run.log_param("note", f"{team.tag}-param-value")
            run.log_text("hello", "notes.txt")
            dataset = run.log_dataset(frame, name=team.dataset)
        team.ids["run_id"] = run.id
        team.ids["experiment_id"] = str(yard.experiments.get(team.experiment).id)
        team.ids["fingerprint"] = dataset.fingerprint
        model = LogisticRegression().fit(features, target)
        for _ in range(2):
            yard.models.register(
                model, name=team.model, input_example=features.head(), run_id=run.id
            )
        yard.endpoints.create(team.endpoint, routes=[f"{team.model}/1=100"])
        yard.monitors.create(team.monitor, endpoint=team.endpoint)
        yard.secrets.set(team.secret, team.secret_value)
    headers = {**admin_headers, WORKSPACE_HEADER: team.workspace}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
        edited = admin.patch(
            f"/api/v1/models/{team.model}", json={"description": f"{team.tag}-description"}
        )
        assert edited.status_code == 200, edited.text
        alias = admin.put(f"/api/v1/models/{team.model}/aliases/champion", json={"version": 1})
        assert alias.status_code in (200, 201), alias.text
        job = admin.post(
            f"/api/v1/models/{team.model}/batch-jobs",
            json={"ref": f"{team.model}/1", "input_uri": "in.csv", "output_uri": "out.csv"},
        )
        assert job.status_code == 201, job.text
        team.ids["job_id"] = job.json()["id"]
        environment = admin.get(f"/api/v1/runs/{team.ids['run_id']}").json().get("environment_id")
        if environment:
            team.ids["environment_id"] = str(environment)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("isolation-home")
    env = {"MODELYARD_SECRET_KEY": Fernet.generate_key().decode()}
    admin_key = prepare_store(home, env)
    running = ServerProcess(home, env).start()
    running.admin_key = admin_key
    try:
        tag = uuid.uuid4().hex[:6]
        own = Team(f"own{tag}", f"o{tag}", f"sv-own-{uuid.uuid4().hex}")
        other = Team(f"other{tag}", f"x{tag}", f"sv-other-{uuid.uuid4().hex}")
        for team in (own, other):
            _seed(running, team, tmp_path_factory.mktemp(team.tag))
        keys, users = {}, {}
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=60) as admin:
            for role in Role:
                user = f"{own.tag}-{role.value}"
                body = {"name": user, "role": role.value, "workspace": own.workspace}
                assert admin.post("/api/v1/users", json=body).status_code == 201
                keys[role] = admin.post(f"/api/v1/users/{user}/keys", json={}).json()["token"]
                users[role] = user
        yield Site(running, own, other, keys, users)
    finally:
        running.stop()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if operation.get("x-permission") is not None
    ]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _body(schema: dict[str, Any], operation: dict[str, Any], values: dict[str, Any]) -> Any:
    """A request body with every known field filled from ``values`` (only known fields:
    bodies refuse unknown ones)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return {}
    node = _resolve(schema, content["schema"])
    properties = node.get("properties", {})
    body = {name: values[name] for name in properties if name in values}
    for name in node.get("required", []):
        if name not in body:
            kind = str(_resolve(schema, properties.get(name, {})).get("type"))
            body[name] = {"integer": 0, "number": 0.0, "array": [], "object": {}}.get(kind, "x")
    return body


def _request(
    schema: dict[str, Any], path: str, operation: dict[str, Any], team: Team
) -> tuple[str, dict[str, Any], Any]:
    values = team.values()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return team.name_for(path) if name == "name" else str(values[name])

    url = re.sub(r"\{(\w+)(?::path)?\}", fill, path)
    query = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "query" and name in values:
            query[name] = values[name]
            if path == "/api/v1/references" and name == "version":
                query[name] = values["ref"]
            if path == "/api/v1/datasets/{name}/content" and name == "fingerprint":
                query[name] = values["fingerprint"]
    return url, query, _body(schema, operation, values)


def _leaks(team: Team, sent: str, answer: str) -> list[str]:
    """What of ``team`` the answer names that the request did not."""
    return [
        kind for kind, value in team.identifying().items() if value not in sent and value in answer
    ]


def _snapshot(site: Site) -> str:
    """The other workspace's state, as its admin sees it."""
    team = site.other
    with site.admin(team.workspace) as admin:
        reads = [
            "/api/v1/experiments",
            f"/api/v1/runs/{team.ids['run_id']}",
            f"/api/v1/runs/{team.ids['run_id']}/artifacts",
            f"/api/v1/runs/{team.ids['run_id']}/metrics/loss",
            f"/api/v1/runs/{team.ids['run_id']}/datasets",
            f"/api/v1/datasets/{team.dataset}",
            f"/api/v1/datasets/{team.dataset}/classes",
            "/api/v1/models",
            f"/api/v1/models/{team.model}",
            f"/api/v1/models/{team.model}/inventory",
            "/api/v1/versions",
            f"/api/v1/models/{team.model}/versions/1/stages",
            f"/api/v1/models/{team.model}/versions/1/approvals",
            "/api/v1/endpoints",
            f"/api/v1/endpoints/{team.endpoint}/revisions",
            "/api/v1/monitors",
            "/api/v1/secrets",
            "/api/v1/batch-jobs",
            f"/api/v1/workspaces/{team.workspace}/members",
            "/api/v1/keys",
            "/api/v1/policies/approvals",
        ]
        state = {}
        for url in reads:
            answer = admin.get(url)
            assert answer.status_code == 200, (url, answer.text)
            state[url] = answer.json()
    return json.dumps(state, sort_keys=True)


def test_every_operation_refuses_the_other_workspace_for_every_role(site: Site) -> None:
    with site.admin() as admin:
        schema = admin.get("/openapi.json").json()
    before = _snapshot(site)
    operations = _operations(schema)
    checked = 0
    with httpx.Client(base_url=site.server.url, timeout=60) as client:
        for role, token in site.keys.items():
            for method, path, operation in operations:
                url, query, body = _request(schema, path, operation, site.other)
                sent = url + json.dumps(query) + json.dumps(body)
                for header in ({}, {WORKSPACE_HEADER: site.other.workspace}):
                    answer = client.request(
                        method,
                        url,
                        params=query,
                        json=body,
                        headers={"Authorization": f"Bearer {token}", **header},
                    )
                    where = (role.value, method, path, header, answer.status_code, answer.text)
                    site.answers.append(answer.text)
                    assert answer.status_code < 500, where
                    assert _leaks(site.other, sent, answer.text) == [], where
                    names_other = path.startswith(OWNED_PREFIXES) or header
                    if names_other:
                        assert answer.status_code in (403, 404), where
                    elif answer.status_code >= 300:
                        assert answer.status_code in REFUSED | {400, 405}, where
                    # else a 2xx acted in the caller's own workspace: it named nothing of
                    # the other one (above) and changed nothing there (the snapshot below)
                    checked += 1
    assert checked >= 4 * 2 * 120
    assert _snapshot(site) == before
    with site.admin() as admin:
        events = admin.get("/api/v1/audit", params={"limit": 100_000}).json()
    by_matrix = [e for e in events if e["actor"] in site.users.values() and e["outcome"] == "ok"]
    touched = [e for e in by_matrix if site.other.workspace in json.dumps(e)]
    assert touched == []


def test_every_operation_answers_its_own_workspace_by_role(site: Site) -> None:
    """The same fill, from the own workspace: the matrix reaches real handlers (a
    role allowed an operation is never refused on it) and lists name only own things."""
    with site.admin() as admin:
        schema = admin.get("/openapi.json").json()
    reads = [(m, p, o) for m, p, o in _operations(schema) if m == "GET"]
    reached = 0
    with httpx.Client(base_url=site.server.url, timeout=60) as client:
        for role, token in site.keys.items():
            for _, path, operation in reads:
                url, query, _ = _request(schema, path, operation, site.own)
                answer = client.get(url, params=query, headers={"Authorization": f"Bearer {token}"})
                where = (role.value, path, answer.status_code, answer.text)
                site.answers.append(answer.text)
                assert answer.status_code < 500, where
                assert _leaks(site.other, "", answer.text) == [], where
                allowed = Permission(operation["x-permission"]) in ROLE_PERMISSIONS[role]
                platform = path.startswith(PLATFORM_ROUTES)
                if allowed and not platform and path != "/api/v1/workspaces":
                    assert answer.status_code not in (401, 403), where
                    reached += answer.status_code == 200
                else:
                    assert answer.status_code == 403, where
    assert reached >= 4 * 20
    # the check above can fail: a member of the other workspace is shown its resources
    with site.admin(site.other.workspace) as member:
        seen = [member.get(url).text for url in ("/api/v1/models", "/api/v1/secrets")]
    assert {"model", "description", "secret"} <= set(_leaks(site.other, "", "".join(seen)))


def test_secret_values_appear_nowhere(site: Site) -> None:
    values = (site.own.secret_value, site.other.secret_value)
    with site.admin(site.own.workspace) as admin:
        # a refused write carrying the value does not echo it
        for body in (
            {"value": values[0], "unknown": 1},
            {"value": [values[0]]},
            {"value": {"nested": values[0]}},
        ):
            refused = admin.put(f"/api/v1/secrets/{site.own.secret}", json=body)
            assert refused.status_code == 422, refused.text
            site.answers.append(refused.text)
        listed = admin.get("/api/v1/secrets")
        report = admin.get(f"/api/v1/monitors/{site.own.monitor}/report")
        site.answers += [listed.text, report.text]
        assert site.own.secret in listed.text and report.status_code == 200, report.text
    with site.admin() as admin:
        audit = admin.get("/api/v1/audit", params={"limit": 100_000})
    secret_events = [e for e in audit.json() if "secret" in json.dumps(e)]
    assert secret_events  # setting them was audited
    texts = {
        "answers": "\n".join(site.answers),
        "audit": audit.text,
        "server log": site.server.output(),
    }
    for where, text in texts.items():
        for value in values:
            assert value not in text, where
    for stored in site.server.home.glob("modelyard.db*"):  # encrypted at rest (and in the WAL)
        assert all(value.encode() not in stored.read_bytes() for value in values), stored
