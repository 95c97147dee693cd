"""ONNX twins: converted, checked against the original on the reference sample, served."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.client.yard import Yard
from modelyard.errors import InvalidInput
from modelyard.packaging import load_package, write_package
from modelyard.packaging.onnx import OutputsDiffer, compare, convert
from modelyard.serving.models import Model
from tests.conftest import embedded_yard

pytest.importorskip("onnxruntime")


class Halver:
    """A python-function model: no ONNX converter takes it."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return frame.iloc[:, 0].to_numpy() / 2


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_breast_cancer(as_frame=True)
    return bunch.data.iloc[:, :10], bunch.target


@pytest.fixture
def trained(home: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> Iterator[Yard]:
    """A yard whose cancer/1 was logged by a run that kept its training data."""
    features, target = cancer
    yard = embedded_yard(home)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, target)
    with yard.start_run(experiment="onnx") as run:
        run.log_dataset(features.assign(target=target), name="cancer-train", role="training")
        run.log_model(model, name="cancer", input_example=features.head())
    yield yard
    yard.close()


def test_export_checks_the_twin_on_the_training_sample_and_serves_its_answers(
    trained: Yard, tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = cancer
    target = trained.models.export("cancer/1", tmp_path / "twin", format="onnx")
    manifest = json.loads((target / "manifest.json").read_text())
    original = json.loads(
        (
            trained.backend.fetch_package(trained.models.version("cancer/1")) / "manifest.json"
        ).read_text()
    )
    assert manifest["flavor"] == "onnx"
    assert manifest["signature"] == original["signature"]
    assert set(manifest["files"]) == {"model.onnx", "onnx.json", "input_example.json"}
    check = manifest["metadata"]["check"]
    assert check["sample"] == "training dataset 'cancer-train'"
    assert check["rows"] == len(features)
    assert 0 < check["largest_difference"] < 1e-4
    record = json.loads((tmp_path / "twin.modelyard-version.json").read_text())
    assert record["format"] == "onnx" and record["converted_from"] == original_digest(trained)

    native = trained.models.load("cancer/1")
    twin = load_package(target)
    rows: list[dict[str, Any]] = features.iloc[100:140].to_dict(orient="records")  # type: ignore[assignment]
    served = Model("cancer", 2, "digest", twin)
    [(labels, scores)] = served.predict([served.prepare(rows)])
    assert labels == native.predict(features.iloc[100:140]).tolist()
    assert np.allclose(scores, native.predict_proba(features.iloc[100:140]), atol=1e-5)


def original_digest(yard: Yard) -> str:
    return yard.models.version("cancer/1").package_digest


def test_an_exported_twin_imports_as_a_version_of_flavor_onnx(
    trained: Yard, tmp_path: Path
) -> None:
    trained.models.export("cancer/1", tmp_path / "twin", format="onnx")
    version = trained.models.import_(tmp_path / "twin")
    assert (version.ref, version.flavor) == ("cancer/2", "onnx")
    assert version.tags["imported_from"] == "cancer/1"
    assert trained.models.load("cancer/2").signature == trained.models.load("cancer/1").signature


def test_outputs_beyond_the_tolerance_are_refused_with_the_largest_difference(
    trained: Yard, tmp_path: Path
) -> None:
    # float32 arithmetic never matches float64 exactly: a zero tolerance must refuse
    with pytest.raises(OutputsDiffer, match=r"largest difference [0-9.e-]+ at row \d+") as caught:
        trained.models.export("cancer/1", tmp_path / "twin", format="onnx", tolerance=0.0)
    assert caught.value.comparison.largest > 0
    assert "score of class" in str(caught.value)
    assert not any((tmp_path / "twin").iterdir())
    assert not (tmp_path / "twin.modelyard-version.json").exists()


def test_a_version_without_training_data_is_checked_on_its_input_example(
    home: Path, tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = cancer
    with embedded_yard(home) as yard:
        model = LogisticRegression(max_iter=2000).fit(features, target)
        yard.models.register(model, name="plain", input_example=features.head(7))
        exported = yard.models.export("plain/1", tmp_path / "twin", format="onnx")
    check = json.loads((exported / "manifest.json").read_text())["metadata"]["check"]
    assert (check["sample"], check["rows"]) == ("input example", 7)


def test_an_unsupported_flavor_names_itself_and_the_converters_tried(home: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with embedded_yard(home) as yard:
        yard.models.register(Halver(), name="halver", input_example=frame)
        with pytest.raises(InvalidInput) as caught:
            yard.models.export("halver/1", home / "out", format="onnx")
    message = str(caught.value)
    assert "'pyfunc'" in message
    assert "skl2onnx (sklearn)" in message and "onnxmltools (xgboost)" in message
    assert "onnxmltools (lightgbm)" in message


def test_a_text_column_cannot_travel_in_onnx_float_input(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "b"]})
    model = LogisticRegression().fit(frame[["x"]], [0, 1, 0, 1])
    write_package(model, tmp_path / "p", input_example=frame)
    with pytest.raises(InvalidInput, match="column 'city' is string"):
        convert(load_package(tmp_path / "p"))


def _boost(module: str, kind: str) -> Callable[[], Any]:
    def make() -> Any:
        library = pytest.importorskip(module)
        return (
            getattr(library, kind)(n_estimators=8, max_depth=3, verbose=-1)
            if (module == "lightgbm")
            else getattr(library, kind)(n_estimators=8, max_depth=3)
        )

    return make


@pytest.mark.parametrize(
    ("make", "task"),
    [
        (_boost("xgboost", "XGBClassifier"), "classification"),
        (_boost("xgboost", "XGBRegressor"), "regression"),
        (_boost("lightgbm", "LGBMClassifier"), "classification"),
        (_boost("lightgbm", "LGBMRegressor"), "regression"),
        (lambda: RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0), "regression"),
    ],
)
def test_boosted_and_forest_models_convert_within_the_tolerance(
    make: Callable[[], Any], task: str, tmp_path: Path
) -> None:
    loader = load_breast_cancer if task == "classification" else load_diabetes
    bunch = loader(as_frame=True)
    features = bunch.data.iloc[:, :8]
    model = make().fit(features, bunch.target)
    write_package(model, tmp_path / "p", input_example=features.head())
    loaded = load_package(tmp_path / "p")
    twin = convert(loaded)
    comparison = compare(loaded, twin, features)
    assert comparison.rows == len(features)
    assert comparison.within, comparison.describe()
    if task == "classification":  # served by its labels, as the original is
        assert twin.predict(features.to_numpy()).tolist() == loaded.predict(features).tolist()


@pytest.mark.slow
def test_serving_a_native_package_never_imports_the_onnx_libraries(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    write_package(
        LogisticRegression().fit(frame, [0, 1, 0, 1]), tmp_path / "p", input_example=frame
    )
    script = (
        "import sys\n"
        "import modelyard.client.models, modelyard.serving.models\n"
        "from modelyard.packaging import load_package\n"
        f"print(load_package({str(tmp_path / 'p')!r}).predict([{{'x': 2.5}}]))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('onnx', 'onnxruntime', 'skl2onnx', 'onnxmltools')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
