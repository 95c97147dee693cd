"""One window of an endpoint's primary traffic, checked against its references.

``WindowData`` holds the window's logged predictions (with their newest labels)
and turns the logged JSON into typed columns with DuckDB. ``evaluate`` runs every
enabled check of a monitor's spec and returns ``Result`` rows: one number per
(check, column, metric, version), with a severity and the details a reviewer
needs. Input drift and data quality compare every row with the reference of the
version that answered most of them (inputs do not depend on the version);
outputs, performance and its estimate are per version.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.monitors import LOWER_IS_BETTER, PerformanceCheck, Spec, Threshold
from modelyard.errors import InvalidInput
from modelyard.monitoring.drift import (
    CRITICAL,
    OK,
    WARN,
    ColumnRule,
    Observed,
    column_drift,
    holm,
    observe,
    worst,
)
from modelyard.monitoring.profile import NUMERIC, Profile
from modelyard.monitoring.quality import quality
from modelyard.monitoring.reference import (
    CLASSIFICATION,
    PREDICTION,
    SCORE,
    Reference,
    score_of,
)

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Result:
    """One figure of one window."""

    check: str
    metric: str
    value: float | None
    severity: str
    column: str = ""
    version: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- the window's data ------------------------------------------------------------------


class WindowData:
    """A window's logged predictions (``query`` rows with ``label``) as typed columns."""

    def __init__(self, table: pa.Table, start: int, end: int, kind: str) -> None:
        self.table = table
        self.start = start
        self.end = end
        self.kind = kind
        self._con: Any = None

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def labelled(self) -> int:
        if "label" not in self.table.schema.names:
            return 0
        return int(self.table.num_rows - self.table.column("label").null_count)

    def con(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(config={"threads": 2})
            self._con.register("window_rows", self.table)
        return self._con

    def versions(self) -> list[tuple[str, int, int]]:
        """(model, version, rows) of the versions that answered, most rows first."""
        rows = (
            self.con()
            .sql(
                "SELECT model, version, count(*) AS n FROM window_rows "
                "GROUP BY model, version ORDER BY n DESC, model, version"
            )
            .fetchall()
        )
        return [(str(m), int(v), int(n)) for m, v, n in rows]

    def inputs(self, profile: Profile) -> tuple[pa.Table, dict[str, int], set[str]]:
        """(typed input columns, unreadable count per column, columns present at all)."""
        import pyarrow as pa

        names = list(profile.columns)
        if not names or not self.rows:
            return pa.table({n: pa.nulls(0) for n in names}), {}, set()
        select, params = [], []
        for index, name in enumerate(names):
            path = '$."' + name.replace('"', '\\"') + '"'
            raw = "json_extract_string(input, ?)"
            if profile.columns[name].kind == NUMERIC:
                select.append(f'TRY_CAST({raw} AS DOUBLE) AS "c{index}"')
                params.append(path)
                select.append(
                    f"count(*) FILTER (WHERE {raw} IS NOT NULL AND TRY_CAST({raw} AS DOUBLE) "
                    f'IS NULL) OVER () AS "bad{index}"'
                )
                params.extend([path, path])
            else:
                select.append(f'{raw} AS "c{index}"')
                params.append(path)
                select.append(f'0 AS "bad{index}"')
            select.append(f'count(json_extract(input, ?)) OVER () AS "has{index}"')
            params.append(path)
        table = self.con().sql(f"SELECT {', '.join(select)} FROM window_rows", params=params)
        arrow = table.to_arrow_table()
        values = pa.table({n: arrow.column(f"c{i}") for i, n in enumerate(names)})
        bad = {n: int(arrow.column(f"bad{i}")[0].as_py()) for i, n in enumerate(names)}
        present = {n for i, n in enumerate(names) if arrow.column(f"has{i}")[0].as_py()}
        return values, bad, present

    def of_version(self, model: str, version: int) -> WindowData:
        import pyarrow as pa

        mask = np.asarray(
            [
                m == model and v == version
                for m, v in zip(
                    self.table.column("model").to_pylist(),
                    self.table.column("version").to_pylist(),
                    strict=True,
                )
            ]
        )
        return WindowData(self.table.filter(pa.array(mask)), self.start, self.end, self.kind)

    def outputs(self, reference: Reference) -> dict[str, Any]:
        """``prediction`` (text or number), ``score`` (per reference), ``label`` text."""
        import pyarrow as pa

        outputs = self.table.column("output").to_pylist()
        columns: dict[str, Any] = {}
        if reference.task == CLASSIFICATION:
            columns[PREDICTION] = pa.array(outputs, pa.string())
        else:
            columns[PREDICTION] = pa.array([_float(v) for v in outputs], pa.float64())
        matrix = self.scores()
        if matrix is not None:
            columns[SCORE] = pa.array(score_of(matrix, reference.classes))
        return columns

    def scores(self) -> np.ndarray[Any, Any] | None:
        import orjson

        raw = self.table.column("scores").to_pylist()
        if not raw or any(r is None for r in raw):
            return None
        return np.asarray([orjson.loads(r) for r in raw], dtype=np.float64)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# -- evaluation -----------------------------------------------------------------------


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
        results += _skew(spec, window, main, skew_rows)
    for model, version, _ in versions:
        reference = references.get((model, version))
        if reference is None:
            continue
        part = window.of_version(model, version) if len(versions) > 1 else window
        results += _per_version(spec, part, reference, summary)
    if checks.technical.enabled:
        results += _technical(spec, window)
    for metric in checks.custom:
        results.append(_custom(metric, window, predictions))
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
        for outcome in holm(outcomes):
            if outcome.drifted:
                drifted.append(
                    {
                        "column": outcome.column,
                        "method": outcome.method,
                        "value": round(outcome.value, 4),
                        "severity": outcome.severity,
                    }
                )
            results.append(
                Result(
                    "drift",
                    outcome.method,
                    _finite(outcome.value),
                    outcome.severity,
                    outcome.column,
                    details=_clean(
                        {
                            "p_value": outcome.p_value,
                            "warn": outcome.warn,
                            "critical": outcome.critical,
                            **outcome.detail,
                        }
                    ),
                )
            )
        summary["drifted"] = drifted
        summary["drift_reference"] = reference.ref
    summary["observed"] = {n: o.to_dict() for n, o in observed.items()}
    return results


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
                    _finite(outcome.value),
                    outcome.severity,
                    outcome.column,
                    reference.ref,
                    _clean(details),
                )
            )
    if checks.performance.enabled:
        results += _performance(checks.performance, window, reference)
    if checks.estimated_performance.enabled and reference.task == CLASSIFICATION:
        results += _estimated(checks.estimated_performance, window, reference)
    return results


def _performance(check: PerformanceCheck, window: WindowData, reference: Reference) -> list[Result]:
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
            Profile(0, {check.segment: _segment_profile(check.segment)})
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
                    _finite(value),
                    severity,
                    column,
                    reference.ref,
                    {"labelled": rows.num_rows, "reference": reference.performance.get(metric)},
                )
            )
    return results


def _segment_profile(name: str) -> Any:
    from modelyard.monitoring.profile import CATEGORICAL, ColumnProfile

    return ColumnProfile(name, CATEGORICAL, "string")


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
        [_float(v) for v in rows.column("label").to_pylist()], dtype=np.float64
    )
    predicted_values = np.asarray(
        [_float(v) for v in rows.column("output").to_pylist()], dtype=np.float64
    )
    regression: dict[str, float | None] = performance.regression_metrics(
        truth_values, predicted_values
    )
    return regression


def _estimated(check: PerformanceCheck, window: WindowData, reference: Reference) -> list[Result]:
    from modelyard.monitoring import performance

    matrix = window.scores()
    if matrix is None or not len(matrix):
        return []
    calibration = (
        performance.Calibration.from_dict(reference.calibration) if reference.calibration else None
    )
    estimate = performance.estimate_classification(matrix, calibration)
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
                _finite(value),
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


def _technical(spec: Spec, window: WindowData) -> list[Result]:
    check = spec.checks.technical
    if not window.rows:
        return []
    latency = np.asarray(window.table.column("latency_ms").to_pylist(), dtype=np.float64)
    errors = window.rows - window.table.column("error").null_count
    stamps = window.table.column("ts").to_pylist()
    if window.kind == "time":
        seconds = max((window.end - window.start) / 1000.0, 1e-3)
    else:
        seconds = max((max(stamps) - min(stamps)) / 1000.0, 1e-3)
    figures = {
        "latency_p50_ms": (float(np.percentile(latency, 50)), check.latency_p50_ms, False),
        "latency_p99_ms": (float(np.percentile(latency, 99)), check.latency_p99_ms, False),
        "error_rate": (errors / window.rows, check.error_rate, False),
        "throughput_rps": (window.rows / seconds, check.min_throughput_rps, True),
    }
    results = []
    for metric, (value, target, at_least) in figures.items():
        severity = OK
        if target is not None:
            if at_least:
                severity = CRITICAL if value < target / 2 else WARN if value < target else OK
            else:
                severity = CRITICAL if value > 2 * target else WARN if value > target else OK
        results.append(Result("technical", metric, value, severity, details={"target": target}))
    return results


def _custom(metric: Any, window: WindowData, predictions: Callable[[Any], None] | None) -> Result:
    try:
        if metric.python:
            module, _, name = metric.python.partition(":")
            function = getattr(importlib.import_module(module), name)
            value = float(function(window.table))
        else:
            con = window.con()
            if predictions is not None:
                predictions(con)
            rows = con.execute(metric.sql).fetchall()  # fetch all: the connection is reused
            if len(rows) != 1 or len(rows[0]) != 1:
                raise InvalidInput("the query must return one row of one number")
            value = float(rows[0][0])
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        return Result("custom", metric.name, None, WARN, details={"error": message[:500]})
    severity = OK
    if metric.below:
        if metric.critical is not None and value < metric.critical:
            severity = CRITICAL
        elif metric.warn is not None and value < metric.warn:
            severity = WARN
    else:
        if metric.critical is not None and value > metric.critical:
            severity = CRITICAL
        elif metric.warn is not None and value > metric.warn:
            severity = WARN
    return Result(
        "custom",
        metric.name,
        _finite(value),
        severity,
        details={"warn": metric.warn, "critical": metric.critical},
    )


def _skew(
    spec: Spec,
    window: WindowData,
    reference: Reference,
    skew_rows: Callable[[Reference, str, str | None], pa.Table],
) -> list[Result]:
    """Share of live rows whose features differ from the training row of the same entity."""
    check = spec.checks.skew
    assert check is not None
    entity = check.entity_column
    names = [n for n in reference.inputs.columns if n != entity]
    profile = Profile(0, dict(reference.inputs.columns))
    if entity not in profile.columns:
        profile.columns[entity] = _segment_profile(entity)
    live, _, present = window.inputs(profile)
    if entity not in present:
        return [
            Result(
                "skew",
                "matched",
                None,
                WARN,
                entity,
                details={"error": f"the live inputs have no column '{entity}'"},
            )
        ]
    try:
        training = skew_rows(reference, entity, check.dataset)
    except Exception as error:
        return [Result("skew", "matched", None, WARN, entity, details={"error": str(error)[:500]})]
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    con.register("live", live)
    con.register("training", training)
    quoted = '"' + entity.replace('"', '""') + '"'
    results = []
    matched_row = con.execute(
        f"SELECT count(*) FROM live l JOIN training t ON CAST(l.{quoted} AS VARCHAR) = "
        f"CAST(t.{quoted} AS VARCHAR)"
    ).fetchall()
    matched = int(matched_row[0][0])
    results.append(Result("skew", "matched", float(matched), OK, entity))
    if not matched:
        return results
    for name in names:
        if name not in training.schema.names:
            continue
        column = '"' + name.replace('"', '""') + '"'
        if reference.inputs.columns[name].kind == NUMERIC:
            differs = (
                f"abs(CAST(l.{column} AS DOUBLE) - CAST(t.{column} AS DOUBLE)) > "
                f"1e-9 * greatest(1, abs(CAST(t.{column} AS DOUBLE)))"
            )
        else:
            differs = f"CAST(l.{column} AS VARCHAR) IS DISTINCT FROM CAST(t.{column} AS VARCHAR)"
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE {differs}) FROM live l JOIN training t "
            f"ON CAST(l.{quoted} AS VARCHAR) = CAST(t.{quoted} AS VARCHAR)"
        ).fetchall()
        share = int(row[0][0]) / matched
        severity = CRITICAL if share > check.critical else WARN if share > check.warn else OK
        results.append(
            Result("skew", "mismatch_share", share, severity, name, details={"matched": matched})
        )
    return results


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None if value is None or math.isnan(value) else (1e308 if value > 0 else -1e308)
    return float(value)


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe details (no NaN or infinity)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None if math.isnan(value) else str(value)
        out[key] = value
    return out
