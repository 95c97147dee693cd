"""A check's result: one figure of one window, with its severity and details.

``checks.evaluate`` returns ``Result`` rows; the runner stores them and alerts read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


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


def json_float(value: float | None) -> float | None:
    """``value`` as JSON can hold it: None for NaN, the largest float for an infinity."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None if value is None or math.isnan(value) else (1e308 if value > 0 else -1e308)
    return float(value)
