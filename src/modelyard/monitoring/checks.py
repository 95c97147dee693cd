"""One window of an endpoint's primary traffic, checked against its references.

``evaluate`` runs every enabled check of a monitor's spec on a ``WindowData``
(``window_data.py``) and returns ``Result`` rows (``results.py``): one number per
(check, column, metric, version), with a severity and the details a reviewer
needs. Input drift and data quality compare every row with the reference of the
version that answered most of them (inputs do not depend on the version);
outputs, performance and its estimate are per version. Performance, skew, service
levels and custom metrics are checked in ``performance_checks.py``, ``skew.py``,
``slo.py`` and ``custom.py``.

When the version's feature importance is known (``monitoring/importance.py``), drifted
features are ranked by it, and drift only in unimportant features (each under
``UNIMPORTANT_SHARE`` of the total) is a warning, not a page (``weigh``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelyard.domain.monitors import Spec
from modelyard.monitoring.custom import custom_metric
from modelyard.monitoring.drift import (
    CRITICAL,
    WARN,
    ColumnDrift,
    ColumnRule,
    Observed,
    column_drift,
    holm,
    observe,
    worst,
)
from modelyard.monitoring.performance_checks import estimated_performance, realised_performance
from modelyard.monitoring.quality import quality
from modelyard.monitoring.reference import CLASSIFICATION, Reference
from modelyard.monitoring.results import Result, json_float
from modelyard.monitoring.skew import skew
from modelyard.monitoring.slo import service_levels
from modelyard.monitoring.window_data import WindowData

if TYPE_CHECKING:
    import pyarrow as pa

# a drifted feature carrying less than this share of its version's total importance
# (mean |SHAP| on the training data) raises a warning at most, never a critical alert
UNIMPORTANT_SHARE = 0.05


def evaluate(
    spec: Spec,
    window: WindowData,
    references: Mapping[tuple[str, int], Reference],
    *,
    skew_rows: Callable[[Reference, str, str | None], pa.Table] | None = None,
    predictions: Callable[[Any], None] | None = None,
) -> tuple[list[Result], dict[str, Any]]:
    """Every enabled check of ``spec`` on ``window``: (results, summary for the window).

    ``references`` holds the reference of each version that answered (a version
    without one is skipped by the checks that need it, and said so in the summary).
    """
    results: list[Result] = []
    summary: dict[str, Any] = {"rows": window.rows, "labelled": window.labelled}
    versions = window.versions()
    summary["versions"] = [{"version": f"{m}/{v}", "rows": n} for m, v, n in versions]
    missing = [f"{m}/{v}" for m, v, _ in versions if (m, v) not in references]
    if missing:
        summary["without_reference"] = missing
    checks = spec.checks
    main = next((references[(m, v)] for m, v, _ in versions if (m, v) in references), None)
    if main is not None and (checks.drift.enabled or checks.quality.enabled):
        results += _inputs(spec, window, main, summary)
    if checks.skew is not None and main is not None and skew_rows is not None:
        results += skew(spec, window, main, skew_rows)
    for model, version, _ in versions:
        reference = references.get((model, version))
        if reference is None:
            continue
        part = window.of_version(model, version) if len(versions) > 1 else window
        results += _per_version(spec, part, reference, summary)
    if checks.technical.enabled:
        results += service_levels(spec, window)
    for metric in checks.custom:
        results.append(custom_metric(metric, window, predictions))
    summary["severity"] = worst(r.severity for r in results)
    return results, summary


def _inputs(
    spec: Spec, window: WindowData, reference: Reference, summary: dict[str, Any]
) -> list[Result]:
    profile = reference.inputs
    values, unreadable, present = window.inputs(profile)
    observed: dict[str, Observed] = {}
    for name, column in profile.columns.items():
        if name in present:
            seen = observe(column, values.column(name))
            seen.unreadable = unreadable.get(name, 0)
            seen.missing = max(0, seen.missing - seen.unreadable)
            observed[name] = seen
    results: list[Result] = []
    if spec.checks.quality.enabled:
        for finding in quality(profile, observed, present, spec.checks.quality.thresholds):
            results.append(
                Result(
                    "quality",
                    finding.check,
                    finding.value,
                    finding.severity,
                    finding.column,
                    details=_clean(finding.detail),
                )
            )
    if spec.checks.drift.enabled:
        drifted = []
        names = spec.checks.drift.columns or list(profile.columns)
        outcomes = []
        for name in names:
            if name not in observed:
                continue
            rule = spec.checks.drift.rules.get(name)
            outcomes.append(
                column_drift(
                    profile.columns[name],
                    observed[name],
                    rule.method if rule else None,
                    rule.warn if rule else None,
                    rule.critical if rule else None,
                )
            )
        importance = reference.importance
        for outcome in (weigh(o, importance) for o in holm(outcomes)):
            if outcome.drifted:
                drifted.append(
                    {
                        "column": outcome.column,
                        "method": outcome.method,
                        "value": round(outcome.value, 4),
                        "severity": outcome.severity,
                        **_importance_of(outcome.column, importance),
                    }
                )
            results.append(
                Result(
                    "drift",
                    outcome.method,
                    json_float(outcome.value),
                    outcome.severity,
                    outcome.column,
                    details=_clean(
                        {
                            "p_value": outcome.p_value,
                            "warn": outcome.warn,
                            "critical": outcome.critical,
                            **outcome.detail,
                            **_importance_of(outcome.column, importance),
                        }
                    ),
                )
            )
        if importance is not None:  # the features the model leans on most first
            drifted.sort(key=lambda d: -float(d.get("importance") or 0.0))
        summary["drifted"] = drifted
        summary["drift_reference"] = reference.ref
    summary["observed"] = {n: o.to_dict() for n, o in observed.items()}
    return results


def weigh(outcome: ColumnDrift, importance: Mapping[str, float] | None) -> ColumnDrift:
    """``outcome`` as the model feels it: critical drift in a feature carrying less than
    ``UNIMPORTANT_SHARE`` of the version's importance is a warning, not a page."""
    if importance is None or outcome.severity != CRITICAL:
        return outcome
    share = importance.get(outcome.column)
    if share is None or share >= UNIMPORTANT_SHARE:
        return outcome
    why = (
        f"critical drift, but '{outcome.column}' carries {share:.1%} of the model's "
        f"importance (under {UNIMPORTANT_SHARE:.0%}): a warning"
    )
    return replace(outcome, severity=WARN, detail={**outcome.detail, "downgraded": why})


def _importance_of(column: str, importance: Mapping[str, float] | None) -> dict[str, Any]:
    if importance is None or column not in importance:
        return {}
    return {"importance": round(importance[column], 4)}


def _per_version(
    spec: Spec, window: WindowData, reference: Reference, summary: dict[str, Any]
) -> list[Result]:
    results: list[Result] = []
    outputs = window.outputs(reference)
    checks = spec.checks
    if checks.output_drift.enabled:
        outcomes = []
        for name, column in reference.outputs.columns.items():
            if name not in outputs:
                continue
            seen = observe(column, outputs[name])
            rule = checks.output_drift.rules.get(name, ColumnRule())
            outcomes.append(column_drift(column, seen, rule.method, rule.warn, rule.critical))
            summary.setdefault("observed_outputs", {})[f"{reference.ref}:{name}"] = seen.to_dict()
        for outcome in holm(outcomes):
            details = {
                "p_value": outcome.p_value,
                "warn": outcome.warn,
                "critical": outcome.critical,
                **outcome.detail,
            }
            results.append(
                Result(
                    "output_drift",
                    outcome.method,
                    json_float(outcome.value),
                    outcome.severity,
                    outcome.column,
                    reference.ref,
                    _clean(details),
                )
            )
    if checks.performance.enabled:
        results += realised_performance(checks.performance, window, reference)
    if checks.estimated_performance.enabled and reference.task == CLASSIFICATION:
        results += estimated_performance(checks.estimated_performance, window, reference)
    return results


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe details (no NaN or infinity)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None if math.isnan(value) else str(value)
        out[key] = value
    return out
