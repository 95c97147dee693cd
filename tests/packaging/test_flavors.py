"""Flavors: which models read float arrays, and the warning silenced while they do."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

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
