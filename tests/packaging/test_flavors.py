"""Flavors: which models read float arrays, and the warning silenced while they do."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from modelyard.errors import InvalidInput, SignatureError
from modelyard.packaging import load_package, package_digest, write_package
from modelyard.packaging.flavors import FLAVORS, unnamed_features

FRAME = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
LABELS = [0, 0, 1, 1]


def fitted(model: object) -> object:
    return model.fit(FRAME, LABELS)  # type: ignore[attr-defined]


def test_scikit_learn_models_fitted_on_these_columns_read_arrays() -> None:
    sklearn = FLAVORS["sklearn"]
    assert sklearn.reads_arrays(fitted(LogisticRegression()), ["a", "b"])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    assert sklearn.reads_arrays(fitted(pipeline), ["a", "b"])
    on_arrays = LogisticRegression().fit(FRAME.to_numpy(), LABELS)
    assert sklearn.reads_arrays(on_arrays, ["a", "b"])


def test_models_that_may_need_a_frame_keep_it() -> None:
    sklearn = FLAVORS["sklearn"]
    assert not sklearn.reads_arrays(fitted(LogisticRegression()), ["b", "a"])  # other order
    by_name = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), ["a", "b"])]), LogisticRegression()
    )
    assert not sklearn.reads_arrays(fitted(by_name), ["a", "b"])
    function = make_pipeline(FunctionTransformer(lambda frame: frame), LogisticRegression())
    assert not sklearn.reads_arrays(fitted(function), ["a", "b"])
    assert not FLAVORS["pyfunc"].reads_arrays(fitted(LogisticRegression()), ["a", "b"])


def test_trees_read_float32_rows_and_the_rest_float64_columns() -> None:
    """scikit-learn's trees copy their input into float32 rows: they are given those."""
    sklearn = FLAVORS["sklearn"]
    assert sklearn.array_layout(fitted(RandomForestClassifier(n_estimators=2))) == (
        np.float32,
        "C",
    )
    assert sklearn.array_layout(fitted(GradientBoostingRegressor(n_estimators=2)))[0] is np.float32
    assert sklearn.array_layout(fitted(LogisticRegression())) == (np.float64, "F")
    forest_in_pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2))
    assert sklearn.array_layout(fitted(forest_in_pipeline)) == (np.float64, "F")  # scaled first
    assert FLAVORS["pyfunc"].array_layout(object()) == (np.float64, "F")


def test_the_feature_name_warning_is_silenced_only_inside_the_block() -> None:
    model = fitted(LogisticRegression())
    array = FRAME.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with unnamed_features():
            assert model.predict(array).tolist() == model.predict(FRAME).tolist()  # type: ignore[attr-defined]
        try:
            model.predict(array)  # type: ignore[attr-defined]
        except UserWarning as warning:
            assert "does not have valid feature names" in str(warning)
        else:
            raise AssertionError("the warning stayed silenced after the block")


def test_overlapping_blocks_on_threads_keep_the_filter_until_the_last_ends() -> None:
    model = fitted(LogisticRegression())
    array = FRAME.to_numpy()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with unnamed_features():
            inside.set()
            release.wait(timeout=30)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = threading.Thread(target=hold)
        other.start()
        inside.wait(timeout=30)
        with unnamed_features():
            model.predict(array)  # type: ignore[attr-defined]
        model.predict(array)  # type: ignore[attr-defined]  # the other block still runs
        release.set()
        other.join()
        assert not any(
            entry[0] == "ignore" and entry[1] is not None and "feature names" in entry[1].pattern
            for entry in warnings.filters
        )
    assert np.asarray(model.predict(FRAME)).shape == (4,)  # type: ignore[attr-defined]


def test_a_flavor_says_which_models_it_serves_by_their_class_scores() -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.svm import SVC

    sklearn = FLAVORS["sklearn"]
    classes = sklearn.classes(fitted(LogisticRegression()))
    assert classes is not None and classes.tolist() == [0, 1]
    assert sklearn.classes(LogisticRegression()) is None  # not fitted
    assert sklearn.classes(fitted(LinearRegression())) is None
    assert sklearn.classes(fitted(SVC())) is None  # no predict_proba without probability=True
    assert FLAVORS["pyfunc"].classes(fitted(LogisticRegression())) is None


# -- catboost (when installed) -------------------------------------------------------------


def churn_data(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    features = pd.DataFrame(
        {
            "tenure": rng.normal(24, 6, rows),
            "spend": rng.normal(50, 15, rows),
            "city": rng.choice(["oslo", "rome", "lima"], rows),
        }
    )
    risk = (30 - features.tenure) / 6 + (features.city == "rome") + rng.normal(0, 0.3, rows)
    return features, np.where(risk > 0.5, "churn", "stay")


def test_catboost_classifier_is_packaged_loaded_and_served_by_its_class_scores(
    tmp_path: Path,
) -> None:
    catboost = pytest.importorskip("catboost")
    from modelyard.serving.models import Model

    features, labels = churn_data()
    model = catboost.CatBoostClassifier(
        iterations=30,
        depth=3,
        thread_count=1,
        random_seed=0,
        verbose=False,
        allow_writing_files=False,
        cat_features=["city"],
    ).fit(features, labels)
    manifest = write_package(model, tmp_path / "pkg", input_example=features.head(3))
    assert manifest.flavor == "catboost"
    assert {"model.cbm", "catboost_class.txt"} <= set(manifest.files)
    assert any(r.startswith("catboost==") for r in manifest.requirements)

    loaded = load_package(tmp_path / "pkg", expected_digest=package_digest(manifest))
    assert type(loaded.model).__name__ == "CatBoostClassifier"
    predicted = loaded.predict(features)
    assert predicted.tolist() == model.predict(features).tolist()
    assert {"churn", "stay"} == set(predicted.tolist())
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))
    classes = FLAVORS["catboost"].classes(loaded.model)
    assert classes is not None and classes.tolist() == ["churn", "stay"]

    served = Model("churn", 1, package_digest(manifest), loaded)
    rows = features.head(4).to_dict(orient="records")
    [(outputs, scores)] = served.predict([served.prepare(rows)])
    assert outputs == model.predict(features.head(4)).tolist()
    np.testing.assert_allclose(scores, model.predict_proba(features.head(4)))

    with pytest.raises(SignatureError, match="column 'city'"):
        loaded.predict([{"tenure": 12.0, "spend": 40.0}])
    with pytest.raises(SignatureError, match="column 'tenure'"):
        served.prepare([{"tenure": "long", "spend": 40.0, "city": "rome"}])


def test_catboost_regressor_is_served_by_its_predictions(tmp_path: Path) -> None:
    catboost = pytest.importorskip("catboost")
    features, _ = churn_data()
    numbers = features[["tenure", "spend"]]
    model = catboost.CatBoostRegressor(
        iterations=10,
        depth=2,
        thread_count=1,
        random_seed=0,
        verbose=False,
        allow_writing_files=False,
    ).fit(numbers, numbers.spend * 2 - numbers.tenure)
    write_package(model, tmp_path / "pkg", input_example=numbers.head(2))
    loaded = load_package(tmp_path / "pkg")
    assert loaded.manifest.flavor == "catboost"
    assert FLAVORS["catboost"].classes(loaded.model) is None
    np.testing.assert_allclose(loaded.predict(numbers), model.predict(numbers))
    (tmp_path / "pkg" / "catboost_class.txt").write_text("os.system")
    with pytest.raises(InvalidInput, match="catboost model class 'os.system' is not one of"):
        FLAVORS["catboost"].load(tmp_path / "pkg")
