"""A monitor's checks: drift, data quality, performance, service levels, skew, custom metrics.

``Checks.parse`` reads the ``checks`` object of a monitor spec; a missing check
gets its defaults, and each error names the field, e.g. ``checks.drift.rules.age``.
A drift rule's ``method`` is read as a name here; which names exist is the drift
method registry's to say (``monitoring/driftmethods.check_rules``, which the monitor
service runs on every spec it saves), since the methods carry their computation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.spec_fields import _known, _mapping, _number, span_ms
from modelyard.errors import InvalidInput

QUALITY_CHECKS = ("schema", "missing_rate", "out_of_range", "unseen_categories", "constant")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = ("log_loss", "mae", "rmse")


@dataclass(frozen=True)
class Threshold:
    """Warn and critical levels; ``below`` says lower values are worse (accuracy)."""

    warn: float | None = None
    critical: float | None = None

    @classmethod
    def parse(cls, value: Any, what: str) -> Threshold:
        data = _mapping(value, what)
        _known(data, ("warn", "critical"), what)
        warn = data.get("warn")
        critical = data.get("critical")
        return cls(
            None if warn is None else _number(warn, f"{what}.warn", low=None),
            None if critical is None else _number(critical, f"{what}.critical", low=None),
        )


@dataclass(frozen=True)
class ColumnDriftRule:
    method: str | None = None
    warn: float | None = None
    critical: float | None = None


def _drift_rules(value: Any, what: str) -> dict[str, ColumnDriftRule]:
    rules = {}
    for column, rule in _mapping(value, what).items():
        data = _mapping(rule, f"{what}.{column}")
        _known(data, ("method", "warn", "critical"), f"{what}.{column}")
        method = data.get("method")
        if method is not None and (not isinstance(method, str) or not method):
            raise InvalidInput(f"{what}.{column}.method: expected a drift method's name")
        limits = Threshold.parse({k: v for k, v in data.items() if k != "method"}, what)
        rules[str(column)] = ColumnDriftRule(method, limits.warn, limits.critical)
    return rules


@dataclass(frozen=True)
class DriftCheck:
    """Drift of inputs (``columns`` None = every input) or of outputs."""

    enabled: bool = True
    columns: tuple[str, ...] | None = None
    rules: dict[str, ColumnDriftRule] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, what: str) -> DriftCheck:
        data = _mapping(value, what)
        _known(data, ("enabled", "columns", "rules"), what)
        columns = data.get("columns")
        if columns is not None and (
            not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
        ):
            raise InvalidInput(f"{what}.columns: expected a list of column names")
        return cls(
            bool(data.get("enabled", True)),
            tuple(columns) if columns is not None else None,
            _drift_rules(data.get("rules"), f"{what}.rules"),
        )


@dataclass(frozen=True)
class QualityCheck:
    enabled: bool = True
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> QualityCheck:
        data = _mapping(value, "checks.quality")
        _known(data, ("enabled", "thresholds"), "checks.quality")
        limits = {}
        for check, raw in _mapping(data.get("thresholds"), "checks.quality.thresholds").items():
            if check not in QUALITY_CHECKS:
                raise InvalidInput(
                    f"checks.quality.thresholds: {check!r} is not one of "
                    f"{', '.join(QUALITY_CHECKS)}"
                )
            parsed = Threshold.parse(raw, f"checks.quality.thresholds.{check}")
            if parsed.warn is None or parsed.critical is None:
                raise InvalidInput(f"checks.quality.thresholds.{check}: give warn and critical")
            limits[check] = (parsed.warn, parsed.critical)
        return cls(bool(data.get("enabled", True)), limits)


@dataclass(frozen=True)
class PerformanceCheck:
    """Realised (labels) or estimated (confidence) performance.

    Thresholds per metric are absolute (``warn``/``critical``) or, by default, a
    drop from the reference's figure (``drop_warn``/``drop_critical``).
    """

    enabled: bool = True
    metrics: tuple[str, ...] = ("accuracy", "f1", "roc_auc", "mae", "rmse", "r2")
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    drop_warn: float = 0.05
    drop_critical: float = 0.1
    segment: str | None = None
    min_labels: int = 30
    label_horizon: int = 7 * 86_400_000

    @classmethod
    def parse(cls, value: Any, what: str) -> PerformanceCheck:
        data = _mapping(value, what)
        fields = (
            "enabled",
            "metrics",
            "thresholds",
            "drop_warn",
            "drop_critical",
            "segment",
            "min_labels",
            "label_horizon",
        )
        _known(data, fields, what)
        default = cls()
        metrics = data.get("metrics", list(default.metrics))
        known = CLASSIFICATION_METRICS + REGRESSION_METRICS
        if not isinstance(metrics, list) or any(m not in known for m in metrics):
            raise InvalidInput(f"{what}.metrics: each must be one of {', '.join(known)}")
        thresholds = {
            str(k): Threshold.parse(v, f"{what}.thresholds.{k}")
            for k, v in _mapping(data.get("thresholds"), f"{what}.thresholds").items()
        }
        segment = data.get("segment")
        if segment is not None and not isinstance(segment, str):
            raise InvalidInput(f"{what}.segment: expected a column name")
        return cls(
            bool(data.get("enabled", True)),
            tuple(metrics),
            thresholds,
            _number(data.get("drop_warn", default.drop_warn), f"{what}.drop_warn"),
            _number(data.get("drop_critical", default.drop_critical), f"{what}.drop_critical"),
            segment,
            int(_number(data.get("min_labels", default.min_labels), f"{what}.min_labels")),
            span_ms(data.get("label_horizon", default.label_horizon), f"{what}.label_horizon"),
        )


@dataclass(frozen=True)
class TechnicalCheck:
    """Service-level targets; a value past its target warns, past twice it is critical."""

    enabled: bool = True
    latency_p50_ms: float | None = 50.0
    latency_p99_ms: float | None = 250.0
    error_rate: float | None = 0.01
    min_throughput_rps: float | None = None

    @classmethod
    def parse(cls, value: Any) -> TechnicalCheck:
        data = _mapping(value, "checks.technical")
        names = ("latency_p50_ms", "latency_p99_ms", "error_rate", "min_throughput_rps")
        _known(data, ("enabled", *names), "checks.technical")
        default = cls()
        values = {
            n: (
                getattr(default, n)
                if n not in data
                else None
                if data[n] is None
                else _number(data[n], f"checks.technical.{n}")
            )
            for n in names
        }
        return cls(bool(data.get("enabled", True)), **values)


@dataclass(frozen=True)
class SkewCheck:
    """Training-serving skew: live inputs joined to the training rows by an entity id."""

    entity_column: str
    dataset: str | None = None
    warn: float = 0.01
    critical: float = 0.05

    @classmethod
    def parse(cls, value: Any) -> SkewCheck | None:
        if value is None:
            return None
        data = _mapping(value, "checks.skew")
        _known(data, ("entity_column", "dataset", "warn", "critical"), "checks.skew")
        entity = data.get("entity_column")
        if not isinstance(entity, str) or not entity:
            raise InvalidInput("checks.skew.entity_column: name the entity id column")
        return cls(
            entity,
            data.get("dataset"),
            _number(data.get("warn", 0.01), "checks.skew.warn"),
            _number(data.get("critical", 0.05), "checks.skew.critical"),
        )


@dataclass(frozen=True)
class CustomMetric:
    """A metric of the window: ``python`` ("module:function" taking the window's
    table, returning a number) or ``sql`` (DuckDB over ``window_rows``, the window's
    predictions with their labels, and ``predictions``, the endpoint's whole log;
    returning one number)."""

    name: str
    python: str | None = None
    sql: str | None = None
    warn: float | None = None
    critical: float | None = None
    below: bool = False

    @classmethod
    def parse(cls, value: Any) -> CustomMetric:
        data = _mapping(value, "checks.custom[]")
        _known(data, ("name", "python", "sql", "warn", "critical", "below"), "checks.custom[]")
        name = data.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_\-.]{1,64}$", name):
            raise InvalidInput(f"checks.custom: invalid metric name {name!r}")
        python, sql = data.get("python"), data.get("sql")
        if (python is None) == (sql is None):
            raise InvalidInput(f"checks.custom.{name}: give exactly one of python or sql")
        if python is not None and not re.match(r"^[\w.]+:[\w]+$", str(python)):
            raise InvalidInput(f"checks.custom.{name}.python: expected 'module:function'")
        limits = Threshold.parse(
            {k: data[k] for k in ("warn", "critical") if k in data}, f"checks.custom.{name}"
        )
        return cls(name, python, sql, limits.warn, limits.critical, bool(data.get("below", False)))


@dataclass(frozen=True)
class Checks:
    drift: DriftCheck = field(default_factory=DriftCheck)
    output_drift: DriftCheck = field(default_factory=DriftCheck)
    quality: QualityCheck = field(default_factory=QualityCheck)
    performance: PerformanceCheck = field(default_factory=PerformanceCheck)
    estimated_performance: PerformanceCheck = field(
        default_factory=lambda: PerformanceCheck(metrics=("accuracy", "roc_auc"))
    )
    technical: TechnicalCheck = field(default_factory=TechnicalCheck)
    skew: SkewCheck | None = None
    custom: tuple[CustomMetric, ...] = ()

    @classmethod
    def parse(cls, value: Any) -> Checks:
        data = _mapping(value, "checks")
        names = (
            "drift",
            "output_drift",
            "quality",
            "performance",
            "estimated_performance",
            "technical",
            "skew",
            "custom",
        )
        _known(data, names, "checks")
        custom = data.get("custom", [])
        if not isinstance(custom, list):
            raise InvalidInput("checks.custom: expected a list of metrics")
        metrics = tuple(CustomMetric.parse(c) for c in custom)
        if len({m.name for m in metrics}) != len(metrics):
            raise InvalidInput("checks.custom: metric names must be unique")
        estimated = data.get("estimated_performance")
        if isinstance(estimated, Mapping) and "metrics" not in estimated:
            estimated = {**estimated, "metrics": ["accuracy", "roc_auc"]}
        return cls(
            DriftCheck.parse(data.get("drift"), "checks.drift"),
            DriftCheck.parse(data.get("output_drift"), "checks.output_drift"),
            QualityCheck.parse(data.get("quality")),
            PerformanceCheck.parse(data.get("performance"), "checks.performance"),
            PerformanceCheck.parse(
                estimated if estimated is not None else {"metrics": ["accuracy", "roc_auc"]},
                "checks.estimated_performance",
            ),
            TechnicalCheck.parse(data.get("technical")),
            SkewCheck.parse(data.get("skew")),
            metrics,
        )
