from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import Services
from modelyard.domain.runs import MetricPoint, RunStatus
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.tracking.environment import capture_environment
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path) as built:
        yield built


def test_experiments_are_unique_by_name(services: Services) -> None:
    tracking = services.tracking
    created = tracking.create_experiment("churn", "first")
    assert tracking.get_experiment("churn") == created
    with pytest.raises(Conflict, match="experiment 'churn' already exists"):
        tracking.create_experiment("churn")
    assert tracking.ensure_experiment("churn").id == created.id
    with pytest.raises(NotFound, match="experiment 'nope' does not exist"):
        tracking.get_experiment("nope")


def test_run_records_params_tags_metrics_and_latest(services: Services) -> None:
    tracking = services.tracking
    run = tracking.create_run("churn", params={"C": 0.5, "model": "lr"}, tags={"team": "a"})
    assert run.status is RunStatus.RUNNING and run.params == {"C": "0.5", "model": "lr"}
    points = [MetricPoint("loss", 1.0 / (step + 1), step, 1000 + step) for step in range(50)]
    points.append(MetricPoint("loss", 99.0, 3, 5000))  # an old step logged late is not latest
    tracking.log_batch(run.id, metrics=points, tags={"team": "b"})
    stored = tracking.get_run(run.id)
    assert stored.metrics == {"loss": pytest.approx(1 / 50)}
    assert stored.tags == {"team": "b"}
    history = tracking.metric_history(run.id, "loss")
    assert len(history) == 51 and [p.step for p in history][:4] == [0, 1, 2, 3]


def test_params_are_immutable_but_idempotent(services: Services) -> None:
    tracking = services.tracking
    run = tracking.create_run("churn", params={"C": 0.5})
    tracking.log_batch(run.id, params={"C": "0.5"})
    with pytest.raises(Conflict, match="param 'C' .* is already '0.5'"):
        tracking.log_batch(run.id, params={"C": 1.0, "new": 1})
    assert tracking.get_run(run.id).params == {"C": "0.5"}  # the failed batch left nothing


def test_finish_run_is_final(services: Services) -> None:
    tracking = services.tracking
    run = tracking.create_run("churn")
    done = tracking.finish_run(run.id, RunStatus.FAILED, "ValueError: boom")
    assert done.status is RunStatus.FAILED and done.error == "ValueError: boom"
    assert done.end_time is not None and done.duration_ms is not None
    with pytest.raises(Conflict, match="already ended as FAILED"):
        tracking.finish_run(run.id, RunStatus.FINISHED)
    with pytest.raises(Conflict, match="no longer accepts"):
        tracking.log_batch(run.id, metrics=[MetricPoint("x", 1.0)])
    with pytest.raises(InvalidInput):
        tracking.finish_run(tracking.create_run("churn").id, RunStatus.RUNNING)


def test_bad_metric_value_names_the_metric(services: Services) -> None:
    run = services.tracking.create_run("churn")
    with pytest.raises(InvalidInput, match="metric 'acc' value 'high' is not a number"):
        services.tracking.log_batch(run.id, metrics=[MetricPoint("acc", "high")])  # type: ignore[arg-type]


def test_environment_is_stored_once_per_content(services: Services) -> None:
    env = capture_environment(str(Path.cwd()))
    first = services.tracking.create_run("churn", environment=env)
    second = services.tracking.create_run("churn", environment=env)
    assert first.environment_id == second.environment_id == env.id
    stored = services.tracking.get_environment(env.id)
    assert stored.packages["numpy"] and stored.python == env.python


def test_artifacts_store_hash_and_size(services: Services) -> None:
    run = services.tracking.create_run("churn")
    payload = b"confusion matrix\n" * 1000
    artifact = services.tracking.log_artifact(run.id, "eval/cm.txt", io.BytesIO(payload))
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest() and artifact.size == len(payload)
    assert [a.path for a in services.tracking.list_artifacts(run.id)] == ["eval/cm.txt"]
    with services.tracking.open_artifact(run.id, "eval/cm.txt") as handle:
        assert handle.read() == payload
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b"):
        with pytest.raises(InvalidInput):
            services.tracking.log_artifact(run.id, bad, io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        services.tracking.open_artifact(run.id, "missing.txt")


def test_unknown_run_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound, match="run 'feedbeef' does not exist"):
        services.tracking.get_run("feedbeef")
    with pytest.raises(NotFound):
        services.tracking.log_batch("feedbeef", metrics=[MetricPoint("x", 1.0)])


def test_nan_and_infinite_metrics_are_kept(services: Services) -> None:
    run = services.tracking.create_run("churn")
    points = [MetricPoint("loss", float("nan"), 0, 1), MetricPoint("gain", float("-inf"), 0, 1)]
    services.tracking.log_batch(run.id, metrics=points)
    stored = services.tracking.get_run(run.id)
    assert math.isnan(stored.metrics["loss"]) and stored.metrics["gain"] == -math.inf
    assert math.isnan(services.tracking.metric_history(run.id, "loss")[0].value)


def test_out_of_range_steps_are_refused_by_name(services: Services) -> None:
    run = services.tracking.create_run("churn")
    with pytest.raises(InvalidInput, match="metric 'loss' step 1180591620717411303424"):
        services.tracking.log_batch(run.id, metrics=[MetricPoint("loss", 1.0, 2**70, 1)])
    assert services.tracking.metric_history(run.id, "loss") == []
