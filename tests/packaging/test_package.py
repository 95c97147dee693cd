from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.errors import IntegrityError, InvalidInput, SignatureError
from modelyard.packaging import load_package, package_digest, verify_package, write_package
from modelyard.packaging.flavors import flavor_for

MARKER = Path(__file__).with_name(".unpickled-marker")


class Doubler:
    """A python-function model: any object with predict."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        doubled: np.ndarray = frame["x"].to_numpy() * 2
        return doubled


class Tattletale(Doubler):
    """Leaves a file behind when it is unpickled, to prove verification comes first."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, str]) -> None:
        Path(state["marker"]).write_text("unpickled")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_breast_cancer(as_frame=True)
    return bunch.data.iloc[:, :8], bunch.target


def optional(module: str) -> Any:
    """An optional library, or a skip of this test when it is not installed."""
    return pytest.importorskip(module)


@pytest.mark.parametrize(
    ("make", "flavor"),
    [
        (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), "sklearn"),
        (lambda: RandomForestClassifier(n_estimators=5, random_state=0), "sklearn"),
        # the boosting libraries are optional (the boost extra): their cases skip without them
        (lambda: optional("xgboost").XGBClassifier(n_estimators=5, max_depth=2), "xgboost"),
        (lambda: optional("lightgbm").LGBMClassifier(n_estimators=5, verbose=-1), "lightgbm"),
    ],
)
def test_round_trip_keeps_predictions(make, flavor, data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    features, target = data
    model = make().fit(features, target)
    manifest = write_package(model, tmp_path / "pkg", input_example=features.head(3), run_id="r1")
    assert manifest.flavor == flavor and manifest.run_id == "r1"
    assert any(
        req.startswith(("scikit-learn==", "xgboost", "lightgbm==")) for req in manifest.requirements
    )
    loaded = load_package(tmp_path / "pkg", expected_digest=package_digest(manifest))
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(
        loaded.predict_proba(features.head()), model.predict_proba(features.head())
    )
    example = loaded.input_example()
    assert example is not None and list(example.columns) == list(features.columns)


def test_lightgbm_booster_uses_native_format(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    features, target = data
    lightgbm = optional("lightgbm")
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1},
        lightgbm.Dataset(features, target),
        num_boost_round=5,
    )
    write_package(booster, tmp_path / "pkg", input_example=features.head(2))
    assert (tmp_path / "pkg" / "model.txt").is_file()
    loaded = load_package(tmp_path / "pkg")
    np.testing.assert_allclose(loaded.predict(features), booster.predict(features))


def test_pyfunc_and_signature_enforcement(tmp_path: Path) -> None:
    write_package(Doubler(), tmp_path / "pkg", input_example=pd.DataFrame({"x": [1.5]}))
    loaded = load_package(tmp_path / "pkg")
    assert loaded.manifest.flavor == "pyfunc"
    assert loaded.predict([{"x": 2}]).tolist() == [4.0]
    with pytest.raises(SignatureError, match="column 'x': missing"):
        loaded.predict([{"y": 2}])


def _tattletale_package(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "unpickled.txt"
    write_package(Tattletale(str(marker)), tmp_path / "pkg", input_example={"x": [1.0]})
    assert not marker.exists()
    return tmp_path / "pkg", marker


def test_tampered_file_is_refused_before_unpickling(tmp_path: Path) -> None:
    package, marker = _tattletale_package(tmp_path)
    model_file = package / "model.pkl"
    blob = bytearray(model_file.read_bytes())
    blob[-2] ^= 0x01
    model_file.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match="package file 'model.pkl' fails its sha256 check"):
        load_package(package)
    assert not marker.exists()


def test_unlisted_file_and_edited_manifest_are_refused(tmp_path: Path) -> None:
    package, marker = _tattletale_package(tmp_path)
    digest = package_digest(verify_package(package))
    (package / "extra.py").write_text("print('hi')")
    with pytest.raises(IntegrityError, match="'extra.py' is not listed"):
        load_package(package)
    (package / "extra.py").unlink()
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["run_id"] = "someone-else"
    (package / "manifest.json").write_text(json.dumps(manifest))
    load_package(package).predict({"x": [1.0]})  # self-consistent without a digest to check
    marker.unlink()
    with pytest.raises(IntegrityError, match="does not match the registered digest"):
        load_package(package, expected_digest=digest)
    assert not marker.exists()


def test_objects_without_predict_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="builtins.dict: it has no predict method"):
        flavor_for({})
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "leftover").write_text("x")
    with pytest.raises(InvalidInput, match="is not empty"):
        write_package(Doubler(), tmp_path / "pkg")
