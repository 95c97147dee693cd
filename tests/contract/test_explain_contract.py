"""Explanations through the SDK, embedded and remote: rows, logged predictions,
feature importance, the model card and two versions compared."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.remote import RemoteBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.explanations import Importance
from modelyard.errors import InvalidInput, NotFound
from modelyard.serving.inprocess import serve_in_thread
from tests.conftest import ServerProcess
from tests.serving.models import cancer


def register_two(yard: Yard, name: str) -> None:
    """Version 1 boosted trees, version 2 a linear model, each with its training data."""
    features, target = cancer()
    boosted = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(features, target)
    linear = LogisticRegression(max_iter=5000).fit(features, target)
    for model, auc in ((boosted, 0.97), (linear, 0.99)):
        with yard.start_run(name) as run:
            run.log_dataset(features.assign(target=target), name=f"{name}-train", role="training")
            run.log_metric("auc", auc)
            run.log_model(model, name=name, input_example=features.head())


def importance_of(yard: Yard, ref: str) -> Importance:
    """The importance computed in the background after registration, once it is there."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return yard.models.importance(ref)
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def data_plane(
    yard: Yard, request: pytest.FixtureRequest, endpoint: str
) -> Iterator[tuple[str, str]]:
    """A serving data plane over the same store as ``yard``: (its URL, a key)."""
    if isinstance(yard.backend, RemoteBackend):
        server: ServerProcess = request.getfixturevalue("server")
        services: Services = bootstrap(Settings.from_env(server.home), create_if_empty=False)
        key = server.admin_key
        owned = True
    else:
        services = yard.backend.services  # type: ignore[attr-defined]
        services.identity.create_user(f"{endpoint}-caller", "admin")
        key = services.identity.create_key(f"{endpoint}-caller")[1]
        owned = False
    try:
        with serve_in_thread(services, [endpoint]) as url:
            yield url, key
    finally:
        if owned:
            services.close()


def test_rows_are_explained_by_a_version_and_by_an_endpoint(yard: Yard, unique: str) -> None:
    register_two(yard, unique)
    features, _ = cancer()
    rows = features.iloc[:2]
    by_version = yard.models.explain(f"{unique}/1", rows, top=3)
    assert (by_version.ref, by_version.method, by_version.endpoint) == (f"{unique}/1", "tree", None)
    assert by_version.features == list(features.columns)
    first = by_version.rows[0]
    assert len(first.top) == 3
    assert first.base_value + sum(first.values.values()) == pytest.approx(first.output)

    yard.endpoints.create(unique, routes=[f"{unique}/1=100"], shadows=[f"{unique}/2"])
    routed = yard.endpoints.explain(unique, rows)
    assert (routed.ref, routed.endpoint) == (f"{unique}/1", unique)
    assert routed.rows[0].values == pytest.approx(first.values)
    shadow = yard.endpoints.explain(unique, rows.to_dict(orient="records"), version=2)
    assert (shadow.ref, shadow.method) == (f"{unique}/2", "linear")
    assert shadow.rows[0].explained == "log-odds of class '1'"

    with pytest.raises(NotFound, match=f"does not serve version 3 \\(it serves {unique}/1"):
        yard.endpoints.explain(unique, rows, version=3)
    with pytest.raises(InvalidInput, match="not both"):
        yard.endpoints.explain(unique, rows, id="x")
    with pytest.raises(NotFound, match="nosuch"):
        yard.endpoints.explain(f"{unique}-nosuch", rows)


def test_a_logged_prediction_is_explained_by_the_version_that_answered_and_kept(
    yard: Yard, unique: str, request: pytest.FixtureRequest
) -> None:
    register_two(yard, unique)
    features, _ = cancer()
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    with data_plane(yard, request, unique) as (url, key):
        answer = httpx.post(
            f"{url}/endpoints/{unique}/predict",
            json={"records": features.iloc[:2].to_dict(orient="records")},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
    prediction_id = answer["ids"][1]
    yard.endpoints.update(unique, routes=[f"{unique}/2=100"])  # the endpoint moved on

    explained = yard.endpoints.explain(unique, id=prediction_id)
    assert (explained.ref, explained.prediction_id, explained.endpoint) == (
        f"{unique}/1",
        prediction_id,
        unique,
    )
    fresh = yard.models.explain(f"{unique}/1", features.iloc[1:2])
    assert explained.rows[0].values == pytest.approx(fresh.rows[0].values)
    assert explained.created_by and explained.created_at
    again = yard.endpoints.explain(unique, id=prediction_id, top=1)
    assert again == explained  # the stored answer, whatever is asked afterwards
    events = [e for e in yard.audit.events(action="explain prediction") if unique in e.resource]
    assert [e.resource for e in events] == [
        f"endpoints/{unique}/predictions/{prediction_id}/explanation"
    ]
    assert events[0].summary["after"] == {"version": f"{unique}/1", "method": "tree"}
    with pytest.raises(NotFound, match=f"endpoint '{unique}' logged no prediction 'nope'"):
        yard.endpoints.explain(unique, id="nope")

    # erasing the subject takes its stored explanation with its predictions
    yard.endpoints.set_subject_column(unique, "mean radius")
    assert yard.endpoints.erase(unique, float(features.iloc[1]["mean radius"])) == 1
    (erased,) = [e for e in yard.audit.events(action="erase subject") if unique in e.resource]
    assert erased.summary["after"]["explanations_deleted"] == 1
    with pytest.raises(NotFound, match=f"logged no prediction '{prediction_id}'"):
        yard.endpoints.explain(unique, id=prediction_id)


def test_importance_card_and_comparison(yard: Yard, unique: str) -> None:
    register_two(yard, unique)
    boosted, linear = importance_of(yard, f"{unique}/1"), importance_of(yard, f"{unique}/2")
    assert (boosted.status, boosted.method, boosted.rows) == ("ready", "tree", 200)
    assert (linear.status, linear.method) == ("ready", "linear")
    assert list(boosted.features.values()) == sorted(boosted.features.values(), reverse=True)
    assert sum(boosted.shares.values()) == pytest.approx(1.0)

    card = yard.models.card(f"{unique}/1")
    top_feature, top_value = next(iter(boosted.features.items()))
    assert "## Feature importance" in card
    assert f"| {top_feature} | {top_value:.4g} | {boosted.shares[top_feature]:.1%} |" in card

    compared = yard.models.compare(unique, 1, 2)
    assert compared["metrics"] == [
        {"metric": "auc", "a": 0.97, "b": 0.99, "change": pytest.approx(0.02)}
    ]
    assert compared["signature"] == {
        "added": [],
        "removed": [],
        "changed": [],
        "outputs_changed": False,
    }
    changes: dict[str, Any] = {row["feature"]: row for row in compared["importance"]}
    assert changes[top_feature]["a"] == pytest.approx(boosted.shares[top_feature])
    assert changes[top_feature]["rank_a"] == 1
    assert changes[top_feature]["b"] == pytest.approx(linear.shares[top_feature])
    assert compared["data"]["same"] is True
    assert compared["data"]["a"]["rows"] == len(cancer()[0])
    with pytest.raises(NotFound):
        yard.models.compare(unique, 1, 9)
