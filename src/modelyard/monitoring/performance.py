"""Model performance over windows of a prediction log: realised metrics and CBPE estimates.

Monitors compare windows of a prediction log; this module scores one window at a
time, as plain functions over NumPy arrays with no I/O:

* ``classification_metrics`` and ``regression_metrics`` score a window whose labels
  have arrived; ``sliced`` does the same per value of a segment column.
* ``calibration.Calibration`` and ``estimation.estimate_classification``, in their
  own modules, estimate a classifier's performance on a window whose labels have
  *not* arrived yet, from its scores alone (confidence-based performance
  estimation, CBPE); they share the label and score helpers public here.

A metric that cannot be computed on a window (an empty window, ROC AUC with one
class present, precision when nothing was predicted positive, no scores) is
``None``: never an exception and never a warning. Malformed input (lengths that
differ, a score matrix with the wrong number of columns) raises ``InvalidInput``.

Labels are compared as text after ``normalise_labels``, so ``"1"``, ``1`` and
``1.0`` are the same class, on both sides. ``classes`` is the model's class order
(scikit-learn's ``classes_``): column ``j`` of a score matrix is the probability of
``classes[j]``, and in a binary problem ``classes[1]`` is the positive class.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelyard.errors import InvalidInput

__all__ = [
    "Floats",
    "MetricValues",
    "as_column",
    "class_indices",
    "classification_metrics",
    "confusion_counts",
    "known_classes",
    "macro_auc",
    "normalise_labels",
    "precision_recall_f1",
    "probability_matrix",
    "regression_metrics",
    "require_same_length",
    "score_columns",
    "sliced",
]

MetricValues: TypeAlias = dict[str, float | None]
Labels: TypeAlias = NDArray[np.str_]
Floats: TypeAlias = NDArray[np.float64]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")

# Probabilities are clipped to [eps, 1 - eps] before the log, as scikit-learn does.
_LOG_LOSS_EPS = float(np.finfo(np.float64).eps)


# -- labels -------------------------------------------------------------------


def normalise_labels(labels: ArrayLike) -> Labels:
    """Labels as canonical text, so that ``"1"``, ``1``, ``1.0`` and ``" 1 "`` compare equal.

    Integers, integral floats and text that parses as one become the decimal integer
    (``"01"`` -> ``"1"``, booleans -> ``"1"``/``"0"``); other numbers and numeric text
    become Python's shortest float text (``"0.50"`` -> ``"0.5"``); any other text is
    kept, stripped of surrounding spaces, with its case.

        >>> normalise_labels(["1", 1.0, 2, "yes "]).tolist()
        ['1', '1', '2', 'yes']
    """
    array = np.asarray(labels)
    if array.dtype.kind in "iu":
        return array.astype(str)
    return np.array([_normalise_label(value) for value in array.ravel().tolist()], dtype=str)


def _normalise_label(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _float_label(float(value))
    text = str(value).strip()
    try:
        return str(int(text))
    except ValueError:
        pass
    try:
        return _float_label(float(text))
    except ValueError:
        return text


def _float_label(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _natural_order(labels: Sequence[str]) -> list[str]:
    """Numeric labels by value (so "9" < "10"), then the others alphabetically."""

    def key(label: str) -> tuple[int, float, str]:
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)

    return sorted(set(labels), key=key)


# -- input checks -------------------------------------------------------------


def as_column(values: ArrayLike, name: str) -> NDArray[Any]:
    """``values`` as a 1-D array; ``InvalidInput`` naming ``name`` when it is not."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def require_same_length(rows: int, **arrays: NDArray[Any] | None) -> None:
    """Raise ``InvalidInput`` unless every array given (and not None) has ``rows`` rows."""
    for name, array in arrays.items():
        if array is not None and len(array) != rows:
            raise InvalidInput(f"{name} has {len(array)} rows but y_true has {rows}")


def probability_matrix(scores: ArrayLike, n_classes: int) -> Floats:
    """Scores as an [n, k] matrix: a 1-D binary score is P(positive), i.e. column 1."""
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.size == 0:
        return np.empty((0, n_classes))
    if matrix.ndim == 1 and n_classes == 2:
        matrix = np.column_stack([1.0 - matrix, matrix])
    if matrix.ndim != 2 or matrix.shape[1] != n_classes:
        raise InvalidInput(
            f"scores of shape {matrix.shape} do not fit {n_classes} classes: "
            f"expected [n, {n_classes}]" + (" or [n]" if n_classes == 2 else "")
        )
    if not np.isfinite(matrix).all():
        raise InvalidInput("scores hold NaN or infinite values")
    return matrix


def score_columns(scores: ArrayLike) -> int:
    """How many classes a score array covers: 2 for a 1-D binary score."""
    shape = np.shape(scores)
    return 2 if len(shape) == 1 else int(shape[-1])


def known_classes(classes: ArrayLike | None, *observed: Labels) -> list[str]:
    """``classes`` as normalised labels, else the ``observed`` labels in natural order."""
    if classes is None:
        return _natural_order(np.concatenate(observed).tolist())
    known = normalise_labels(classes).tolist()
    if len(known) < 2 or len(set(known)) != len(known):
        raise InvalidInput(f"classes must name two or more distinct labels, got {known}")
    return list(known)


def class_indices(labels: Labels, classes: Sequence[str], name: str) -> NDArray[np.intp]:
    """Each label's position in ``classes``; ``InvalidInput`` for a label not among them."""
    position = {label: index for index, label in enumerate(classes)}
    unknown = sorted(set(labels.tolist()) - position.keys())
    if unknown:
        raise InvalidInput(f"{name} holds {unknown[0]!r}, which is not among classes {classes}")
    return np.array([position[label] for label in labels.tolist()], dtype=np.intp)


# -- realised classification metrics ------------------------------------------


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    scores: ArrayLike | None = None,
    classes: ArrayLike | None = None,
) -> MetricValues:
    """Accuracy, precision, recall, F1, ROC AUC and log loss of one labelled window.

    Binary problems score the positive class ``classes[1]``; multiclass problems
    take the macro average over the classes for which a metric is defined. ROC AUC
    and log loss need ``scores``: for binary, P(positive) as ``[n]`` or the class
    probabilities as ``[n, 2]``; for multiclass, ``[n, k]`` in ``classes`` order.
    Multiclass ROC AUC is one-vs-rest, averaged over the classes present in the
    window. Pass ``classes`` (the model's ``classes_``) whenever you can: without
    it they are the labels seen in the window, in natural order, and a window
    holding a single class gets no precision, recall, F1, ROC AUC or log loss.

        >>> metrics = classification_metrics([0, 1, 1, 0], ["0", "1", "0", "0"],
        ...                                  scores=[0.2, 0.9, 0.4, 0.1], classes=[0, 1])
        >>> metrics["accuracy"], metrics["recall"], metrics["roc_auc"]
        (0.75, 0.5, 1.0)
    """
    truth = normalise_labels(as_column(y_true, "y_true"))
    predicted = normalise_labels(as_column(y_pred, "y_pred"))
    require_same_length(len(truth), y_pred=predicted)
    known = known_classes(classes, truth, predicted)
    matrix = _window_scores(scores, known, len(truth), explicit=classes is not None)
    return _score_classification(truth, predicted, matrix, known)


def _window_scores(
    scores: ArrayLike | None, classes: list[str], rows: int, *, explicit: bool
) -> Floats | None:
    if scores is None:
        return None
    columns = score_columns(scores)
    if not explicit and len(classes) < columns:
        return None  # the window lacks a class, so columns cannot be matched to labels
    matrix = probability_matrix(scores, len(classes))
    require_same_length(rows, scores=matrix)
    return matrix


def _score_classification(
    truth: Labels, predicted: Labels, scores: Floats | None, classes: list[str]
) -> MetricValues:
    metrics: MetricValues = dict.fromkeys(CLASSIFICATION_METRICS)
    if len(truth) == 0:
        return metrics
    metrics["accuracy"] = float(np.mean(truth == predicted))
    if len(classes) < 2:
        return metrics
    scored = classes[1:] if len(classes) == 2 else classes
    counts = [confusion_counts(truth == label, predicted == label) for label in scored]
    metrics.update(precision_recall_f1(counts))
    if scores is not None:
        truth_index = class_indices(truth, classes, "y_true")
        metrics["roc_auc"] = macro_auc(scores, np.eye(len(classes))[truth_index])
        metrics["log_loss"] = _log_loss(scores, truth_index)
    return metrics


def confusion_counts(actual: NDArray[Any], predicted: NDArray[Any]) -> tuple[float, float, float]:
    """True positives, false positives and false negatives; weights may be fractional."""
    actual = actual.astype(np.float64)
    predicted = predicted.astype(np.float64)
    return (
        float(np.sum(actual * predicted)),
        float(np.sum((1.0 - actual) * predicted)),
        float(np.sum(actual * (1.0 - predicted))),
    )


def precision_recall_f1(counts: Sequence[tuple[float, float, float]]) -> MetricValues:
    """Precision, recall and F1 from (tp, fp, fn) counts, averaged over the classes."""
    precision = [_ratio(tp, tp + fp) for tp, fp, _ in counts]
    recall = [_ratio(tp, tp + fn) for tp, _, fn in counts]
    f1 = [_ratio(2 * tp, 2 * tp + fp + fn) for tp, fp, fn in counts]
    return {"precision": _mean(precision), "recall": _mean(recall), "f1": _mean(f1)}


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def macro_auc(ranking: Floats, positive_weights: Floats) -> float | None:
    """Positive-class AUC for binary, one-vs-rest macro AUC for multiclass."""
    if ranking.shape[1] == 2:
        return _weighted_auc(ranking[:, 1], positive_weights[:, 1])
    per_class = [
        _weighted_auc(ranking[:, column], positive_weights[:, column])
        for column in range(ranking.shape[1])
    ]
    return _mean(per_class)


def _weighted_auc(ranking: Floats, positive_weight: Floats) -> float | None:
    """Area under the ROC curve where each row is ``positive_weight`` of a positive.

    With 0/1 weights this is the ordinary ROC AUC (ties count half); with
    probabilities it is the AUC expected from fractional positives and negatives.
    """
    positives = float(positive_weight.sum())
    negatives = float((1.0 - positive_weight).sum())
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-ranking, kind="mergesort")
    ranked, weight = ranking[order], positive_weight[order]
    last_of_tie = np.r_[np.diff(ranked) != 0, True]
    true_positive_rate = np.r_[0.0, np.cumsum(weight)[last_of_tie]] / positives
    false_positive_rate = np.r_[0.0, np.cumsum(1.0 - weight)[last_of_tie]] / negatives
    heights = (true_positive_rate[1:] + true_positive_rate[:-1]) / 2
    return float(np.sum(np.diff(false_positive_rate) * heights))


def _log_loss(scores: Floats, truth_index: NDArray[np.intp]) -> float:
    given_to_truth = scores[np.arange(len(truth_index)), truth_index]
    clipped = np.clip(given_to_truth, _LOG_LOSS_EPS, 1.0 - _LOG_LOSS_EPS)
    return float(-np.mean(np.log(clipped)))


# -- realised regression metrics ----------------------------------------------


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> MetricValues:
    """Mean absolute error, root mean squared error and R² of one labelled window.

    R² is ``None`` for fewer than two rows or when ``y_true`` does not vary; every
    metric is ``None`` on an empty window or when a value is NaN.

        >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
        {'mae': 0.666..., 'rmse': 1.154..., 'r2': -1.0}
    """
    truth = _numbers(y_true, "y_true")
    predicted = _numbers(y_pred, "y_pred")
    require_same_length(len(truth), y_pred=predicted)
    metrics: MetricValues = dict.fromkeys(REGRESSION_METRICS)
    if len(truth) == 0:
        return metrics
    errors = truth - predicted
    metrics["mae"] = _finite(np.mean(np.abs(errors)))
    metrics["rmse"] = _finite(np.sqrt(np.mean(errors**2)))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if len(truth) >= 2 and total > 0:
        metrics["r2"] = _finite(1.0 - np.sum(errors**2) / total)
    return metrics


def _numbers(values: ArrayLike, name: str) -> Floats:
    try:
        return as_column(values, name).astype(np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{name} must hold numbers: {error}") from None


def _finite(value: np.floating[Any] | float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


# -- slices -------------------------------------------------------------------


def sliced(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    segments: ArrayLike,
    scores: ArrayLike | None = None,
    kind: Literal["classification", "regression"] = "classification",
    min_rows: int = 1,
    *,
    classes: ArrayLike | None = None,
) -> dict[Hashable, MetricValues]:
    """The window's metrics per value of a segment column, in order of first appearance.

    Segments with fewer than ``min_rows`` rows are left out; NaN and None segment
    values form one segment keyed ``None``. For classification, ``classes`` left
    unset is derived once from the whole window, so every segment reads the score
    columns and the positive class the same way. ``scores`` is ignored for
    regression.

        >>> by_country = sliced([1, 0, 1, 1], [1, 0, 0, 1], ["fr", "fr", "de", "de"])
        >>> by_country["fr"]["accuracy"], by_country["de"]["accuracy"]
        (1.0, 0.5)
    """
    if kind not in ("classification", "regression"):
        raise InvalidInput(f"kind must be 'classification' or 'regression', got {kind!r}")
    segment_values = as_column(segments, "segments")
    rows_by_segment = {
        segment: rows
        for segment, rows in _rows_by_segment(segment_values).items()
        if len(rows) >= min_rows
    }
    if kind == "regression":
        return _sliced_regression(y_true, y_pred, segment_values, rows_by_segment)
    return _sliced_classification(y_true, y_pred, scores, classes, segment_values, rows_by_segment)


def _sliced_regression(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    segments: NDArray[Any],
    rows_by_segment: dict[Hashable, NDArray[np.intp]],
) -> dict[Hashable, MetricValues]:
    truth, predicted = _numbers(y_true, "y_true"), _numbers(y_pred, "y_pred")
    require_same_length(len(truth), y_pred=predicted, segments=segments)
    return {
        segment: regression_metrics(truth[rows], predicted[rows])
        for segment, rows in rows_by_segment.items()
    }


def _sliced_classification(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    scores: ArrayLike | None,
    classes: ArrayLike | None,
    segments: NDArray[Any],
    rows_by_segment: dict[Hashable, NDArray[np.intp]],
) -> dict[Hashable, MetricValues]:
    truth = normalise_labels(as_column(y_true, "y_true"))
    predicted = normalise_labels(as_column(y_pred, "y_pred"))
    require_same_length(len(truth), y_pred=predicted, segments=segments)
    known = known_classes(classes, truth, predicted)
    matrix = _window_scores(scores, known, len(truth), explicit=classes is not None)
    return {
        segment: _score_classification(
            truth[rows], predicted[rows], None if matrix is None else matrix[rows], known
        )
        for segment, rows in rows_by_segment.items()
    }


def _rows_by_segment(segments: NDArray[Any]) -> dict[Hashable, NDArray[np.intp]]:
    rows: dict[Hashable, list[int]] = {}
    for index, value in enumerate(segments.tolist()):
        missing = value is None or (isinstance(value, float | np.floating) and math.isnan(value))
        rows.setdefault(None if missing else value, []).append(index)
    return {segment: np.array(indices, dtype=np.intp) for segment, indices in rows.items()}
