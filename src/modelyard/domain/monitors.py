"""Monitors: what to watch on an endpoint's traffic, how often, and whom to tell.

A monitor's ``Spec`` is plain data (JSON on the wire and in the store). Every
field has a default, so ``Spec.parse({"endpoint": "churn"})`` is a complete
monitor: hourly windows of its online (``primary``) traffic, every input drift,
output drift, data quality, accuracy once labels arrive, its estimate before they
do, latency and errors, alerts to the log channel, and a retraining request on a
critical finding. ``traffic: ["batch"]`` watches batch jobs' logged rows instead.

>>> spec = Spec.parse({"endpoint": "churn", "window": "500 rows",
...                    "checks": {"drift": {"rules": {"age": {"method": "psi"}}}}})
>>> spec.window.kind, spec.window.size
('rows', 500)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.domain.alerting import Alerting
from modelyard.domain.checks import LOWER_IS_BETTER, Checks, PerformanceCheck, Threshold
from modelyard.domain.endpoints import check_endpoint_name
from modelyard.domain.spec_fields import _UNITS, _known, _mapping, _number, span_ms
from modelyard.errors import InvalidInput

# LOWER_IS_BETTER, PerformanceCheck and Threshold live in checks.py; the monitoring
# services import them from here.
__all__ = [
    "LOWER_IS_BETTER",
    "SEVERITY_ORDER",
    "Monitor",
    "PerformanceCheck",
    "Spec",
    "Threshold",
    "Window",
    "check_monitor_name",
    "merge",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,127}$")
_ROWS = re.compile(r"^\s*(\d+)\s*rows?\s*$")
TRAFFIC = ("primary", "batch")  # the prediction-log roles a monitor may read
SEVERITY_ORDER = {"ok": 0, "warn": 1, "critical": 2}


def check_monitor_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"invalid monitor name {name!r}: use lower-case letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


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


def _traffic(value: Any) -> tuple[str, ...]:
    """The roles a monitor reads: a list of ``TRAFFIC`` values (a single one may be a string)."""
    if value is None:
        return ("primary",)
    roles = [value] if isinstance(value, str) else value
    if not isinstance(roles, list | tuple) or not roles:
        raise InvalidInput(
            f"traffic must be a non-empty list of {' and '.join(TRAFFIC)}, got {value!r}"
        )
    for role in roles:
        if role not in TRAFFIC:
            raise InvalidInput(f"traffic {role!r} is not one of {', '.join(TRAFFIC)}")
    return tuple(dict.fromkeys(roles))


@dataclass(frozen=True)
class Spec:
    """A monitor of ``endpoint``'s traffic: the prediction-log roles in ``traffic``
    (``primary``: online requests; ``batch``: batch jobs run with ``--log-to``)."""

    endpoint: str
    window: Window = field(default_factory=Window)
    schedule: int = 60_000
    min_rows: int = 30
    checks: Checks = field(default_factory=Checks)
    alerts: Alerting = field(default_factory=Alerting)
    traffic: tuple[str, ...] = ("primary",)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Spec:
        data = _mapping(data, "monitor")
        fields = ("endpoint", "traffic", "window", "schedule", "min_rows", "checks", "alerts")
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
            _traffic(data.get("traffic")),
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
