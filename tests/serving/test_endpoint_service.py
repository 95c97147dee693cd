"""The control plane on SQLite and PostgreSQL: revisions, followed aliases, racing changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from modelyard.errors import Conflict
from tests.actors import as_user
from tests.serving.models import cancer, classifier
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path) as services:
        yard = Yard(LocalBackend(services))
        features, _ = cancer()
        for c in (1.0, 0.1, 0.01):
            yard.models.register(classifier(c), name="cancer", input_example=features.head())
        yard.models.set_alias("cancer", "champion", 1)
        yield services


def parse(*texts: str) -> list[TargetRequest]:
    return [TargetRequest.parse(t) for t in texts]


def test_live_resolves_followed_aliases_and_keeps_pinned_ones(store: Services) -> None:
    endpoints = store.endpoints
    as_user("ana", endpoints.create, "pinned", routes=parse("cancer@champion=100"))
    as_user("ana", endpoints.create, "follows", routes=parse("cancer@champion=100,follow"))
    store.catalog.set_alias("cancer", "champion", 3)
    live = {name: (revision, spec) for name, revision, spec in endpoints.live()}
    assert live["pinned"][1].routes[0].version == 1
    assert live["follows"][1].routes[0].version == 3
    assert live["follows"][0] == 1  # moving an alias is not a new revision
    assert [name for name, _, _ in endpoints.live(["pinned"])] == ["pinned"]


def test_revision_at_answers_what_served_when(store: Services) -> None:
    endpoints = store.endpoints
    first = endpoints.create("timeline", routes=parse("cancer/1=100"))
    as_user("bo", endpoints.update, "timeline", routes=parse("cancer/2=100"), comment="swap")
    revisions = endpoints.revisions("timeline")
    assert [r.revision for r in revisions] == [1, 2]
    assert revisions[1].created_by == "bo" and revisions[1].comment == "swap"
    assert revisions[1].changes["routes"] == {
        "before": {"cancer/1": 100},
        "after": {"cancer/2": 100},
    }
    assert endpoints.revision_at("timeline", first.created_at - 1) is None
    found = endpoints.revision_at("timeline", revisions[1].created_at)
    assert found is not None and found.revision == 2


def test_racing_changes_never_share_a_revision_number(store: Services) -> None:
    endpoints = store.endpoints
    endpoints.create("race", routes=parse("cancer/1=100"))
    outcomes: list[str] = []

    def change(version: int) -> None:
        for _ in range(5):
            try:
                endpoints.update("race", routes=parse(f"cancer/{version}=100"))
                outcomes.append("ok")
            except Conflict as exc:
                outcomes.append(exc.message)
            except Exception as exc:  # an update equal to the current one is InvalidInput
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=change, args=(v,)) for v in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = [r.revision for r in endpoints.revisions("race")]
    assert numbers == list(range(1, len(numbers) + 1))
    assert endpoints.get("race").revision == numbers[-1]
    assert outcomes.count("ok") == len(numbers) - 1


def test_versions_are_found_by_the_sensitivity_of_their_data(store: Services) -> None:
    yard = Yard(LocalBackend(store))
    features, target = cancer()
    with yard.start_run("sensitive") as run:
        run.log_dataset(features.assign(target=target), name="patients", role="training")
        version = run.log_model(classifier(), name="sensitive", input_example=features.head())
    yard.datasets.classify("patients", ["pii"])
    assert [v.ref for v in yard.models.versions(sensitivity="pii")] == [version.ref]
    assert yard.models.versions(sensitivity="confidential") == []
