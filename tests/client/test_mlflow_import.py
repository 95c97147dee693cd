"""``modelyard import mlflow``: a real MLflow store (SQLite + a local artifact folder),
written by MLflow's own client, copied into an embedded yard.

MLflow is imported once for the module and the store is written once (both are slow).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from modelyard.client.mlflow_import import (
    MISSING_TAG,
    RUN_ID_TAG,
    import_mlflow,
    import_mlflow_model,
)
from modelyard.client.yard import Yard
from modelyard.domain.actors import current_actor
from modelyard.errors import NotFound, SignatureError
from tests.cli.test_cli import invoke
from tests.conftest import embedded_yard

pytestmark = pytest.mark.filterwarnings("ignore:::mlflow")


@dataclass
class Store:
    uri: str
    kept: str  # the run whose artifacts are all there
    lost: str  # the run whose logged model's files were deleted
    other: str  # a run of the second experiment
    frame: pd.DataFrame
    model: LogisticRegression


def _frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 60), "spend": rng.normal(size=60)})
    return frame, (frame["spend"] > 0).astype(int)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    churn = client.create_experiment("churn", artifact_location=str(root / "artifacts"))
    other = client.create_experiment("other", artifact_location=str(root / "artifacts"))
    frame, labels = _frame()
    model = LogisticRegression().fit(frame, labels)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=churn, run_name="kept") as kept:
            mlflow.log_params({"C": "1.0", "solver": "lbfgs"})
            for step, (loss, stamp) in enumerate(
                [(0.9, 1_700_000_000_000), (0.4, 1_700_000_060_000)]
            ):
                client.log_metric(kept.info.run_id, "loss", loss, timestamp=stamp, step=step)
            mlflow.set_tag("team", "retention")
            mlflow.log_text("all good", "reports/notes.txt")
            source = from_pandas(frame, name="churn-train", source=str(root / "train.csv"))
            mlflow.log_input(source, context="training")
            mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=frame.head(3),
                registered_model_name="churn",
                pip_requirements=["scikit-learn"],  # not inferred: that starts a process
            )
        with mlflow.start_run(experiment_id=churn, run_name="lost") as lost:
            mlflow.log_param("C", "2.0")
            logged = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="churn",
                pip_requirements=["scikit-learn"],
            )
        with mlflow.start_run(experiment_id=other, run_name="elsewhere") as elsewhere:
            mlflow.log_metric("auc", 0.7)
    finally:
        mlflow.set_tracking_uri(previous)
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_model_version_tag("churn", "1", "validated", "yes")
    client.set_terminated(lost.info.run_id, "FAILED")
    shutil.rmtree(root / "artifacts" / "models" / logged.model_id)  # the store lost its files
    yield Store(uri, kept.info.run_id, lost.info.run_id, elsewhere.info.run_id, frame, model)


@pytest.fixture
def yard(home: Path) -> Iterator[Yard]:
    opened = embedded_yard(home)
    yield opened
    opened.close()


def _ours(yard: Yard, mlflow_run_id: str) -> str:
    found = yard.runs.search(f"tags.{RUN_ID_TAG} = '{mlflow_run_id}'")
    assert len(found) == 1
    return found[0].id


def test_import_copies_runs_models_and_aliases(store: Store, yard: Yard) -> None:
    summary = import_mlflow(yard, store.uri)
    assert sorted(summary.experiments) == ["churn", "other"]
    assert summary.runs == 3 and summary.models == ["churn"] and summary.versions == ["churn/1"]

    kept = yard.runs.get(_ours(yard, store.kept))
    assert kept.experiment == "churn" and kept.name == "kept" and kept.status.value == "FINISHED"
    assert kept.params == {"C": "1.0", "solver": "lbfgs"}
    assert kept.tags["team"] == "retention" and kept.tags["mlflow.runName"] == "kept"
    history = yard.runs.history(kept.id, "loss")
    assert [(p.step, p.value, p.timestamp) for p in history] == [
        (0, 0.9, 1_700_000_000_000),
        (1, 0.4, 1_700_000_060_000),
    ]
    paths = {a.path for a in yard.runs.artifacts(kept.id)}
    assert "reports/notes.txt" in paths and "mlflow-models/model/MLmodel" in paths
    assert yard.backend.read_artifact(kept.id, "reports/notes.txt") == b"all good"
    (used,) = yard.backend.run_datasets(kept.id)
    assert used.role == "training" and used.dataset.name == "churn-train"
    assert used.dataset.row_count == 60 and [c.name for c in used.dataset.columns] == [
        "age",
        "spend",
    ]

    champion = yard.models.version("churn@champion")
    assert champion.version == 1 and champion.run_id == kept.id and champion.flavor == "sklearn"
    assert champion.tags["validated"] == "yes" and champion.tags["mlflow.version"] == "1"
    assert champion.signature is not None
    assert champion.signature["inputs"] == [
        {"name": "age", "type": "integer", "nullable": False},
        {"name": "spend", "type": "float", "nullable": False},
    ]
    predicted = yard.models.load("churn@champion").predict(store.frame)
    assert (predicted == store.model.predict(store.frame)).all()

    lost = yard.runs.get(_ours(yard, store.lost))  # imported, marked, listed; never fatal
    assert lost.status.value == "FAILED" and "logged model 'model'" in lost.tags[MISSING_TAG]
    assert lost.id in summary.missing_artifacts
    assert "churn version 2" in summary.skipped
    assert any(lost.id in line and "without artifacts" in line for line in summary.lines())

    actors = {e.actor for e in yard.audit.events(action="create run")}
    assert actors == {current_actor().user}
    assert {e.action for e in yard.audit.events(resource="models/churn")} >= {
        "create model",
        "register version",
        "set alias",
    }


def test_a_second_import_adds_nothing_and_says_so(store: Store, home: Path) -> None:
    code, out, err = invoke(home, "import", "mlflow", "--tracking-uri", store.uri)
    assert code == 0, err
    assert "runs imported: 3" in out and "without artifacts" in out
    events = len(embedded_yard(home).audit.events(limit=100_000))

    code, out, err = invoke(home, "import", "mlflow", "--tracking-uri", store.uri)
    assert code == 0, err
    assert out.strip().startswith("nothing new to import: 3 runs and 1 model versions")
    assert "skipped churn version 2" in out  # still listed: its files are still missing
    again = embedded_yard(home)
    assert len(again.runs.search(f"tags.{RUN_ID_TAG} is not null")) == 3
    assert len(again.audit.events(limit=100_000)) == events  # no write at all


def test_one_experiment_and_bad_stores(
    store: Store, yard: Yard, home: Path, tmp_path: Path
) -> None:
    summary = import_mlflow(yard, store.uri, experiment="other")
    assert summary.runs == 1 and summary.models == [] and summary.versions == []
    assert [e.name for e in yard.experiments.list()] == ["other"]
    assert yard.runs.get(_ours(yard, store.other)).metrics == {"auc": 0.7}

    with pytest.raises(NotFound, match="has no experiment 'nope'"):
        import_mlflow(yard, store.uri, experiment="nope")
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    code, _, err = invoke(home, "import", "mlflow", "--tracking-uri", missing)
    assert code == 2 and err.count("\n") == 1 and "absent.db" in err
    assert not (tmp_path / "absent.db").exists()


# -- modelyard import mlflow-model ------------------------------------------------


def test_an_mlflow_sklearn_folder_becomes_a_version_with_its_signature(
    store: Store, home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sk"
    mlflow.sklearn.save_model(
        store.model, folder, input_example=store.frame.head(3), pip_requirements=["scikit-learn"]
    )
    code, out, err = invoke(home, "import", "mlflow-model", str(folder), "--name", "churn-sk")
    assert code == 0, err
    assert out.strip() == "registered churn-sk/1 (sklearn, with a signature)"
    yard = embedded_yard(home)
    version = yard.models.version("churn-sk/1")
    assert version.signature is not None and version.tags["mlflow.flavor"] == "sklearn"
    assert [c["type"] for c in version.signature["inputs"]] == ["integer", "float"]
    loaded = yard.models.load("churn-sk/1")
    assert (loaded.predict(store.frame) == store.model.predict(store.frame)).all()
    assert list(loaded.input_example().columns) == ["age", "spend"]  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match="age"):
        loaded.predict([{"age": "old", "spend": 1.0}])


def test_an_mlflow_python_function_folder_becomes_a_version(
    store: Store, yard: Yard, tmp_path: Path
) -> None:
    class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """A python-function model as MLflow users write them (MLflow imports its
        python-function module, which warns, on first use: so not at collection)."""

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["x"] * 2

    frame = pd.DataFrame({"x": [1.0, 2.5]})
    folder = tmp_path / "pyfunc"
    signature = infer_signature(frame, pd.Series([2.0, 5.0]))
    mlflow.pyfunc.save_model(
        folder, python_model=Doubler(), signature=signature, pip_requirements=["pandas"]
    )
    version = import_mlflow_model(yard, folder, "doubler")
    assert version.flavor == "pyfunc" and version.signature is not None
    assert version.signature["outputs"] == [
        {"name": "prediction", "type": "float", "nullable": False}
    ]
    assert list(yard.models.load("doubler/1").predict(frame)) == [2.0, 5.0]


def test_an_unsupported_flavor_is_refused_naming_it(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "torch"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  pytorch:\n    pytorch_version: 2.4.0\n")
    code, _, err = invoke(home, "import", "mlflow-model", str(folder), "--name", "net")
    assert code == 2 and err.count("\n") == 1
    assert "pytorch" in err and "sklearn, xgboost, lightgbm, python_function" in err
    code, _, err = invoke(home, "import", "mlflow-model", str(tmp_path), "--name", "net")
    assert code == 2 and "has no MLmodel file" in err
    with pytest.raises(NotFound):
        embedded_yard(home).models.get("net")


@pytest.mark.slow  # starts a process
def test_the_server_and_the_cli_do_not_load_mlflow() -> None:
    """MLflow is needed only to read MLflow: the compatible API and the CLI never load it."""
    code = (
        "import sys, modelyard.api.app, modelyard.cli.main, modelyard.client.mlflow_import; "
        "assert 'mlflow' not in sys.modules, 'mlflow loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_mlflow_xgboost_and_lightgbm_folders_keep_their_flavor(
    store: Store, yard: Yard, tmp_path: Path
) -> None:
    import lightgbm
    import xgboost

    labels = (store.frame["spend"] > 0).astype(int)
    boosted: dict[str, Any] = {
        "xgboost": xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1),
    }
    for flavor, model in boosted.items():
        model.fit(store.frame, labels)
        folder = tmp_path / flavor
        saver = getattr(mlflow, flavor).save_model
        saver(model, folder, input_example=store.frame.head(3), pip_requirements=[flavor])
        version = import_mlflow_model(yard, folder, f"churn-{flavor}")
        assert version.flavor == flavor and version.tags["mlflow.flavor"] == flavor
        predicted = yard.models.load(version.ref).predict(store.frame)
        assert (np.asarray(predicted) == model.predict(store.frame)).all(), flavor
