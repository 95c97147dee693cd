"""Calibration of a classifier's scores, fitted by isotonic regression on reference data.

``Calibration`` maps a classifier's scores to probabilities that match outcome
frequencies; ``estimation.estimate_classification`` uses it to estimate performance
on a window whose labels have not arrived yet. Labels and score matrices follow
``performance``'s conventions (``normalise_labels``, ``classes`` order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from modelyard.errors import InvalidInput
from modelyard.monitoring.performance import (
    Floats,
    as_column,
    class_indices,
    known_classes,
    normalise_labels,
    probability_matrix,
    require_same_length,
)
from modelyard.types import JSON

__all__ = ["Calibration", "IsotonicMap"]


@dataclass(frozen=True)
class IsotonicMap:
    """A fitted isotonic regression as its thresholds: scores in, probabilities out.

    Between thresholds it interpolates linearly and outside them it clips, exactly
    as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts.

        >>> IsotonicMap(scores=(0.2, 0.8), probabilities=(0.1, 0.7)).apply(np.array([0.5, 1.0]))
        array([0.4, 0.7])
    """

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.scores or len(self.scores) != len(self.probabilities):
            raise InvalidInput(
                f"an isotonic map needs as many probabilities as scores, and at least one: "
                f"got {len(self.scores)} scores and {len(self.probabilities)} probabilities"
            )

    def apply(self, scores: Floats) -> Floats:
        """Calibrated probabilities of ``scores``."""
        return np.interp(scores, self.scores, self.probabilities)


@dataclass(frozen=True)
class Calibration:
    """Maps a classifier's scores to probabilities that match outcome frequencies.

    Fitted by isotonic regression on reference data (the model's scores on labelled
    held-out or training rows). Binary problems keep one map, for the positive
    class ``classes[1]``; multiclass problems keep one map per class, one-vs-rest,
    and renormalise each row to sum to 1. The fitted maps are plain floats, so a
    calibration travels as JSON and applies without scikit-learn.

        >>> calibration = Calibration.fit(reference_scores, reference_labels, model.classes_)
        >>> stored = json.dumps(calibration.to_dict())
        >>> Calibration.from_dict(json.loads(stored)).apply(current_scores)
    """

    classes: tuple[str, ...]
    maps: tuple[IsotonicMap, ...]

    def __post_init__(self) -> None:
        expected = 1 if len(self.classes) == 2 else len(self.classes)
        if len(self.classes) < 2 or len(self.maps) != expected:
            raise InvalidInput(
                f"a calibration of {len(self.classes)} classes needs {expected} maps, "
                f"got {len(self.maps)}"
            )

    @classmethod
    def fit(cls, scores: ArrayLike, y_true: ArrayLike, classes: ArrayLike) -> Calibration:
        """Fit on reference ``scores`` (``[n]`` or ``[n, k]``, ``classes`` order) and labels."""
        known = known_classes(classes)
        truth = normalise_labels(as_column(y_true, "y_true"))
        matrix = probability_matrix(scores, len(known))
        require_same_length(len(truth), scores=matrix)
        outcomes = np.eye(len(known))[class_indices(truth, known, "y_true")]
        missing = [label for column, label in enumerate(known) if not outcomes[:, column].any()]
        if missing:
            raise InvalidInput(f"the reference labels never hold class {missing[0]!r}")
        columns = [1] if len(known) == 2 else range(len(known))
        maps = tuple(_fit_isotonic(matrix[:, column], outcomes[:, column]) for column in columns)
        return cls(classes=tuple(known), maps=maps)

    def apply(self, scores: ArrayLike) -> Floats:
        """Calibrated probabilities, in the shape of ``scores`` (``[n]`` or ``[n, k]``)."""
        matrix = probability_matrix(scores, len(self.classes))
        if len(self.classes) == 2:
            positive = self.maps[0].apply(matrix[:, 1])
            return positive if np.ndim(scores) == 1 else np.column_stack([1.0 - positive, positive])
        calibrated = np.column_stack(
            [mapping.apply(matrix[:, column]) for column, mapping in enumerate(self.maps)]
        )
        return _renormalised(calibrated)

    def to_dict(self) -> JSON:
        """The calibration as JSON-ready lists of floats; ``from_dict`` reads it back."""
        return {
            "classes": list(self.classes),
            "maps": [
                {"scores": list(mapping.scores), "probabilities": list(mapping.probabilities)}
                for mapping in self.maps
            ],
        }

    @classmethod
    def from_dict(cls, data: JSON) -> Calibration:
        """The calibration ``to_dict`` wrote."""
        try:
            maps = tuple(
                IsotonicMap(
                    scores=tuple(float(score) for score in mapping["scores"]),
                    probabilities=tuple(float(p) for p in mapping["probabilities"]),
                )
                for mapping in data["maps"]
            )
            classes = tuple(str(label) for label in data["classes"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"not a stored calibration: {error!r}") from None
        return cls(classes=classes, maps=maps)


def _fit_isotonic(scores: Floats, outcomes: Floats) -> IsotonicMap:
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, outcomes)
    return IsotonicMap(
        scores=tuple(float(score) for score in fitted.X_thresholds_),
        probabilities=tuple(float(p) for p in fitted.y_thresholds_),
    )


def _renormalised(probabilities: Floats) -> Floats:
    """Rows scaled to sum to 1; a row every map sent to 0 becomes uniform."""
    totals = probabilities.sum(axis=1, keepdims=True)
    uniform = np.full_like(probabilities, 1.0 / probabilities.shape[1])
    safe_totals = np.where(totals > 0, totals, 1.0)
    return np.where(totals > 0, probabilities / safe_totals, uniform)
