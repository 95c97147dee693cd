"""MLflow's own client against ``modelyard server`` (``/api/2.0/mlflow/...``).

The runs MLflow's client writes are read back through modelyard's SDK, and every change
is in the audit log as the key's user. ``mlflow`` is imported once for the module (it
is slow to import); each test points it at the session's server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard, connect
from tests.conftest import ServerProcess

API = "/api/2.0/mlflow"


@pytest.fixture
def tracking(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    """MLflow pointed at the server, with the admin's key as its token."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_key)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    yield MlflowClient(server.url)
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def yard(server: ServerProcess, tmp_path: Path) -> Iterator[Yard]:
    opened = connect(server.url, api_key=server.admin_key, home=tmp_path / "client")
    yield opened
    opened.close()


def test_mlflow_code_tracks_runs_that_modelyard_reads_back(
    tracking: MlflowClient, yard: Yard, unique: str
) -> None:
    mlflow.set_experiment(unique)  # not found (404 RESOURCE_DOES_NOT_EXIST), then created
    with mlflow.start_run(run_name="baseline") as active:
        run_id = active.info.run_id
        mlflow.log_param("C", 0.5)
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("team", "retention")
        tracking.log_batch(
            run_id,
            metrics=[
                Metric("auc", 0.81, 1_700_000_000_000, 0),
                Metric("auc", 0.86, 1_700_000_001_000, 1),
            ],
            params=[Param("model", "logreg")],
            tags=[RunTag("stage", "trial")],
        )
        with mlflow.start_run(run_name="other", nested=True):
            mlflow.log_param("C", 2.0)
            mlflow.log_metric("loss", 0.7)

    found = mlflow.search_runs(
        experiment_names=[unique],
        filter_string="metrics.loss < 0.3 and params.C = '0.5'",
        output_format="list",
    )
    assert [run.info.run_id for run in found] == [run_id]
    assert found[0].data.metrics == {"loss": 0.25, "auc": 0.86}
    history = tracking.get_metric_history(run_id, "auc")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 0.81, 1_700_000_000_000),
        (1, 0.86, 1_700_000_001_000),
    ]

    run = yard.runs.get(run_id)  # the same run, through modelyard's SDK
    assert run.status.value == "FINISHED" and run.end_time is not None
    assert run.experiment == unique and run.name == "baseline"
    assert run.params == {"C": "0.5", "model": "logreg"}
    assert run.metrics == {"loss": 0.25, "auc": 0.86}
    assert run.tags["team"] == "retention" and run.tags["stage"] == "trial"
    assert run.user == "admin"  # the key's user, not the client's OS user
    assert [p.value for p in yard.runs.history(run_id, "loss")] == [0.9, 0.5, 0.25]

    events = yard.audit.events(resource=f"runs/{run_id}")
    assert {e.action for e in events} >= {"create run", "log batch", "set run tags", "finish run"}
    assert {e.actor for e in events} == {"admin"}


def test_mlflow_errors_have_mlflow_codes(
    tracking: MlflowClient, server: ServerProcess, unique: str
) -> None:
    assert tracking.get_experiment_by_name(unique) is None
    with pytest.raises(MlflowException) as missing:
        tracking.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    experiment_id = tracking.create_experiment(unique)
    with pytest.raises(MlflowException) as clash:
        tracking.create_experiment(unique)
    assert clash.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = tracking.create_run(experiment_id)
    tracking.log_param(run.info.run_id, "C", "1")
    with pytest.raises(MlflowException) as changed:
        tracking.log_param(run.info.run_id, "C", "2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "immutable" in changed.value.message

    bad = httpx.post(
        f"{server.url}{API}/runs/log-metric",
        json={"run_id": run.info.run_id, "key": "loss", "value": "high", "timestamp": 1},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "metric 'loss' value 'high' is not a number" in bad.json()["message"]

    raw = httpx.get(
        f"{server.url}{API}/runs/get",
        params={"run_id": "nope"},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert raw.status_code == 404
    assert raw.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "run 'nope' does not exist",
    }


def test_a_call_without_a_key_is_refused_and_audited(
    tracking: MlflowClient, yard: Yard, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException) as refused:
        MlflowClient(mlflow.get_tracking_uri()).create_experiment(unique)
    assert refused.value.error_code == "UNAUTHENTICATED"
    denied = [
        e
        for e in yard.audit.events(actor="anonymous", action=f"POST {API}/experiments/create")
        if e.status == 401
    ]
    assert denied and denied[-1].outcome == "denied"
    assert unique not in {e.name for e in yard.experiments.list()}


def test_registered_models_versions_and_aliases(
    tracking: MlflowClient, yard: Yard, unique: str
) -> None:
    features = np.random.default_rng(0).normal(size=(40, 3))
    labels = (features[:, 0] > 0).astype(int)
    with yard.start_run(experiment=unique, capture_env=False) as run:
        run.log_model(LogisticRegression().fit(features, labels), name=f"{unique}-sdk")

    name = f"{unique}-mlflow"
    tracking.create_registered_model(name, tags={"team": "retention"}, description="churn")
    version = tracking.create_model_version(name, f"runs:/{run.id}/model", run_id=run.id)
    assert version.version == "1" and version.run_id == run.id
    tracking.set_registered_model_alias(name, "champion", "1")
    assert tracking.get_model_version_by_alias(name, "champion").version == "1"
    model = tracking.get_registered_model(name)
    assert model.tags == {"team": "retention"} and model.aliases == {"champion": "1"}
    assert [m.name for m in tracking.search_registered_models(f"name = '{name}'")] == [name]
    assert tracking.get_model_version(name, "1").source == f"runs/{run.id}/artifacts/model"

    ours = yard.models.version(f"{name}@champion")
    assert ours.version == 1 and ours.run_id == run.id and ours.created_by == "admin"
    tracking.delete_registered_model_alias(name, "champion")
    assert yard.models.get(name).aliases == {}
    actions = [e.action for e in yard.audit.events(resource=f"models/{name}")]
    assert actions[:1] == ["create model"] and "set alias" in actions and "delete alias" in actions

    with pytest.raises(MlflowException) as foreign:
        tracking.create_model_version(name, "s3://bucket/model")
    assert foreign.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "s3://bucket/model" in foreign.value.message


def test_the_openapi_document_names_mlflow_error_shape(server: ServerProcess) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    routes = {path: item for path, item in document["paths"].items() if path.startswith(API)}
    assert len(routes) >= 18
    for item in routes.values():
        for operation in item.values():
            for status in ("401", "403", "404"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/MlflowErrorOut")
