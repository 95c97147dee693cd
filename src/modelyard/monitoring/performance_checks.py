"""A window's performance checks: realised metrics once labels arrive, and their estimate.

Realised metrics are computed on the window's labelled rows (overall, and per value
of the check's segment column); the estimate (CBPE) comes from the scores alone.
Each figure is graded against the check's thresholds, or else its drop from the
reference's own figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.monitors import LOWER_IS_BETTER, PerformanceCheck, Threshold
from modelyard.monitoring.drift import CRITICAL, OK, WARN
from modelyard.monitoring.profile import Profile
from modelyard.monitoring.reference import CLASSIFICATION, Reference
from modelyard.monitoring.results import Result, json_float
from modelyard.monitoring.window_data import WindowData, categorical_profile, float_or_none

if TYPE_CHECKING:
    import pyarrow as pa


def realised_performance(
    check: PerformanceCheck, window: WindowData, reference: Reference
) -> list[Result]:
    """The labelled count, then each metric on the labelled rows, overall and per segment."""
    import pyarrow as pa

    from modelyard.monitoring import performance

    labelled = window.table.filter(window.table.column("label").is_valid())
    count = labelled.num_rows
    results = [Result("performance", "labelled", float(count), OK, version=reference.ref)]
    if count < max(check.min_labels, 1):
        return results
    groups: list[tuple[str, pa.Table]] = [("", labelled)]
    if check.segment:
        part = WindowData(labelled, window.start, window.end, window.kind)
        values, _, present = part.inputs(
            Profile(0, {check.segment: categorical_profile(check.segment)})
        )
        if check.segment in present:
            keys = values.column(check.segment).to_pylist()
            for key in sorted({k for k in keys if k is not None}):
                mask = pa.array([k == key for k in keys])
                groups.append((f"{check.segment}={key}", labelled.filter(mask)))
    for column, rows in groups:
        metrics = _realised(rows, reference, performance)
        for metric in check.metrics:
            if metric not in metrics:
                continue
            value = metrics[metric]
            severity = _graded(check, metric, value, reference) if value is not None else OK
            results.append(
                Result(
                    "performance",
                    metric,
                    json_float(value),
                    severity,
                    column,
                    reference.ref,
                    {"labelled": rows.num_rows, "reference": reference.performance.get(metric)},
                )
            )
    return results


def _realised(rows: pa.Table, reference: Reference, performance: Any) -> dict[str, float | None]:
    part = WindowData(rows, 0, 0, "")
    if reference.task == CLASSIFICATION:
        truth = np.asarray(rows.column("label").to_pylist(), dtype=object)
        predicted = np.asarray(rows.column("output").to_pylist(), dtype=object)
        result: dict[str, float | None] = performance.classification_metrics(
            truth, predicted, part.scores(), reference.classes
        )
        return result
    truth_values = np.asarray(
        [float_or_none(v) for v in rows.column("label").to_pylist()], dtype=np.float64
    )
    predicted_values = np.asarray(
        [float_or_none(v) for v in rows.column("output").to_pylist()], dtype=np.float64
    )
    regression: dict[str, float | None] = performance.regression_metrics(
        truth_values, predicted_values
    )
    return regression


def estimated_performance(
    check: PerformanceCheck, window: WindowData, reference: Reference
) -> list[Result]:
    """Each metric's CBPE estimate from the window's scores (calibrated by the reference's)."""
    from modelyard.monitoring.calibration import Calibration
    from modelyard.monitoring.estimation import estimate_classification

    matrix = window.scores()
    if matrix is None or not len(matrix):
        return []
    calibration = Calibration.from_dict(reference.calibration) if reference.calibration else None
    estimate = estimate_classification(matrix, calibration)
    results = []
    for metric in check.metrics:
        value = estimate.get(metric)
        if metric not in estimate:
            continue
        severity = _graded(check, metric, value, reference) if value is not None else OK
        results.append(
            Result(
                "estimated_performance",
                metric,
                json_float(value),
                severity,
                "",
                reference.ref,
                {
                    "rows": len(matrix),
                    "reference": reference.performance.get(metric),
                    "calibrated": calibration is not None,
                },
            )
        )
    return results


def _graded(check: PerformanceCheck, metric: str, value: float, reference: Reference) -> str:
    """Absolute thresholds when given; else the drop from the reference's figure."""
    lower_better = metric in LOWER_IS_BETTER
    limits = check.thresholds.get(metric)
    if limits is None or (limits.warn is None and limits.critical is None):
        base = reference.performance.get(metric)
        if base is None:
            return OK
        if lower_better:
            limits = Threshold(base * (1 + check.drop_warn), base * (1 + check.drop_critical))
        else:
            limits = Threshold(base - check.drop_warn, base - check.drop_critical)
    if lower_better:
        if limits.critical is not None and value > limits.critical:
            return CRITICAL
        return WARN if limits.warn is not None and value > limits.warn else OK
    if limits.critical is not None and value < limits.critical:
        return CRITICAL
    return WARN if limits.warn is not None and value < limits.warn else OK
