"""Monitors: what to watch on an endpoint's traffic, how often, and whom to tell.

A monitor's ``Spec`` is plain data (JSON on the wire and in the store). Every
field has a default, so ``Spec.parse({"endpoint": "churn"})`` is a complete
monitor: hourly windows, every input drift, output drift, data quality,
accuracy once labels arrive, its estimate before they do, latency and errors,
alerts to the log channel, and a retraining request on a critical finding.

>>> spec = Spec.parse({"endpoint": "churn", "window": "500 rows",
...                    "checks": {"drift": {"columns": {"age": {"method": "psi"}}}}})
>>> spec.window.kind, spec.window.size
('rows', 500)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.domain.endpoints import check_endpoint_name
from modelyard.errors import InvalidInput

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,127}$")
_SPAN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*rows?\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
SEVERITY_ORDER = {"ok": 0, "warn": 1, "critical": 2}
DRIFT_METHODS = ("wasserstein", "ks", "psi", "jensenshannon", "chisquare")
QUALITY_CHECKS = ("schema", "missing_rate", "out_of_range", "unseen_categories", "constant")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = ("log_loss", "mae", "rmse")


def check_monitor_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"invalid monitor name {name!r}: use lower-case letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def span_ms(text: Any, what: str) -> int:
    """Milliseconds from ``90s``, ``15m``, ``1h``, ``7d`` (or a positive integer of ms)."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    match = _SPAN.match(str(text))
    if not match or int(match[1]) <= 0:
        raise InvalidInput(f"{what}: {text!r} is not a span such as 30s, 15m, 1h or 7d")
    return int(match[1]) * _UNITS[match[2]]


def _number(value: Any, what: str, *, low: float | None = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what}: expected a number, got {value!r}")
    if low is not None and value < low:
        raise InvalidInput(f"{what}: must be at least {low}, got {value}")
    return float(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _known(data: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"{what}: unknown field(s) {', '.join(unknown)}; known: {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class Window:
    """Tumbling windows: ``time`` (size in ms, aligned to the epoch) or ``rows``."""

    kind: str = "time"
    size: int = 3_600_000

    @classmethod
    def parse(cls, value: Any) -> Window:
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            _known(value, ("kind", "size"), "window")
            kind = value.get("kind", "time")
            size = value.get("size")
            if kind == "rows":
                return cls("rows", _rows(size))
            if kind == "time":
                return cls("time", span_ms(size, "window size"))
            raise InvalidInput(f"window kind {kind!r} is not 'time' or 'rows'")
        rows = _ROWS.match(str(value))
        if rows:
            return cls("rows", _rows(int(rows[1])))
        return cls("time", span_ms(value, "window"))

    def describe(self) -> str:
        if self.kind == "rows":
            return f"{self.size} rows"
        for unit in ("w", "d", "h", "m", "s"):
            if self.size % _UNITS[unit] == 0:
                return f"{self.size // _UNITS[unit]}{unit}"
        return f"{self.size}ms"


def _rows(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 10:
        raise InvalidInput(f"a rows window needs at least 10 rows, got {value!r}")
    return value


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
        if method is not None and method not in DRIFT_METHODS:
            raise InvalidInput(
                f"{what}.{column}: method {method!r} is not one of {', '.join(DRIFT_METHODS)}"
            )
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


@dataclass(frozen=True)
class Retraining:
    """What an alert does about retraining: open a request, and optionally call a
    command (argv list) or a webhook channel."""

    open_request: bool = True
    min_severity: str = "critical"
    command: tuple[str, ...] | None = None
    webhook: dict[str, Any] | None = None
    timeout_s: float = 60.0

    @classmethod
    def parse(cls, value: Any) -> Retraining:
        data = _mapping(value, "alerts.retrain")
        fields = ("open_request", "min_severity", "command", "webhook", "timeout_s")
        _known(data, fields, "alerts.retrain")
        severity = data.get("min_severity", "critical")
        if severity not in ("warn", "critical"):
            raise InvalidInput("alerts.retrain.min_severity: 'warn' or 'critical'")
        command = data.get("command")
        if command is not None and (
            not isinstance(command, list)
            or not command
            or not all(isinstance(a, str) for a in command)
        ):
            raise InvalidInput("alerts.retrain.command: expected a list of strings (argv)")
        webhook = data.get("webhook")
        if webhook is not None:
            webhook = dict(_mapping(webhook, "alerts.retrain.webhook"))
        return cls(
            bool(data.get("open_request", True)),
            severity,
            tuple(command) if command else None,
            webhook,
            _number(data.get("timeout_s", 60.0), "alerts.retrain.timeout_s"),
        )


@dataclass(frozen=True)
class Alerting:
    channels: tuple[dict[str, Any], ...] = ({"type": "log"},)
    min_severity: str = "warn"
    cooldown: int = 3_600_000
    retrain: Retraining = field(default_factory=Retraining)

    @classmethod
    def parse(cls, value: Any) -> Alerting:
        data = _mapping(value, "alerts")
        _known(data, ("channels", "min_severity", "cooldown", "retrain"), "alerts")
        channels = data.get("channels", [{"type": "log"}])
        if not isinstance(channels, list) or not all(isinstance(c, Mapping) for c in channels):
            raise InvalidInput("alerts.channels: expected a list of channel objects")
        severity = data.get("min_severity", "warn")
        if severity not in ("warn", "critical"):
            raise InvalidInput("alerts.min_severity: 'warn' or 'critical'")
        return cls(
            tuple(dict(c) for c in channels),
            severity,
            span_ms(data.get("cooldown", "1h"), "alerts.cooldown"),
            Retraining.parse(data.get("retrain")),
        )


@dataclass(frozen=True)
class Spec:
    """A monitor of ``endpoint``'s primary traffic."""

    endpoint: str
    window: Window = field(default_factory=Window)
    schedule: int = 60_000
    min_rows: int = 30
    checks: Checks = field(default_factory=Checks)
    alerts: Alerting = field(default_factory=Alerting)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Spec:
        data = _mapping(data, "monitor")
        fields = ("endpoint", "window", "schedule", "min_rows", "checks", "alerts")
        _known(data, fields, "monitor")
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str):
            raise InvalidInput("monitor: name the endpoint it watches")
        return cls(
            check_endpoint_name(endpoint),
            Window.parse(data.get("window")),
            span_ms(data.get("schedule", "1m"), "schedule"),
            int(_number(data.get("min_rows", 30), "min_rows", low=1)),
            Checks.parse(data.get("checks")),
            Alerting.parse(data.get("alerts")),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window"] = {"kind": self.window.kind, "size": self.window.size}
        plain: dict[str, Any] = _plain(data)
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied: objects merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Monitor:
    name: str
    spec: Spec
    enabled: bool
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec.to_dict(),
            "enabled": self.enabled,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }
