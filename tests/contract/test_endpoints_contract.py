"""One endpoints (serving control plane) suite, run against the embedded and the remote backend."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from modelyard.domain.endpoints import Endpoint, Target
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.serving.journal import COLUMNS, Journal, record_line
from modelyard.serving.predictlog import LabelResult
from tests.audit_trail import changes, me, trail

Iris = tuple[pd.DataFrame, pd.Series, LogisticRegression]


@pytest.fixture(scope="module")
def iris() -> Iris:
    bunch = load_iris(as_frame=True)
    features = bunch.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=1000).fit(features, bunch.target)
    return features, bunch.target, model


class Constant:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), 7)


@pytest.fixture
def model(yard: Yard, unique: str, iris: Iris) -> str:
    """A model named ``unique`` with three versions of the same signature."""
    features, _, fitted = iris
    for _ in range(3):
        yard.models.register(fitted, name=unique, input_example=features.head(3))
    return unique


def routes_of(endpoint: Endpoint) -> list[tuple[str, int, int, str | None, bool]]:
    return [(r.model, r.version, r.weight, r.alias, r.follow) for r in endpoint.spec.routes]


def refs(targets: list[Target]) -> list[str]:
    return [t.ref for t in targets]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- create, update, revisions, rollback -----------------------------------


def test_create_with_a_split(yard: Yard, unique: str, model: str) -> None:
    created = yard.endpoints.create(
        unique, routes=[f"{model}/1=90", f"{model}/2=10"], description="churn", comment="first"
    )
    assert created.name == unique and created.revision == 1
    assert created.description == "churn"
    assert routes_of(created) == [(model, 1, 90, None, False), (model, 2, 10, None, False)]
    assert created.spec.shadows == []
    assert created.spec.batching.max_batch_size == 64
    assert created.created_by
    assert yard.endpoints.get(unique) == created
    assert [e for e in yard.endpoints.list() if e.name == unique] == [created]


def test_create_from_dicts_with_shadow_and_batching(yard: Yard, unique: str, model: str) -> None:
    created = yard.endpoints.create(
        unique,
        routes=[{"model": model, "version": 2, "weight": 100}],
        shadows=[{"model": model, "version": 3}],
        batching={"max_batch_size": 8, "max_wait_ms": 5},
    )
    assert routes_of(created) == [(model, 2, 100, None, False)]
    assert refs(created.spec.shadows) == [f"{model}/3"]
    assert created.spec.shadows[0].weight == 0
    assert (created.spec.batching.max_batch_size, created.spec.batching.max_wait_ms) == (8, 5.0)


def test_alias_route_resolves_to_the_concrete_version(yard: Yard, unique: str, model: str) -> None:
    yard.models.set_alias(model, "champion", 2)
    created = yard.endpoints.create(unique, routes=[f"{model}@champion=100"])
    assert routes_of(created) == [(model, 2, 100, "champion", False)]
    assert created.spec.routes[0].describe() == f"{model}/2 (via @champion)"

    # a pinned alias route keeps the version it named when the revision was made
    yard.models.set_alias(model, "champion", 1)
    assert routes_of(yard.endpoints.get(unique)) == [(model, 2, 100, "champion", False)]

    followed = yard.endpoints.update(unique, routes=[f"{model}@champion=100,follow"])
    assert followed.revision == 2
    assert routes_of(followed) == [(model, 1, 100, "champion", True)]
    assert list(yard.endpoints.revisions(unique)[-1].changes) == ["routes"]

    yard.models.set_alias(model, "challenger", 3)
    shadowed = yard.endpoints.update(unique, shadows=[f"{model}@challenger,follow"])
    assert shadowed.revision == 3 and shadowed.spec.routes == followed.spec.routes
    assert [(s.ref, s.alias, s.follow) for s in shadowed.spec.shadows] == [
        (f"{model}/3", "challenger", True)
    ]


def test_unknown_alias_is_not_found(yard: Yard, unique: str, model: str) -> None:
    with pytest.raises(NotFound, match="has no alias 'nobody'"):
        yard.endpoints.create(unique, routes=[f"{model}@nobody=100"])
    with pytest.raises(NotFound, match=f"endpoint '{unique}' does not exist"):
        yard.endpoints.get(unique)


def test_update_keeps_what_was_not_given(yard: Yard, unique: str, model: str) -> None:
    yard.endpoints.create(
        unique, routes=[f"{model}/1=100"], shadows=[f"{model}/3"], batching={"max_batch_size": 8}
    )
    canary = yard.endpoints.update(
        unique, routes=[f"{model}/1=90", f"{model}/2=10"], comment="canary"
    )
    assert canary.revision == 2
    assert routes_of(canary) == [(model, 1, 90, None, False), (model, 2, 10, None, False)]
    assert refs(canary.spec.shadows) == [f"{model}/3"]
    assert canary.spec.batching.max_batch_size == 8

    unshadowed = yard.endpoints.update(unique, shadows=[])
    assert unshadowed.revision == 3
    assert unshadowed.spec.shadows == [] and unshadowed.spec.routes == canary.spec.routes

    batched = yard.endpoints.update(unique, batching={"max_batch_size": 16})
    assert batched.revision == 4
    assert batched.spec.batching.max_batch_size == 16
    assert batched.spec.routes == canary.spec.routes and batched.spec.shadows == []

    described = yard.endpoints.update(unique, description="now documented")
    assert described.revision == 5 and described.description == "now documented"
    assert described.spec == batched.spec
    assert yard.endpoints.get(unique) == described


def test_revisions_list_who_when_and_what_changed(
    yard: Yard, unique: str, model: str, request: pytest.FixtureRequest
) -> None:
    before = now_ms()
    yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/3"], comment="go")
    yard.endpoints.update(unique, routes=[f"{model}/1=90", f"{model}/2=10"], comment="canary")
    yard.endpoints.update(unique, shadows=[])
    yard.endpoints.update(unique, batching={"max_wait_ms": 2})
    after = now_ms()

    revisions = yard.endpoints.revisions(unique)
    assert [r.revision for r in revisions] == [1, 2, 3, 4]
    assert [r.comment for r in revisions] == ["go", "canary", "", ""]
    assert all(r.endpoint == unique for r in revisions)
    assert {r.created_by for r in revisions} == {me(request)}
    assert yard.endpoints.get(unique).created_by == me(request)
    stamps = [r.created_at for r in revisions]
    assert stamps == sorted(stamps)
    assert before - 1000 <= stamps[0] and stamps[-1] <= after + 1000

    assert set(revisions[0].changes) == {"routes", "shadows", "batching"}
    assert revisions[0].changes["routes"] == {"before": {}, "after": {f"{model}/1": 100}}
    assert revisions[1].changes == {
        "routes": {
            "before": {f"{model}/1": 100},
            "after": {f"{model}/1": 90, f"{model}/2": 10},
        }
    }
    assert revisions[2].changes == {"shadows": {"before": [f"{model}/3"], "after": []}}
    assert list(revisions[3].changes) == ["batching"]
    assert revisions[3].changes["batching"]["after"]["max_wait_ms"] == 2
    assert refs(revisions[1].spec.routes) == [f"{model}/1", f"{model}/2"]

    # at(): the revision current at a moment
    assert yard.endpoints.at(unique, 0) is None
    assert yard.endpoints.at(unique, stamps[1]) in revisions[1:]
    latest = yard.endpoints.at(unique, datetime.now())
    assert latest is not None and latest.revision == 4
    at_none = yard.endpoints.at(unique, None)
    assert at_none is not None and at_none.revision == 4

    # one audit event per revision, the same embedded and remote
    events = trail(request, yard, f"endpoints/{unique}")
    assert (
        changes(events)
        == [("create endpoint", f"endpoints/{unique}")]
        + [("change endpoint", f"endpoints/{unique}")] * 3
    )
    assert {(e["actor"], e["outcome"]) for e in events} == {(me(request), "ok")}
    assert [e["summary"]["after"]["changes"] for e in events] == [r.changes for r in revisions]
    assert [e["summary"]["after"]["comment"] for e in events] == ["go", "canary", "", ""]
    assert "before" not in events[0]["summary"]
    assert events[1]["summary"]["before"] == {
        "revision": 1,
        "routes": {f"{model}/1": 100},
        "shadows": [f"{model}/3"],
        "batching": events[0]["summary"]["after"]["batching"],
    }
    assert events[1]["summary"]["after"]["routes"] == {f"{model}/1": 90, f"{model}/2": 10}


def test_rollback_makes_a_new_revision_with_the_old_spec(
    yard: Yard, unique: str, model: str, request: pytest.FixtureRequest
) -> None:
    first = yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{model}/2=10"])
    second = yard.endpoints.update(unique, routes=[f"{model}/2=100"], shadows=[f"{model}/3"])

    back = yard.endpoints.rollback(unique)
    assert back.revision == 3
    assert back.spec == first.spec
    last = yard.endpoints.revisions(unique)[-1]
    assert (last.revision, last.comment) == (3, "rollback to revision 1")
    assert last.changes["rollback_to"] == 1
    assert set(last.changes) == {"routes", "shadows", "rollback_to"}

    again = yard.endpoints.rollback(unique, to=2, comment="B after all")
    assert again.revision == 4 and again.spec == second.spec
    last = yard.endpoints.revisions(unique)[-1]
    assert (last.comment, last.changes["rollback_to"]) == ("B after all", 2)

    once_more = yard.endpoints.rollback(unique, to=1)
    assert once_more.revision == 5 and once_more.spec == first.spec
    assert [r.revision for r in yard.endpoints.revisions(unique)] == [1, 2, 3, 4, 5]
    rollbacks = trail(request, yard, f"endpoints/{unique}")[2:]
    assert changes(rollbacks) == [("rollback endpoint", f"endpoints/{unique}")] * 3
    assert [
        (e["summary"]["before"]["revision"], e["summary"]["after"]["revision"]) for e in rollbacks
    ] == [(2, 3), (3, 4), (4, 5)]
    assert [e["summary"]["after"]["changes"]["rollback_to"] for e in rollbacks] == [1, 2, 1]


def test_rollback_refusals(yard: Yard, unique: str, model: str) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(Conflict, match=f"endpoint '{unique}' has no revision before 1"):
        yard.endpoints.rollback(unique)
    with pytest.raises(
        NotFound, match=f"endpoint '{unique}' has no revision 0 \\(revisions 1 to 1"
    ):
        yard.endpoints.rollback(unique, to=0)
    yard.endpoints.update(unique, routes=[f"{model}/2=100"])
    with pytest.raises(InvalidInput, match=f"endpoint '{unique}' is already at revision 2"):
        yard.endpoints.rollback(unique, to=2)
    with pytest.raises(NotFound, match=f"endpoint '{unique}' has no revision 9"):
        yard.endpoints.rollback(unique, to=9)
    yard.endpoints.update(unique, routes=[f"{model}/1=100"])
    with pytest.raises(InvalidInput, match="serves what revision 3 serves already"):
        yard.endpoints.rollback(unique, to=1)
    yard.endpoints.rollback(unique)

    # the old spec is checked again: an archived version cannot come back
    yard.models.transition(f"{model}/1", "archived")
    with pytest.raises(Conflict, match=f"{model}/1 is archived"):
        yard.endpoints.rollback(unique)
    current = yard.endpoints.get(unique)
    assert current.revision == 4 and refs(current.spec.routes) == [f"{model}/2"]
    assert len(yard.endpoints.revisions(unique)) == 4


# -- refused changes: same class and message on both backends --------------


def test_weights_must_add_up_to_100(yard: Yard, unique: str, model: str) -> None:
    with pytest.raises(InvalidInput, match=r"route weights must add up to 100, got 90 \+ 20 = 110"):
        yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{model}/2=20"])
    with pytest.raises(InvalidInput, match=r"got 50 = 50"):
        yard.endpoints.create(unique, routes=[f"{model}/1=50"])
    with pytest.raises(InvalidInput, match="at least one route"):
        yard.endpoints.create(unique, routes=[])
    with pytest.raises(NotFound):
        yard.endpoints.get(unique)  # nothing was created


def test_unknown_version_or_model(yard: Yard, unique: str, model: str) -> None:
    with pytest.raises(NotFound, match=rf"model '{model}' has no version 7 \(latest is 3\)"):
        yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{model}/7=10"])
    with pytest.raises(NotFound, match=f"{unique}-nope"):
        yard.endpoints.create(unique, routes=[f"{unique}-nope/1=100"])
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(NotFound, match="has no version 7"):
        yard.endpoints.update(unique, shadows=[f"{model}/7"])
    assert yard.endpoints.get(unique).revision == 1


def test_archived_version_is_refused(yard: Yard, unique: str, model: str) -> None:
    yard.models.transition(f"{model}/2", "archived")
    with pytest.raises(Conflict, match=f"{model}/2 is archived and cannot receive traffic"):
        yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{model}/2=10"])
    with pytest.raises(Conflict, match=f"{model}/2 is archived"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2"])
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(Conflict, match=f"{model}/2 is archived"):
        yard.endpoints.update(unique, routes=[f"{model}/2=100"])
    assert yard.endpoints.get(unique).revision == 1


def test_incompatible_signatures(yard: Yard, unique: str, model: str, iris: Iris) -> None:
    features, target, _ = iris
    other = f"{unique}-other"
    yard.models.register(Constant(), name=other, input_example={"x": [1.0]})
    with pytest.raises(InvalidInput, match=rf"primary {other}/1 needs column 'x'.*not compatible"):
        yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{other}/1=10"])
    with pytest.raises(InvalidInput, match=rf"shadow {other}/1 .*not compatible"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{other}/1"])

    typed = f"{unique}-typed"
    yard.models.register(Constant(), name=typed, input_example={"sepal_length": ["long"]})
    with pytest.raises(InvalidInput, match="reads column 'sepal_length' as .*not compatible"):
        yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{typed}/1=10"])

    # a version that needs fewer columns can read the requests; the other way round it cannot
    narrow = f"{unique}-narrow"
    subset = features[["sepal_length", "petal_length"]]
    yard.models.register(
        LogisticRegression(max_iter=1000).fit(subset, target),
        name=narrow,
        input_example=subset.head(3),
    )
    with pytest.raises(InvalidInput, match="needs column 'sepal_width'.*not compatible"):
        yard.endpoints.create(unique, routes=[f"{narrow}/1=90", f"{model}/1=10"])
    created = yard.endpoints.create(unique, routes=[f"{model}/1=90", f"{narrow}/1=10"])
    assert created.revision == 1

    with pytest.raises(InvalidInput, match="not compatible"):
        yard.endpoints.update(unique, shadows=[f"{other}/1"])
    assert yard.endpoints.get(unique) == created


def test_a_version_without_signature_is_refused(yard: Yard, unique: str, model: str) -> None:
    bare = f"{unique}-bare"
    yard.models.register(Constant(), name=bare)
    with pytest.raises(InvalidInput, match=f"{bare}/1 has no signature"):
        yard.endpoints.create(unique, routes=[f"{bare}/1=100"])
    with pytest.raises(InvalidInput, match=f"{bare}/1 has no signature"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{bare}/1"])


def test_a_version_cannot_be_route_and_shadow(yard: Yard, unique: str, model: str) -> None:
    with pytest.raises(InvalidInput, match="a version cannot be both a route and a shadow"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/1"])
    yard.models.set_alias(model, "champion", 1)
    with pytest.raises(InvalidInput, match="both a route and a shadow"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}@champion"])
    with pytest.raises(InvalidInput, match=f"{model}/1 is listed twice as a primary"):
        yard.endpoints.create(unique, routes=[f"{model}/1=50", f"{model}/1=50"])
    with pytest.raises(InvalidInput, match=f"{model}/2 is listed twice as a shadow"):
        yard.endpoints.create(
            unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2", f"{model}/2"]
        )
    yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2"])
    with pytest.raises(InvalidInput, match="both a route and a shadow"):
        yard.endpoints.update(unique, routes=[f"{model}/2=100"])
    assert yard.endpoints.get(unique).revision == 1


def test_duplicate_and_invalid_names(yard: Yard, unique: str, model: str) -> None:
    created = yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(Conflict, match=f"endpoint '{unique}' already exists"):
        yard.endpoints.create(unique, routes=[f"{model}/2=100"])
    assert yard.endpoints.get(unique) == created
    for bad in ("Churn", "-churn", "churn_v2", "a" * 64, ""):
        with pytest.raises(InvalidInput, match="invalid endpoint name"):
            yard.endpoints.create(bad, routes=[f"{model}/1=100"])


def test_bad_route_syntax(yard: Yard, unique: str, model: str) -> None:
    with pytest.raises(InvalidInput, match="expected MODEL/VERSION=WEIGHT"):
        yard.endpoints.create(unique, routes=[f"{model}/1"])
    with pytest.raises(InvalidInput, match="only an alias route can follow"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100,follow"])
    with pytest.raises(InvalidInput, match="a shadow has no weight"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2=10"])
    with pytest.raises(InvalidInput, match="give exactly one of 'version' or 'alias'"):
        yard.endpoints.create(unique, routes=[{"model": model, "weight": 100}])
    with pytest.raises(InvalidInput, match="max_batch_size must be between 1 and"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], batching={"max_batch_size": 0})
    with pytest.raises(InvalidInput, match="unknown batching setting"):
        yard.endpoints.create(unique, routes=[f"{model}/1=100"], batching={"size": 2})
    with pytest.raises(NotFound):
        yard.endpoints.get(unique)


def test_update_to_the_current_spec_is_refused(yard: Yard, unique: str, model: str) -> None:
    created = yard.endpoints.create(
        unique, routes=[f"{model}/1=90", f"{model}/2=10"], shadows=[f"{model}/3"]
    )
    with pytest.raises(
        InvalidInput, match=f"endpoint '{unique}' already serves this at revision 1"
    ):
        yard.endpoints.update(unique, routes=[f"{model}/1=90", f"{model}/2=10"])
    with pytest.raises(InvalidInput, match="already serves this at revision 1"):
        yard.endpoints.update(unique, shadows=[f"{model}/3"], comment="no-op")
    with pytest.raises(InvalidInput, match="already serves this"):
        yard.endpoints.update(unique)
    assert yard.endpoints.get(unique) == created
    assert len(yard.endpoints.revisions(unique)) == 1


def test_refused_changes_leave_the_current_revision(yard: Yard, unique: str, model: str) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    current = yard.endpoints.update(unique, routes=[f"{model}/1=90", f"{model}/2=10"])
    yard.models.transition(f"{model}/3", "archived")
    refused = [
        (InvalidInput, {"routes": [f"{model}/1=50", f"{model}/2=20"]}),
        (NotFound, {"routes": [f"{model}/9=100"]}),
        (Conflict, {"routes": [f"{model}/3=100"]}),
        (InvalidInput, {"shadows": [f"{model}/2"]}),
        (InvalidInput, {"routes": [f"{model}/1=90", f"{model}/2=10"]}),
    ]
    for error, change in refused:
        with pytest.raises(error):
            yard.endpoints.update(unique, **change)  # type: ignore[arg-type]
        assert yard.endpoints.get(unique) == current
    assert [r.revision for r in yard.endpoints.revisions(unique)] == [1, 2]
    assert yard.endpoints.update(unique, routes=[f"{model}/2=100"]).revision == 3


def test_unknown_endpoint_is_not_found(yard: Yard, unique: str, model: str) -> None:
    missing = f"endpoint '{unique}' does not exist"
    calls: list[Callable[[], object]] = [
        lambda: yard.endpoints.get(unique),
        lambda: yard.endpoints.update(unique, routes=[f"{model}/1=100"]),
        lambda: yard.endpoints.rollback(unique),
        lambda: yard.endpoints.revisions(unique),
        lambda: yard.endpoints.predictions(unique),
        lambda: yard.endpoints.label(unique, {"a": 1}),
        lambda: yard.endpoints.accuracy(unique),
        lambda: yard.endpoints.compare(unique),
    ]
    for call in calls:
        with pytest.raises(NotFound, match=missing):
            call()
    assert unique not in [e.name for e in yard.endpoints.list()]


# -- the evidence an endpoint keeps ----------------------------------------


def test_a_new_endpoint_has_no_evidence(
    yard: Yard, unique: str, model: str, request: pytest.FixtureRequest
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    frame = yard.endpoints.predictions(unique)
    assert frame.empty
    assert list(frame.columns) == [*COLUMNS, "label", "labelled_at"]
    assert yard.endpoints.predictions(unique, version=1, role="primary").empty

    result = yard.endpoints.label(unique, {"nope": 1, "nada": "cat"})
    assert result == LabelResult(recorded=0, unknown=["nope", "nada"])
    as_frame = pd.DataFrame({"id": ["x1", "x2", "x1"], "label": [0, 1, 1]})
    assert yard.endpoints.label(unique, as_frame) == LabelResult(0, ["x1", "x2"])
    assert yard.endpoints.label(unique, [("p", 1)]).unknown == ["p"]
    posted = trail(request, yard, f"endpoints/{unique}/labels")
    assert changes(posted) == [("post labels", f"endpoints/{unique}/labels")] * 3
    assert [e["summary"]["after"] for e in posted] == [
        {"recorded": 0, "unknown": 2},
        {"recorded": 0, "unknown": 2},
        {"recorded": 0, "unknown": 1},
    ]

    accuracy = yard.endpoints.accuracy(unique)
    assert accuracy.empty
    assert list(accuracy.columns) == [
        "model",
        "version",
        "role",
        "predictions",
        "labelled",
        "accuracy",
    ]
    for compared in (yard.endpoints.compare(unique), yard.endpoints.compare(unique, since=0)):
        assert isinstance(compared, pd.DataFrame) and compared.empty  # tabular: a frame
        assert list(compared.columns) == [
            "model",
            "version",
            "role",
            "requests",
            "errors",
            "agreement",
            "latency_p50_ms",
            "latency_p99_ms",
            "labelled",
            "accuracy",
            "outputs",
        ]
    assert yard.endpoints.compare(unique, since=0, until=now_ms()).empty


def test_label_refusals(yard: Yard, unique: str, model: str) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(InvalidInput, match="no labels given"):
        yard.endpoints.label(unique, {})
    with pytest.raises(InvalidInput, match="missing: label"):
        yard.endpoints.label(unique, pd.DataFrame({"id": ["a"]}))
    with pytest.raises(InvalidInput, match="role must be one of primary, shadow, batch"):
        yard.endpoints.predictions(unique, role="canary")


@pytest.fixture
def log_root(request: pytest.FixtureRequest, home: Path) -> Path:
    """Where the yard under test keeps its prediction log (the server's home when remote)."""
    if request.node.callspec.params["yard"] == "embedded":
        return home / "predictions"
    return Path(request.getfixturevalue("server").home) / "predictions"


def write_traffic(root: Path, endpoint: str, model: str) -> int:
    """Three requests answered by ``model/1`` (primary) and ``model/2`` (shadow)."""
    stamp = now_ms()
    answers = {"r1": (0, 0), "r2": (1, 1), "r3": (1, 0)}
    journal = Journal(root / endpoint)
    lines = b""
    for n, (prediction_id, (primary, shadow)) in enumerate(answers.items()):
        for role, version, output in (("primary", 1, primary), ("shadow", 2, shadow)):
            lines += record_line(
                id=prediction_id,
                endpoint=endpoint,
                revision=1,
                model=model,
                version=version,
                role=role,
                ts=stamp + n,
                latency_ms=1.0 + n,
                input=b'{"sepal_length": 5.1}',
                output=str(output).encode(),
                scores=None,
            )
    journal.append(lines)
    journal.close()
    return stamp


def test_labels_accuracy_and_compare_over_logged_traffic(
    yard: Yard, unique: str, model: str, log_root: Path
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2"])
    stamp = write_traffic(log_root, unique, model)

    frame = yard.endpoints.predictions(unique)
    assert list(zip(frame["id"], frame["role"], strict=True)) == [
        ("r1", "primary"),
        ("r1", "shadow"),
        ("r2", "primary"),
        ("r2", "shadow"),
        ("r3", "primary"),
        ("r3", "shadow"),
    ]
    assert frame["label"].isna().all()
    assert list(yard.endpoints.predictions(unique, role="shadow")["version"]) == [2, 2, 2]
    assert list(yard.endpoints.predictions(unique, ids=["r2"])["role"]) == ["primary", "shadow"]
    assert list(yard.endpoints.predictions(unique, since=stamp + 2)["id"]) == ["r3", "r3"]
    assert len(yard.endpoints.predictions(unique, limit=3)) == 3
    latest = yard.endpoints.predictions(unique, role="primary", limit=2, newest_first=True)
    assert list(latest["id"]) == ["r3", "r2"]

    result = yard.endpoints.label(unique, {"r1": 0, "r2": 0.0, "r3": 1, "ghost": 1})
    assert result == LabelResult(recorded=3, unknown=["ghost"])
    labelled = yard.endpoints.predictions(unique, role="primary")
    assert list(labelled["label"]) == ["0", "0", "1"]

    accuracy = yard.endpoints.accuracy(unique).set_index("role")
    assert list(accuracy["version"]) == [1, 2]
    assert list(accuracy["predictions"]) == [3, 3] and list(accuracy["labelled"]) == [3, 3]
    assert accuracy.loc["primary", "accuracy"] == pytest.approx(2 / 3)
    assert accuracy.loc["shadow", "accuracy"] == pytest.approx(1 / 3)

    compared = yard.endpoints.compare(unique).set_index("role").to_dict(orient="index")
    assert pd.isna(compared["primary"]["agreement"])
    assert compared["shadow"]["agreement"] == pytest.approx(2 / 3)
    assert compared["shadow"]["requests"] == 3 and compared["shadow"]["errors"] == 0
    assert compared["primary"]["outputs"] == [
        {"value": 1, "share": 0.6667},
        {"value": 0, "share": 0.3333},
    ]

    # the newest label of an id wins
    assert yard.endpoints.label(unique, [("r2", 1)]).recorded == 1
    newest = yard.endpoints.accuracy(unique).set_index("role")
    assert newest.loc["primary", "accuracy"] == pytest.approx(1.0)
    assert yard.endpoints.accuracy(unique, since=stamp + 100).empty


# -- regressions ------------------------------------------------------------


def test_a_partial_batching_update_keeps_the_other_setting(
    yard: Yard, unique: str, model: str
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"], batching={"max_batch_size": 8})
    updated = yard.endpoints.update(unique, batching={"max_wait_ms": 2})
    assert (updated.spec.batching.max_batch_size, updated.spec.batching.max_wait_ms) == (8, 2.0)


def test_labels_may_be_numpy_values(
    yard: Yard, unique: str, model: str, log_root: Path, request: pytest.FixtureRequest
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"], shadows=[f"{model}/2"])
    write_traffic(log_root, unique, model)
    labels = dict(zip(["r1", "r2", "r3"], np.array([0, 1, 1]), strict=True))
    assert yard.endpoints.label(unique, labels) == LabelResult(recorded=3, unknown=[])


def test_predictions_without_limit_returns_every_row(
    yard: Yard, unique: str, model: str, log_root: Path, request: pytest.FixtureRequest
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    stamp = now_ms()
    journal = Journal(log_root / unique)
    journal.append(
        b"".join(
            record_line(
                id=f"p{n}",
                endpoint=unique,
                revision=1,
                model=model,
                version=1,
                role="primary",
                ts=stamp,
                latency_ms=1.0,
                input=b"{}",
                output=b"0",
                scores=None,
            )
            for n in range(10_010)
        )
    )
    journal.close()
    assert len(yard.endpoints.predictions(unique, limit=None)) == 10_010


def test_retention_policy_is_checked_and_applied(
    yard: Yard, unique: str, model: str, request: pytest.FixtureRequest
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(InvalidInput, match="keeps its predictions forever: set a retention"):
        yard.endpoints.prune(unique)
    for bad in (0, 40_000):
        with pytest.raises(InvalidInput, match="retention must be 1 to 36500 days"):
            yard.endpoints.set_retention(unique, bad)
    assert yard.endpoints.set_retention(unique, 30).retention_days == 30
    assert yard.endpoints.get(unique).retention_days == 30
    assert yard.endpoints.prune(unique) == 0
    assert yard.endpoints.set_retention(unique, None).retention_days is None
    with pytest.raises(NotFound, match="endpoint 'nowhere' does not exist"):
        yard.endpoints.set_retention("nowhere", 3)
    events = trail(request, yard, f"endpoints/{unique}")[1:]  # refusals record nothing here
    assert changes(events) == [
        ("set retention", f"endpoints/{unique}"),
        ("prune predictions", f"endpoints/{unique}/predictions"),
        ("set retention", f"endpoints/{unique}"),
    ]
    assert [e["summary"].get("before") for e in events] == [
        {"retention_days": None},
        None,
        {"retention_days": 30},
    ]
    assert events[1]["summary"]["after"]["deleted"] == 0
    assert events[1]["summary"]["after"]["retention_days"] == 30
    assert events[2]["summary"]["after"] == {"retention_days": None}


def test_subject_column_and_erasure_are_checked(
    yard: Yard, unique: str, model: str, request: pytest.FixtureRequest
) -> None:
    yard.endpoints.create(unique, routes=[f"{model}/1=100"])
    with pytest.raises(InvalidInput, match="has no subject column"):
        yard.endpoints.erase(unique, "c1")
    with pytest.raises(InvalidInput, match="invalid subject column 'a\\\"b'"):
        yard.endpoints.set_subject_column(unique, 'a"b')
    assert yard.endpoints.set_subject_column(unique, "customer_id").subject_column == "customer_id"
    assert yard.endpoints.erase(unique, "c1") == 0
    assert yard.endpoints.set_subject_column(unique, None).subject_column is None
    events = trail(request, yard, f"endpoints/{unique}")[1:]
    assert changes(events) == [
        ("set subject column", f"endpoints/{unique}"),
        ("erase subject", f"endpoints/{unique}/predictions"),
        ("set subject column", f"endpoints/{unique}"),
    ]
    erased = events[1]["summary"]["after"]
    assert (erased["column"], erased["deleted"]) == ("customer_id", 0)
    assert set(erased) == {"column", "subject_sha256", "deleted"}  # a digest, never the subject
    assert erased["subject_sha256"] == hashlib.sha256(b"c1").hexdigest()
    assert events[2]["summary"]["before"] == {"subject_column": "customer_id"}
