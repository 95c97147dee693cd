"""Workspaces as services see them: memberships, ownership, and no cross-team wiring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from modelyard.domain.identity import Principal, Role, check_workspace_name
from modelyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


def fitted() -> tuple[LogisticRegression, object]:
    bunch = load_iris(as_frame=True)
    return LogisticRegression(max_iter=500).fit(bunch.data, bunch.target), bunch.data.head(2)


def team_yard(services: Services, workspace: str | None) -> Yard:
    return Yard(LocalBackend(services, workspace=workspace))


def test_memberships_give_a_role_per_workspace(services: Services) -> None:
    identity, workspaces = services.identity, services.workspaces
    workspaces.create("fraud")
    with pytest.raises(Conflict, match="workspace 'fraud' already exists"):
        workspaces.create("fraud")
    with pytest.raises(InvalidInput, match="not valid"):
        workspaces.create("Fraud Team")
    identity.create_user("ana", "viewer")
    identity.set_role("ana", "maintainer", workspace="fraud")
    ana = identity.get_user("ana")
    assert ana.workspaces == {"default": Role.VIEWER, "fraud": Role.MAINTAINER}
    assert ana.role is Role.VIEWER  # the home workspace's role
    assert identity.get_user("ana", "fraud").role is Role.MAINTAINER
    assert [u.name for u in identity.list_users("fraud")] == ["ana"]
    assert {w.name: w.members for w in workspaces.list()} == {"default": 1, "fraud": 1}

    _, token = identity.create_key("ana")
    principal = identity.authenticate(token)
    assert principal.workspace == "default" and principal.role is Role.VIEWER
    assert principal.acting_in("fraud").role is Role.MAINTAINER
    with pytest.raises(PermissionDenied, match="not a member of workspace 'risk'"):
        principal.acting_in("risk")
    with pytest.raises(NotFound, match="workspace 'risk' does not exist"):
        identity.set_role("ana", "viewer", workspace="risk")

    identity.remove_member("ana", "default")
    assert identity.get_user("ana").workspaces == {"fraud": Role.MAINTAINER}
    with pytest.raises(Conflict, match="only one"):
        identity.remove_member("ana", "fraud")
    assert identity.authenticate(token).workspace == "fraud"


def test_a_member_of_several_workspaces_outside_default_must_name_one() -> None:
    both = Principal("carol", Role.VIEWER, roles=(("churn", Role.VIEWER), ("fraud", Role.ADMIN)))
    with pytest.raises(InvalidInput, match="belongs to workspaces churn, fraud"):
        both.home_workspace()
    single = Principal("dan", Role.VIEWER, roles=(("fraud", Role.VIEWER),))
    assert single.home_workspace() == "fraud"
    assert both.may_predict("e", "fraud") and not both.may_predict("e", "churn")
    assert check_workspace_name("team_a-1") == "team_a-1"
    for bad in ("", "-a", "A", "a" * 65, "a b"):
        with pytest.raises(InvalidInput):
            check_workspace_name(bad)


def test_resources_belong_to_a_workspace_and_lists_follow_it(services: Services) -> None:
    services.workspaces.create("fraud")
    model, example = fitted()
    fraud, everyone = team_yard(services, "fraud"), team_yard(services, None)
    with fraud.start_run("fraud-exp") as run:
        run.log_metric("auc", 0.9)
    fraud.models.register(model, name="scorer", input_example=example, run_id=run.id)
    fraud.endpoints.create("scoring", routes=["scorer/1=100"])
    everyone.models.register(model, name="default-model", input_example=example)

    owner = services.workspaces.owner
    assert owner("experiment", "fraud-exp") == "fraud"
    assert owner("run", run.id) == "fraud"
    assert owner("model", "scorer") == owner("version", "scorer/1") == "fraud"
    assert owner("version", "scorer@champion") == "fraud"
    assert owner("endpoint", "scoring") == owner("prediction", "scoring/abc") == "fraud"
    assert owner("monitor", "scoring") == "fraud"  # the endpoint's default monitor
    assert owner("model", "default-model") == "default"
    assert owner("model", "missing") is None

    assert [m.name for m in fraud.models.list()] == ["scorer"]
    assert [m.name for m in everyone.models.list()] == ["default-model", "scorer"]
    assert [e.name for e in fraud.endpoints.list()] == ["scoring"]
    assert [e.name for e in team_yard(services, "default").endpoints.list()] == []
    assert [r.id for r in fraud.runs.search().runs] == [run.id]
    assert team_yard(services, "default").runs.search().runs == []
    assert [m["name"] for m in fraud.monitors.list()] == ["scoring"]
    assert team_yard(services, "default").monitors.list() == []
    with pytest.raises(NotFound, match="workspace 'risk' does not exist"):
        team_yard(services, "risk").models.register(model, name="x", input_example=example)


def test_nothing_is_wired_across_workspaces(services: Services) -> None:
    services.workspaces.create("fraud")
    model, example = fitted()
    fraud, default = team_yard(services, "fraud"), team_yard(services, "default")
    with fraud.start_run("fraud-exp") as run:
        run.log_metric("auc", 0.9)
    fraud.models.register(model, name="scorer", input_example=example, run_id=run.id)

    with pytest.raises(InvalidInput, match="model 'scorer' belongs to workspace 'fraud'"):
        services.endpoints.create("steal", routes=[TargetRequest.parse("scorer/1=100")])
    assert not services.endpoints.exists("steal")
    with pytest.raises(InvalidInput, match=f"run '{run.id}' belongs to workspace 'fraud'"):
        default.models.register(model, name="copycat", input_example=example, run_id=run.id)
    with pytest.raises(NotFound):
        services.catalog.get_model("copycat")  # refused before anything was stored
    with pytest.raises(InvalidInput, match="model 'scorer' belongs to workspace 'fraud'"):
        default.models.register(model, name="scorer", input_example=example)
    assert services.catalog.get_model("scorer").latest_version == 1
    with pytest.raises(InvalidInput, match="experiment 'fraud-exp' belongs to workspace 'fraud'"):
        default.start_run("fraud-exp")

    fraud.endpoints.create("scoring", routes=["scorer/1=100"])
    with pytest.raises(InvalidInput, match="endpoint 'scoring' belongs to workspace 'fraud'"):
        default.monitors.create("peek", endpoint="scoring")
    services.approvals.set_policy(1, workspace="fraud")
    assert services.approvals.policy("fraud") == 1 and services.approvals.policy() == 0
    services.catalog.transition_stage("scorer/1", "staging")
    with pytest.raises(PermissionDenied, match="approval"):
        services.catalog.transition_stage("scorer/1", "production")


def test_endpoint_keys_need_a_role_in_the_endpoints_workspace(services: Services) -> None:
    services.workspaces.create("fraud")
    model, example = fitted()
    fraud = team_yard(services, "fraud")
    fraud.models.register(model, name="scorer", input_example=example)
    fraud.endpoints.create("scoring", routes=["scorer/1=100"])
    services.identity.create_user("eve", "contributor")
    with pytest.raises(InvalidInput, match="belongs to workspace 'fraud', of which user 'eve'"):
        services.identity.create_key("eve", endpoint="scoring")
    services.identity.set_role("eve", "viewer", workspace="fraud")
    with pytest.raises(InvalidInput, match="may not predict"):
        services.identity.create_key("eve", endpoint="scoring")
    services.identity.set_role("eve", "contributor", workspace="fraud")
    record, _ = services.identity.create_key("eve", endpoint="scoring")
    assert record.endpoint == "scoring"


def test_audit_events_are_searched_by_workspace(services: Services) -> None:
    for workspace in ("fraud", "churn", "fraud", None):
        services.audit.record(
            actor="ana",
            key_id=None,
            action="POST /api/v1/experiments",
            resource="/api/v1/experiments",
            outcome="ok",
            status=201,
            client="127.0.0.1",
            summary={"workspace": workspace},
        )
    found = services.audit.events(workspace="fraud")
    assert [e.summary["workspace"] for e in found] == ["fraud", "fraud"]
    assert len(services.audit.events()) == 4
    assert services.audit.verify() == 4


def test_secrets_belong_to_a_workspace_and_only_its_monitors_use_them(
    services: Services,
) -> None:
    services.workspaces.create("fraud")
    model, example = fitted()
    fraud = team_yard(services, "fraud")
    fraud.models.register(model, name="scorer", input_example=example)
    fraud.endpoints.create("scoring", routes=["scorer/1=100"])
    default = team_yard(services, "default")
    default.models.register(model, name="mine", input_example=example)
    default.endpoints.create("own", routes=["mine/1=100"])

    secrets = services.secrets
    secrets.set("fraud-token", "s3cr3t-value", workspace="fraud")
    with pytest.raises(Conflict, match="secret 'fraud-token' belongs to workspace 'fraud'"):
        secrets.set("fraud-token", "overwrite")
    assert secrets.scoped("fraud").reveal("fraud-token") == "s3cr3t-value"
    with pytest.raises(NotFound):
        secrets.scoped("default").reveal("fraud-token")
    assert [r.name for r in secrets.names("fraud")] == ["fraud-token"]
    assert secrets.names("default") == []

    stolen = {"type": "webhook", "url": "http://127.0.0.1:9/x", "token_secret": "fraud-token"}
    with pytest.raises(InvalidInput, match="secret 'fraud-token' belongs to workspace 'fraud'"):
        services.monitors.update("own", {"alerts": {"channels": [stolen]}})
    with pytest.raises(InvalidInput, match="secret 'fraud-token' belongs to workspace 'fraud'"):
        services.monitors.create("peek", {"endpoint": "own", "alerts": {"channels": [stolen]}})
    services.monitors.update("scoring", {"alerts": {"channels": [stolen]}})  # its own: fine
    assert services.workspaces.owner("secret", "fraud-token") == "fraud"


def test_a_workspace_always_keeps_an_admin(services: Services) -> None:
    identity = services.identity
    services.workspaces.create("fraud")
    identity.create_user("root", "admin")
    identity.create_user("ana", "admin", workspace="fraud")
    identity.set_role("ana", "viewer")  # ana joins default too
    with pytest.raises(Conflict, match="without an admin"):
        identity.set_role("root", "maintainer")
    with pytest.raises(Conflict, match="without an admin"):
        identity.set_role("ana", "maintainer", workspace="fraud")
    with pytest.raises(Conflict, match="without an admin"):
        identity.remove_member("ana", "fraud")
    assert identity.get_user("ana", "fraud").role is Role.ADMIN  # nothing changed
    identity.set_role("root", "admin", workspace="fraud")
    identity.remove_member("ana", "fraud")
    assert identity.get_user("ana").workspaces == {"default": Role.VIEWER}
    identity.set_role("ana", "admin")
    identity.set_role("root", "viewer")  # another admin remains
