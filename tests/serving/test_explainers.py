"""SHAP explanations of loaded versions: additivity, the explainer per model, the limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.errors import InvalidInput, NotFound, TooLarge
from modelyard.packaging import flavors, load_package, write_package
from modelyard.packaging.flavors import PyfuncFlavor
from modelyard.serving.explainers import Limits, VersionExplainer, mean_absolute
from modelyard.serving.models import Model


def loaded(model: Any, example: pd.DataFrame, folder: Path, flavor: str | None = None) -> Model:
    """``model`` as a serving process loads it: packaged, verified, loaded."""
    write_package(model, folder / "package", input_example=example.head(), flavor=flavor)
    return Model("m", 1, "digest", load_package(folder / "package"))


def cancer() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, target


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.to_dict(orient="records")
    return rows


def shap_sums(explainer: VersionExplainer, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    explanation = explainer.explain(records(frame))
    for row in explanation.rows:  # what the answer says adds up as it claims
        assert row.base_value + sum(row.values.values()) == pytest.approx(row.output, abs=1e-9)
    return np.array([row.output for row in explanation.rows])


def test_tree_values_add_up_to_the_forest_probability_of_the_predicted_class(
    tmp_path: Path,
) -> None:
    features, target = cancer()
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(features, target)
    explainer = VersionExplainer(loaded(forest, features, tmp_path))
    rows = features.iloc[[0, 20, 200, 400]]
    outputs = shap_sums(explainer, rows)
    proba = forest.predict_proba(rows)
    assert explainer.method == "tree"
    np.testing.assert_allclose(outputs, proba.max(axis=1), atol=1e-6)
    explanation = explainer.explain(records(rows))
    predicted = forest.predict(rows)
    assert [r.explained for r in explanation.rows] == [
        f"probability of class '{label}'" for label in predicted
    ]


def test_tree_values_add_up_to_the_boosted_log_odds(tmp_path: Path) -> None:
    features, target = cancer()
    boosted = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(features, target)
    explainer = VersionExplainer(loaded(boosted, features, tmp_path))
    rows = features.iloc[:5]
    np.testing.assert_allclose(
        shap_sums(explainer, rows), boosted.decision_function(rows), atol=1e-6
    )
    assert explainer.explain(records(rows)).rows[0].explained == "log-odds of class '1'"


def test_tree_values_add_up_to_a_regression(tmp_path: Path) -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(features, target)
    explainer = VersionExplainer(loaded(forest, features, tmp_path))
    rows = features.iloc[:5]
    np.testing.assert_allclose(shap_sums(explainer, rows), forest.predict(rows), atol=1e-6)


def test_linear_values_add_up_to_the_decision_function_against_the_reference_data(
    tmp_path: Path,
) -> None:
    features, target = cancer()
    linear = LogisticRegression(max_iter=5000).fit(features, target)
    explainer = VersionExplainer(loaded(linear, features, tmp_path), background=features)
    rows = features.iloc[:5]
    assert explainer.method == "linear"
    np.testing.assert_allclose(
        shap_sums(explainer, rows), linear.decision_function(rows), atol=1e-6
    )
    # the base value is the average output on (a sample of) the reference data
    sample = features.sample(100, random_state=0)
    base = explainer.explain(records(rows)).rows[0].base_value
    assert base == pytest.approx(float(linear.decision_function(sample.mean().to_frame().T)[0]))


def test_linear_regression_adds_up_and_needs_reference_data(tmp_path: Path) -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(features, target)
    model = loaded(ridge, features, tmp_path)
    rows = features.iloc[:3]
    np.testing.assert_allclose(
        shap_sums(VersionExplainer(model, background=features), rows), ridge.predict(rows)
    )
    with pytest.raises(NotFound, match="m/1 has no reference data to explain against"):
        VersionExplainer(model).explain(records(rows))


def test_anything_else_is_explained_by_its_answers(tmp_path: Path) -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, target)
    explainer = VersionExplainer(loaded(pipeline, features, tmp_path), background=features)
    rows = features.iloc[[0, 60, 120]]
    outputs = shap_sums(explainer, rows)
    assert explainer.method == "model-agnostic"
    np.testing.assert_allclose(outputs, pipeline.predict_proba(rows).max(axis=1), atol=1e-6)


def test_top_contributions_are_the_largest_in_plain_words(tmp_path: Path) -> None:
    features, target = cancer()
    boosted = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(features, target)
    explainer = VersionExplainer(loaded(boosted, features, tmp_path))
    row = explainer.explain(records(features.iloc[:1]), top=3).rows[0]
    largest = sorted(row.values, key=lambda name: -abs(row.values[name]))[:3]
    assert [c.feature for c in row.top] == largest
    assert row.top[0].value == features.iloc[0][largest[0]]
    first = row.top[0]
    verb = "raised" if first.contribution > 0 else "lowered"
    assert (
        f"{first.feature} = {first.value:.4g} {verb} it by {abs(first.contribution):.3g}"
        in row.text
    )
    assert row.text.startswith(f"log-odds of class '1' is {row.output:.4g} (baseline ")


def test_global_importance_is_mean_absolute_shap(tmp_path: Path) -> None:
    features, target = cancer()
    boosted = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(features, target)
    explainer = VersionExplainer(loaded(boosted, features, tmp_path))
    sample = features.iloc[:50]
    importance = mean_absolute(explainer, sample)
    values = np.array([list(r.values.values()) for r in explainer.explain(records(sample)).rows])
    expected = dict(zip(features.columns, np.abs(values).mean(axis=0), strict=True))
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert importance == pytest.approx(expected)


class Opaque:
    """A model some team serves with a flavor that cannot be explained."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.zeros(len(frame))


class OpaqueFlavor(PyfuncFlavor):
    name: ClassVar[str] = "opaque"

    def explainer(self, model: Any) -> str | None:
        return None


def test_a_flavor_without_an_explainer_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(flavors.FLAVORS, "opaque", OpaqueFlavor())
    features, _ = cancer()
    model = loaded(Opaque(), features, tmp_path, flavor="opaque")
    with pytest.raises(InvalidInput, match="flavor 'opaque' has no explainer, so m/1 cannot"):
        VersionExplainer(model)


def test_rows_and_time_are_bounded(tmp_path: Path) -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, target)
    model = loaded(pipeline, features, tmp_path)
    few = VersionExplainer(model, background=features, limits=Limits(max_rows=3))
    with pytest.raises(TooLarge, match="4 rows is more than the 3 one explanation may hold"):
        few.explain(records(features.iloc[:4]))
    hasty = VersionExplainer(model, background=features, limits=Limits(seconds=0.0))
    with pytest.raises(TooLarge, match=r"stopped past the time limit of 0 s after 1 rows"):
        hasty.explain(records(features.iloc[:3]))


def test_the_model_agnostic_explainer_names_a_column_it_cannot_read(tmp_path: Path) -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    with_text = features.assign(colour=np.where(target == 0, "red", "blue"))
    model = loaded(Opaque(), with_text, tmp_path)
    explainer = VersionExplainer(model, background=with_text)
    with pytest.raises(InvalidInput, match="needs numeric inputs, and column 'colour'"):
        explainer.explain(records(with_text.iloc[:2]))


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_EXPLAIN_MAX_ROWS", "7")
    monkeypatch.setenv("MODELYARD_EXPLAIN_SECONDS", "2.5")
    assert (Limits.from_env().max_rows, Limits.from_env().seconds) == (7, 2.5)
