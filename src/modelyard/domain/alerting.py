"""A monitor's alerting: the channels it notifies, how often, and what it asks of retraining.

``Alerting.parse`` reads the ``alerts`` object of a monitor spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.spec_fields import _known, _mapping, _number, span_ms
from modelyard.errors import InvalidInput


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
