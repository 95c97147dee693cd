"""Approvals: maker-checker bound to the package digest, gating production and traffic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from modelyard.errors import Conflict, InvalidInput, PermissionDenied
from modelyard.store import schema as t
from tests.actors import as_user
from tests.conftest import ServerProcess
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


def register(services: Services, name: str, author: str) -> str:
    bunch = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    yard = Yard(LocalBackend(services))
    version = yard.models.register(model, name=name, input_example=bunch.data.head(2))
    with services.db.write() as conn:
        conn.execute(update(t.model_versions).values(created_by=author))
    return version.ref


def test_maker_checker_gates_production_and_traffic(services: Services) -> None:
    ref = register(services, "churn", author="bob")
    approvals, catalog, endpoints = services.approvals, services.catalog, services.endpoints
    assert approvals.status(ref).state == "not_required"
    as_user("admin", approvals.set_policy, 2)
    catalog.transition_stage(ref, "staging")

    with pytest.raises(PermissionDenied, match="needs 2 approval.*request it"):
        catalog.transition_stage(ref, "production")
    with pytest.raises(PermissionDenied, match="before taking traffic"):
        endpoints.create("churn", routes=[TargetRequest.parse(f"{ref}=100")])
    assert catalog.get_version(ref).stage.value == "staging"  # nothing changed

    with pytest.raises(InvalidInput, match="nobody requested"):
        as_user("raj", approvals.approve, ref)
    as_user("ana", approvals.request, ref, comment="beats the champion")
    with pytest.raises(PermissionDenied, match="ana requested approval"):
        as_user("ana", approvals.approve, ref)
    with pytest.raises(PermissionDenied, match="bob registered"):
        as_user("bob", approvals.approve, ref)
    assert as_user("raj", approvals.approve, ref, comment="validated").state == "pending"
    with pytest.raises(Conflict, match="already decided"):
        as_user("raj", approvals.approve, ref)
    with pytest.raises(PermissionDenied, match=r"has 1 of 2: raj"):
        catalog.transition_stage(ref, "production")
    status = as_user("kim", approvals.approve, ref, comment="checked the data")
    assert (status.state, status.approved_by, status.requested_by) == (
        "approved",
        ["kim", "raj"],
        "ana",
    )
    assert catalog.transition_stage(ref, "production").stage.value == "production"
    endpoint = endpoints.create("churn", routes=[TargetRequest.parse(f"{ref}=100")])
    assert endpoint.revision == 1
    assert [h["decision"] for h in status.history] == ["request", "approve", "approve"]


def test_rejection_blocks_until_requested_again(services: Services) -> None:
    ref = register(services, "fraud", author="bob")
    approvals = services.approvals
    approvals.set_policy(1)
    as_user("ana", approvals.request, ref)
    with pytest.raises(InvalidInput, match="needs a comment"):
        as_user("raj", approvals.reject, ref)
    assert as_user("raj", approvals.reject, ref, comment="leaks the label").state == "rejected"
    with pytest.raises(PermissionDenied, match="rejected"):
        services.endpoints.create("fraud", routes=[TargetRequest.parse(f"{ref}=100")])
    as_user("ana", approvals.request, ref, comment="label leak fixed upstream")
    assert approvals.status(ref).state == "pending"
    assert as_user("raj", approvals.approve, ref).state == "approved"


def test_an_approval_counts_only_for_the_package_it_saw(services: Services) -> None:
    ref = register(services, "churn", author="bob")
    approvals = services.approvals
    approvals.set_policy(1)
    as_user("ana", approvals.request, ref)
    as_user("raj", approvals.approve, ref)
    assert approvals.status(ref).state == "approved"
    with services.db.write() as conn:  # the version's package is no longer the approved one
        conn.execute(update(t.model_versions).values(package_digest="f" * 64))
    assert approvals.status(ref).state == "pending"
    with pytest.raises(PermissionDenied, match="has 0 of 1"):
        services.endpoints.create("churn", routes=[TargetRequest.parse(f"{ref}=100")])


def test_shadows_need_no_approval_and_policy_is_validated(services: Services) -> None:
    first, second = register(services, "m", author="bob"), None
    bunch = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    second = (
        Yard(LocalBackend(services))
        .models.register(model, name="m", input_example=bunch.data.head(2))
        .ref
    )
    services.approvals.set_policy(1)
    as_user("ana", services.approvals.request, first)
    as_user("raj", services.approvals.approve, first)
    created = services.endpoints.create(
        "m",
        routes=[TargetRequest.parse(f"{first}=100")],
        shadows=[TargetRequest.parse(second, shadow=True)],
    )
    assert [s.ref for s in created.spec.shadows] == [second]
    for bad in (-1, 11, True):
        with pytest.raises(InvalidInput, match="approvals"):
            services.approvals.set_policy(bad)  # type: ignore[arg-type]


def test_api_roles_and_the_actor_is_the_key_owner(server: ServerProcess) -> None:
    """Through a real server: contributors request, maintainers approve, never their own."""
    suffix = uuid.uuid4().hex[:8]
    admin = httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    keys = {}
    for name, role in (("maker", "contributor"), ("checker", "maintainer")):
        user = f"{name}-{suffix}"
        admin.post("/api/v1/users", json={"name": user, "role": role}).raise_for_status()
        answer = admin.post(f"/api/v1/users/{user}/keys", json={"name": "approvals"})
        keys[name] = {"Authorization": f"Bearer {answer.json()['token']}"}
    bunch = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    from modelyard.client.yard import connect

    with connect(server.url, api_key=server.admin_key) as yard:
        ref = yard.models.register(model, name=f"a{suffix}", input_example=bunch.data.head(2)).ref
    name, number = ref.split("/")
    base = f"/api/v1/models/{name}/versions/{number}"
    try:
        admin.put("/api/v1/policies/approvals", json={"required": 1}).raise_for_status()
        denied = admin.post(
            f"{base}/approvals", json={"decision": "approve"}, headers=keys["maker"]
        )
        assert denied.status_code == 403
        asked = admin.post(
            f"{base}/approval-requests", json={"comment": "go"}, headers=keys["maker"]
        )
        assert asked.status_code == 200 and asked.json()["requested_by"] == f"maker-{suffix}"
        approved = admin.post(
            f"{base}/approvals", json={"decision": "approve"}, headers=keys["checker"]
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["approved_by"] == [f"checker-{suffix}"]
        bad = admin.post(f"{base}/approvals", json={"decision": "maybe"}, headers=keys["checker"])
        assert bad.status_code == 422 and "maybe" in bad.json()["error"]["message"]
    finally:
        admin.put("/api/v1/policies/approvals", json={"required": 0}).raise_for_status()
        admin.close()


def test_a_followed_alias_moved_to_an_unapproved_version_keeps_the_old_one(
    services: Services,
) -> None:
    first = register(services, "f", author="bob")
    bunch = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    second = (
        Yard(LocalBackend(services))
        .models.register(model, name="f", input_example=bunch.data.head(2))
        .ref
    )
    services.catalog.set_alias("f", "champion", 1)
    services.endpoints.create("f", routes=[TargetRequest.parse("f@champion=100,follow")])
    services.approvals.set_policy(1)
    as_user("ana", services.approvals.request, first)
    as_user("raj", services.approvals.approve, first)
    services.catalog.set_alias("f", "champion", 2)
    ((_, _, spec),) = services.endpoints.live(["f"])
    assert [r.ref for r in spec.routes] == [first]
    as_user("ana", services.approvals.request, second)
    as_user("raj", services.approvals.approve, second)
    ((_, _, spec),) = services.endpoints.live(["f"])
    assert [r.ref for r in spec.routes] == [second]
