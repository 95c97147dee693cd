"""Reading one field of a monitor spec, failing with a one-line error that names it.

Every part of a spec (window, checks, alerts) parses its JSON with these: a span
such as ``15m``, a number with a floor, an object, and no unknown keys.

>>> span_ms("15m", "alerts.cooldown")
900000
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelyard.errors import InvalidInput

_SPAN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


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
