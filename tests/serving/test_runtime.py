"""A loaded version on the serving path: all-float requests skip pandas, answers do not change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.errors import SignatureError
from modelyard.packaging import load_package, write_package
from modelyard.packaging.signature import enforce
from modelyard.serving.models import Model
from tests.serving.models import Constant, cancer


def served(model: object, example: pd.DataFrame, directory: Path) -> Model:
    write_package(model, directory, input_example=example)
    return Model("m", 1, "digest", load_package(directory))


def rows_of(frame: pd.DataFrame) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = frame.to_dict(orient="records")  # type: ignore[assignment]
    return rows


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=5000),
        RandomForestClassifier(n_estimators=20, random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        RandomForestRegressor(n_estimators=10, random_state=0),
    ],
    ids=["logistic", "forest", "pipeline", "regressor"],
)
def test_all_float_requests_predict_from_arrays_exactly_as_from_frames(
    estimator: object, tmp_path: Path
) -> None:
    features, target = cancer()
    fitted = estimator.fit(features, target)  # type: ignore[attr-defined]
    model = served(fitted, features.head(), tmp_path / "package")
    requests = [rows_of(features.iloc[start : start + 7]) for start in (0, 7, 100)]
    prepared = [model.prepare(rows) for rows in requests]
    assert all(isinstance(p, np.ndarray) for p in prepared)
    # fitted on named columns: an array would warn, and warnings are errors in this suite
    answers = model.predict(prepared)
    # the frame path as it was: the batch's rows as one frame (BLAS sums depend on the
    # shape and memory order, so the same batch is compared to the bit)
    frame = pd.DataFrame(np.concatenate(prepared), columns=model.names)
    outputs, scores = model.predict_frame(frame)
    assert [output for answer_outputs, _ in answers for output in answer_outputs] == outputs
    enforced = enforce(model.signature, [row for rows in requests for row in rows])
    assert outputs == fitted.predict(enforced).tolist()  # type: ignore[attr-defined]
    if scores is None:
        assert all(answer_scores is None for _, answer_scores in answers)
    else:
        assert [score for _, answer_scores in answers for score in answer_scores] == scores


def test_the_array_path_keeps_the_fitted_column_order(tmp_path: Path) -> None:
    features, target = cancer()
    fitted = LogisticRegression(max_iter=5000).fit(features, target)
    reordered = features[list(reversed(features.columns))]
    # the signature lists the columns in another order than the model was fitted on:
    # the frame path (and its error) is kept, as before
    model = served(fitted, reordered.head(), tmp_path / "package")
    [answer] = model.predict([model.prepare(rows_of(reordered.head(3)))])
    assert "feature names should match" in str(answer)


def test_python_models_still_get_frames(tmp_path: Path) -> None:
    features, _ = cancer()
    model = served(Constant(3), features.head(), tmp_path / "package")
    [(outputs, scores)] = model.predict([model.prepare(rows_of(features.head(2)))])
    assert outputs == [3, 3] and scores is None


SERVE_WITHOUT_PANDAS = """
import json, sys
import modelyard.cli.main, modelyard.serving.server
from modelyard.packaging import load_package
from modelyard.serving.models import Model

model = Model("m", 1, "digest", load_package(sys.argv[1]))
rows = json.loads(sys.argv[2])
[(outputs, scores)] = model.predict([model.prepare(rows)])
heavy = sorted(
    name for name in ("pandas", "duckdb", "matplotlib", "pyarrow")
    if name in sys.modules
)
print(json.dumps({"outputs": outputs, "heavy": heavy}))
"""


@pytest.mark.slow  # starts a process
def test_serving_an_all_float_model_never_imports_pandas(tmp_path: Path) -> None:
    features, target = cancer()
    fitted = LogisticRegression(max_iter=5000).fit(features, target)
    write_package(fitted, tmp_path / "package", input_example=features.head())
    rows = rows_of(features.head(4))
    found = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_PANDAS, str(tmp_path / "package"), json.dumps(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(found.stdout)
    assert answer["heavy"] == []
    assert answer["outputs"] == fitted.predict(features.head(4)).tolist()


def _nullable_income() -> pd.DataFrame:
    return pd.DataFrame({"age": [31.0, 45.0], "income": [1.5, None]})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"age": None}, "column 'age': null value at row 1 but the column is not nullable"),
        ({"age": float("nan")}, "column 'age': null value at row 1 but the column is not"),
        ({"age": np.float32("nan")}, "column 'age': null value at row 1 but the column is not"),
        ({"age": "12.5"}, "column 'age': expected float, got '12.5' at row 1"),
        ({"age": True}, "column 'age': expected float, got True at row 1"),
        ({"age": np.True_}, "column 'age': expected float, got True at row 1"),
        ({"age": [1.0]}, "column 'age': expected float, got [1.0] at row 1"),
        ({"income": "x"}, "column 'income': expected float, got 'x' at row 1"),
    ],
)
def test_the_array_path_refuses_nulls_strings_and_booleans_as_enforce_does(
    changes: dict[str, object], message: str, tmp_path: Path
) -> None:
    model = served(Constant(1), _nullable_income(), tmp_path / "package")
    rows: list[dict[str, object]] = [{"age": 30.0, "income": 2.0}, {"age": 40, "income": None}]
    rows[1].update(changes)
    with pytest.raises(SignatureError) as on_arrays:
        model.prepare(rows)  # type: ignore[arg-type]
    with pytest.raises(SignatureError) as on_frames:
        enforce(model.signature, rows)
    assert str(on_arrays.value) == str(on_frames.value)
    assert str(on_arrays.value).startswith(message)


def test_the_array_path_keeps_nulls_a_column_may_hold(tmp_path: Path) -> None:
    model = served(Constant(1), _nullable_income(), tmp_path / "package")
    prepared = model.prepare([{"age": 30, "income": None}, {"age": 40.0, "income": np.nan}])
    assert isinstance(prepared, np.ndarray) and prepared.dtype == np.float64
    assert prepared[:, 0].tolist() == [30.0, 40.0] and np.isnan(prepared[:, 1]).all()
