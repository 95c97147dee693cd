"""Realised metrics against scikit-learn, and CBPE estimates against realised performance.

pytest turns warnings into errors, so every test that expects ``None`` also proves
that no UndefinedMetricWarning (or any other warning) was raised on the way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.special import expit
from sklearn import metrics as sk
from sklearn.datasets import make_classification
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from modelyard.errors import InvalidInput
from modelyard.monitoring.calibration import Calibration
from modelyard.monitoring.estimation import estimate_classification
from modelyard.monitoring.performance import (
    MetricValues,
    classification_metrics,
    normalise_labels,
    regression_metrics,
    sliced,
)

# -- a fixed example scored by scikit-learn -----------------------------------


def _binary_example() -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    rng = np.random.default_rng(11)
    positive_score = np.round(rng.random(200), 1)  # rounded so that ties occur
    y_true = np.where(rng.random(200) < positive_score, "yes", "no")
    y_pred = np.where(positive_score >= 0.5, "yes", "no")
    return y_true, y_pred, positive_score


def _multiclass_example() -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    rng = np.random.default_rng(12)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=300)
    y_true = np.array([rng.choice(3, p=row) for row in probabilities])
    return y_true, probabilities.argmax(axis=1), probabilities


def test_binary_metrics_equal_sklearn() -> None:
    y_true, y_pred, positive_score = _binary_example()
    metrics = classification_metrics(y_true, y_pred, positive_score, classes=["no", "yes"])

    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert metrics["precision"] == pytest.approx(
        sk.precision_score(y_true, y_pred, pos_label="yes")
    )
    assert metrics["recall"] == pytest.approx(sk.recall_score(y_true, y_pred, pos_label="yes"))
    assert metrics["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, pos_label="yes"))
    assert metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y_true == "yes", positive_score))
    both_columns = np.column_stack([1 - positive_score, positive_score])
    assert metrics["log_loss"] == pytest.approx(sk.log_loss(y_true, both_columns))


def test_binary_scores_as_one_column_or_two_agree() -> None:
    y_true, y_pred, positive_score = _binary_example()
    both_columns = np.column_stack([1 - positive_score, positive_score])

    assert classification_metrics(
        y_true, y_pred, positive_score, ["no", "yes"]
    ) == classification_metrics(y_true, y_pred, both_columns, ["no", "yes"])


def test_positive_class_is_the_second_of_classes() -> None:
    y_true, y_pred, positive_score = _binary_example()
    flipped = classification_metrics(y_true, y_pred, 1 - positive_score, classes=["yes", "no"])

    assert flipped["precision"] == pytest.approx(sk.precision_score(y_true, y_pred, pos_label="no"))
    assert flipped["roc_auc"] == pytest.approx(sk.roc_auc_score(y_true == "no", 1 - positive_score))


def test_multiclass_metrics_equal_sklearn_macro_averages() -> None:
    y_true, y_pred, probabilities = _multiclass_example()
    metrics = classification_metrics(y_true, y_pred, probabilities, classes=[0, 1, 2])

    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert metrics["precision"] == pytest.approx(
        sk.precision_score(y_true, y_pred, average="macro")
    )
    assert metrics["recall"] == pytest.approx(sk.recall_score(y_true, y_pred, average="macro"))
    assert metrics["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert metrics["roc_auc"] == pytest.approx(
        sk.roc_auc_score(y_true, probabilities, multi_class="ovr")
    )
    assert metrics["log_loss"] == pytest.approx(sk.log_loss(y_true, probabilities))


def test_classes_default_to_the_labels_seen_in_natural_order() -> None:
    y_true, y_pred = ["10", "9", "10", "9"], [10, 10, 10, 9]

    metrics = classification_metrics(y_true, y_pred, scores=[0.8, 0.6, 0.7, 0.1])

    assert metrics["precision"] == pytest.approx(2 / 3)  # "10" is the positive class
    assert metrics["roc_auc"] == pytest.approx(1.0)


# -- metrics that cannot be computed ------------------------------------------


def test_empty_window_gives_none_everywhere() -> None:
    assert set(classification_metrics([], [], scores=[], classes=[0, 1]).values()) == {None}
    assert set(classification_metrics([], []).values()) == {None}
    assert set(regression_metrics([], []).values()) == {None}
    assert set(estimate_classification([]).values()) == {None}
    assert set(estimate_classification(np.empty((0, 3))).values()) == {None}


def test_one_class_present_has_no_roc_auc_but_keeps_what_it_can() -> None:
    metrics = classification_metrics([1, 1, 1], [1, 0, 1], scores=[0.9, 0.4, 0.7], classes=[0, 1])

    assert metrics["roc_auc"] is None
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["precision"] == 1.0
    assert metrics["log_loss"] == pytest.approx(
        sk.log_loss([1, 1, 1], [0.9, 0.4, 0.7], labels=[0, 1])
    )


def test_no_scores_means_no_roc_auc_or_log_loss() -> None:
    metrics = classification_metrics([0, 1, 1], [0, 1, 0])

    assert metrics["roc_auc"] is None
    assert metrics["log_loss"] is None
    assert metrics["recall"] == 0.5


def test_undefined_precision_and_recall_are_none() -> None:
    nothing_predicted_positive = classification_metrics([0, 1, 1], [0, 0, 0], classes=[0, 1])
    no_actual_positive = classification_metrics([0, 0, 0], [0, 1, 0], classes=[0, 1])

    assert nothing_predicted_positive["precision"] is None
    assert nothing_predicted_positive["recall"] == 0.0
    assert no_actual_positive["recall"] is None
    assert no_actual_positive["precision"] == 0.0


def test_single_observed_class_without_classes_has_no_class_metrics() -> None:
    metrics = classification_metrics(["a", "a"], ["a", "a"], scores=[0.2, 0.3])

    assert metrics == {
        "accuracy": 1.0,
        "precision": None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
        "log_loss": None,
    }


def test_multiclass_roc_auc_averages_the_classes_present() -> None:
    y_true, y_pred, probabilities = _multiclass_example()
    without_class_2 = y_true != 2

    metrics = classification_metrics(
        y_true[without_class_2], y_pred[without_class_2], probabilities[without_class_2], [0, 1, 2]
    )

    per_class = [
        sk.roc_auc_score(y_true[without_class_2] == label, probabilities[without_class_2, label])
        for label in (0, 1)
    ]
    assert metrics["roc_auc"] == pytest.approx(np.mean(per_class))


def test_regression_metrics_equal_sklearn_and_r2_needs_variance() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=50)
    y_pred = y_true + rng.normal(scale=0.3, size=50)

    metrics = regression_metrics(y_true, y_pred)

    assert metrics["mae"] == pytest.approx(sk.mean_absolute_error(y_true, y_pred))
    assert metrics["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y_true, y_pred)))
    assert metrics["r2"] == pytest.approx(sk.r2_score(y_true, y_pred))
    assert regression_metrics([2.0], [1.0]) == {"mae": 1.0, "rmse": 1.0, "r2": None}
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None


# -- labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (["1", 1, 1.0, " 1 ", "1.0", np.int64(1), True], ["1"] * 7),
        ([0.5, "0.50", "10", 10.0], ["0.5", "0.5", "10", "10"]),
        (["Yes", "no "], ["Yes", "no"]),
    ],
)
def test_normalise_labels(raw: list[Any], normalised: list[str]) -> None:
    assert normalise_labels(np.array(raw, dtype=object)).tolist() == normalised


def test_string_and_float_labels_compare_equal() -> None:
    metrics = classification_metrics(
        ["1", "0", "1", "0"], [1.0, 0.0, 1.0, 1.0], scores=[0.9, 0.2, 0.8, 0.6], classes=[0, 1]
    )

    assert metrics["accuracy"] == 0.75
    assert metrics["recall"] == 1.0
    assert metrics["roc_auc"] == 1.0


# -- slices -------------------------------------------------------------------


def test_sliced_scores_each_segment_like_its_own_window() -> None:
    y_true, y_pred, positive_score = _binary_example()
    segments = np.array(["eu", "us", "apac", "us"] * 50)

    by_region = sliced(y_true, y_pred, segments, positive_score, classes=["no", "yes"])

    assert list(by_region) == ["eu", "us", "apac"]
    for region, metrics in by_region.items():
        rows = segments == region
        assert metrics == classification_metrics(
            y_true[rows], y_pred[rows], positive_score[rows], classes=["no", "yes"]
        )


def test_sliced_drops_small_segments_and_keys_missing_values_none() -> None:
    segments = np.array([1.0, 1.0, 1.0, 2.0, np.nan, np.nan], dtype=object)
    segments[5] = None

    by_segment = sliced([1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], segments, min_rows=2)

    assert set(by_segment) == {1.0, None}
    assert by_segment[1.0]["accuracy"] == pytest.approx(2 / 3)
    assert by_segment[None]["accuracy"] == 0.5


def test_sliced_regression() -> None:
    by_store = sliced(
        [1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 4.0, 4.0], ["a", "a", "b", "b"], kind="regression"
    )

    assert by_store == {
        "a": {"mae": 0.0, "rmse": 0.0, "r2": 1.0},
        "b": {"mae": 1.0, "rmse": 1.0, "r2": 0.0},
    }


# -- malformed input ----------------------------------------------------------


def test_malformed_input_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="y_pred has 2 rows but y_true has 3"):
        classification_metrics([0, 1, 1], [0, 1])
    with pytest.raises(InvalidInput, match="do not fit 3 classes"):
        classification_metrics([0, 1], [0, 1], scores=[0.1, 0.9], classes=[0, 1, 2])
    with pytest.raises(InvalidInput, match="'7', which is not among classes"):
        classification_metrics([0, 7], [0, 1], scores=[0.1, 0.9], classes=[0, 1])
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        classification_metrics([0, 1], [0, 1], scores=[0.1, np.nan], classes=[0, 1])
    with pytest.raises(InvalidInput, match="never hold class '1'"):
        Calibration.fit([0.1, 0.2], [0, 0], classes=[0, 1])
    with pytest.raises(InvalidInput, match="not a stored calibration"):
        Calibration.from_dict({"classes": ["0", "1"]})


# -- calibration --------------------------------------------------------------


def _overconfident_scores(rows: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    """Scores whose logit is three times too large: labels follow expit(logit / 3)."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(scale=4.0, size=rows)
    y_true = (rng.random(rows) < expit(logit / 3)).astype(int)
    return expit(logit), y_true


def test_binary_calibration_round_trips_through_json_and_matches_isotonic() -> None:
    scores, y_true = _overconfident_scores(2000, seed=5)
    calibration = Calibration.fit(scores, y_true, classes=[0, 1])

    restored = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))

    fresh = np.r_[np.linspace(-0.5, 1.5, 101), scores[:50]]
    isotonic = IsotonicRegression(out_of_bounds="clip").fit(scores, y_true)
    assert restored == calibration
    np.testing.assert_allclose(restored.apply(fresh), isotonic.predict(fresh), atol=1e-12)
    two_columns = restored.apply(np.column_stack([1 - fresh, fresh]))
    np.testing.assert_allclose(two_columns[:, 1], restored.apply(fresh))
    np.testing.assert_allclose(two_columns.sum(axis=1), 1.0)


def test_multiclass_calibration_is_one_vs_rest_renormalised() -> None:
    features, y_true = make_classification(
        n_samples=1500, n_classes=3, n_informative=4, random_state=2
    )
    labels = np.array(["red", "green", "blue"])[y_true]
    model = LogisticRegression().fit(features[:1000], labels[:1000])
    reference_scores = model.predict_proba(features[1000:])
    calibration = Calibration.fit(reference_scores, labels[1000:], model.classes_)

    restored = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    calibrated = restored.apply(reference_scores)

    expected = np.column_stack(
        [
            IsotonicRegression(out_of_bounds="clip")
            .fit(reference_scores[:, column], labels[1000:] == label)
            .predict(reference_scores[:, column])
            for column, label in enumerate(model.classes_)
        ]
    )
    expected /= expected.sum(axis=1, keepdims=True)
    assert restored.classes == ("blue", "green", "red")
    np.testing.assert_allclose(calibrated, expected, atol=1e-12)


# -- confidence-based performance estimation ----------------------------------

# The true model: P(y = 1 | x) = expit(x @ TRUE_WEIGHTS + TRUE_BIAS) on every window.
TRUE_WEIGHTS = np.array([3.6, -2.7, 1.8, 0.0])
TRUE_BIAS = 0.4
# Fraction of each row's distance to the true decision boundary taken away per window.
SHIFTS = (0.0, 0.3, 0.5, 0.63, 0.75)


def _draw(rng: np.random.Generator, rows: int, shift: float) -> tuple[NDArray[Any], NDArray[Any]]:
    """Rows pulled ``shift`` of the way toward the boundary; labels from the true model."""
    features = rng.normal(size=(rows, len(TRUE_WEIGHTS)))
    direction = TRUE_WEIGHTS / np.linalg.norm(TRUE_WEIGHTS)
    distance = (features @ TRUE_WEIGHTS + TRUE_BIAS) / np.linalg.norm(TRUE_WEIGHTS)
    features -= shift * np.outer(distance, direction)
    labels = rng.random(rows) < expit(features @ TRUE_WEIGHTS + TRUE_BIAS)
    return features, labels.astype(int)


@dataclass(frozen=True)
class Tracked:
    """One metric over the shifted windows: realised, and estimated with and without calibration."""

    realised: NDArray[np.float64]
    estimated: NDArray[np.float64]
    uncalibrated: NDArray[np.float64]

    def __str__(self) -> str:
        return "; ".join(
            f"shift {shift}: realised {real:.3f} estimated {estimate:.3f} raw {raw:.3f}"
            for shift, real, estimate, raw in zip(
                SHIFTS, self.realised, self.estimated, self.uncalibrated, strict=True
            )
        )


def _track_shifted_windows(temperature: float = 1.0, seed: int = 7) -> dict[str, Tracked]:
    """Train on unshifted rows, calibrate on a held-out unshifted split, score each window.

    ``temperature`` > 1 multiplies the model's logit, making its probabilities overconfident.
    """
    rng = np.random.default_rng(seed)
    model = LogisticRegression().fit(*_draw(rng, 5000, shift=0.0))

    def scores(features: NDArray[Any]) -> NDArray[np.float64]:
        positive: NDArray[np.float64] = expit(temperature * model.decision_function(features))
        return positive

    reference_features, reference_labels = _draw(rng, 10_000, shift=0.0)
    calibration = Calibration.fit(scores(reference_features), reference_labels, model.classes_)
    windows: list[tuple[MetricValues, MetricValues, MetricValues]] = []
    for shift in SHIFTS:
        features, labels = _draw(rng, 8000, shift)
        window_scores = scores(features)
        realised = classification_metrics(labels, model.predict(features), window_scores, [0, 1])
        estimated = estimate_classification(window_scores, calibration)
        windows.append((realised, estimated, estimate_classification(window_scores)))
    return {
        metric: Tracked(*(np.array([w[i][metric] for w in windows], dtype=float) for i in range(3)))
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc")
    }


def test_cbpe_tracks_accuracy_and_auc_under_covariate_shift() -> None:
    tracked = _track_shifted_windows()

    for metric in ("accuracy", "roc_auc", "f1"):
        track = tracked[metric]
        assert np.all(np.abs(track.estimated - track.realised) < 0.04), f"{metric}: {track}"
        assert np.all(np.diff(track.realised) < 0), f"{metric}: {track}"
        assert np.all(np.diff(track.estimated) < 0), f"{metric}: {track}"
    accuracy = tracked["accuracy"].realised
    assert accuracy[0] > 0.87 and accuracy[-1] < 0.73, tracked["accuracy"]


def test_calibration_fixes_overconfident_scores() -> None:
    tracked = _track_shifted_windows(temperature=3.0)

    for metric in ("accuracy", "roc_auc"):
        track = tracked[metric]
        calibrated_error = np.abs(track.estimated - track.realised)
        raw_error = np.abs(track.uncalibrated - track.realised)
        assert np.all(calibrated_error < 0.04), f"{metric}: {track}"
        assert np.all(calibrated_error < raw_error), f"{metric}: {track}"
    accuracy = tracked["accuracy"]
    assert np.all(accuracy.uncalibrated - accuracy.realised > 0.05), accuracy


def test_cbpe_multiclass_expected_accuracy_matches_realised() -> None:
    features, y_true = make_classification(
        n_samples=9000, n_classes=3, n_informative=4, class_sep=0.8, random_state=4
    )
    model = LogisticRegression().fit(features[:3000], y_true[:3000])
    calibration = Calibration.fit(
        model.predict_proba(features[3000:6000]), y_true[3000:6000], model.classes_
    )
    window_scores = model.predict_proba(features[6000:])

    realised = classification_metrics(
        y_true[6000:], model.predict(features[6000:]), window_scores, model.classes_
    )
    estimated = estimate_classification(window_scores, calibration)

    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert estimated[metric] == pytest.approx(realised[metric], abs=0.03), metric


def test_estimate_is_none_when_no_positive_is_expected() -> None:
    estimated = estimate_classification(np.zeros(10))

    assert estimated["accuracy"] == 1.0
    assert estimated["roc_auc"] is None
    assert estimated["precision"] is None
    assert estimated["recall"] is None
