"""Confidence-based performance estimation (CBPE) of a classifier's unlabelled window.

``estimate_classification`` estimates a classifier's performance on a window whose
labels have *not* arrived yet, from its scores alone, calibrated by a
``calibration.Calibration`` fitted on reference data.

CBPE assumes no concept drift: the inputs' distribution may shift, but P(y | x)
must stay what it was on the reference data the calibration was fitted on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelyard.monitoring.calibration import Calibration
from modelyard.monitoring.performance import (
    Floats,
    MetricValues,
    confusion_counts,
    macro_auc,
    precision_recall_f1,
    probability_matrix,
    score_columns,
)

__all__ = ["estimate_classification"]

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def estimate_classification(
    scores: ArrayLike,
    calibration: Calibration | None = None,
    threshold: float = 0.5,
) -> MetricValues:
    """Expected accuracy, precision, recall, F1 and ROC AUC of an unlabelled window.

    The model's prediction comes from its raw ``scores`` (binary: positive when
    P(positive) >= ``threshold``; multiclass: the highest score); the chance that
    each prediction is right comes from the calibrated scores. Expected accuracy
    is the mean of that chance; precision, recall and F1 come from the expected
    confusion matrix; ROC AUC ranks rows by raw score and counts each row as a
    fractional positive (its calibrated probability) and negative (the rest).
    Without ``calibration`` the raw scores are taken as calibrated. Keys match
    ``classification_metrics``, so estimates and realised values compare directly.

        >>> calibration = Calibration.fit(reference_scores, reference_labels, [0, 1])
        >>> estimate_classification(current_scores, calibration)["accuracy"]
        0.87...
    """
    columns = len(calibration.classes) if calibration is not None else score_columns(scores)
    raw = probability_matrix(scores, columns)
    metrics: MetricValues = dict.fromkeys(ESTIMATED_METRICS)
    if len(raw) == 0:
        return metrics
    calibrated = raw if calibration is None else calibration.apply(raw)
    predicted = _predicted_columns(raw, threshold)
    metrics["accuracy"] = float(np.mean(calibrated[np.arange(len(raw)), predicted]))
    predicted_onehot = np.eye(columns)[predicted]
    scored = [1] if columns == 2 else range(columns)
    counts = [confusion_counts(calibrated[:, c], predicted_onehot[:, c]) for c in scored]
    metrics.update(precision_recall_f1(counts))
    metrics["roc_auc"] = macro_auc(raw, calibrated)
    return metrics


def _predicted_columns(scores: Floats, threshold: float) -> NDArray[np.intp]:
    if scores.shape[1] == 2:
        positive: NDArray[np.intp] = (scores[:, 1] >= threshold).astype(np.intp)
        return positive
    highest: NDArray[np.intp] = np.argmax(scores, axis=1).astype(np.intp)
    return highest
