"""How pages print values: times, numbers, ids and sizes (Jinja filters)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def when(value: Any) -> str:
    """A timestamp (milliseconds since the epoch, or ISO text) as ``2026-12-03 14:05 UTC``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any, digits: int = 4) -> str:
    """A metric or figure: ``-`` for nothing, NaN and infinities named, else ``digits``
    significant digits (integers in full, with thousands separators)."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{digits}g}"


def short(value: Any, length: int = 12) -> str:
    """An id or digest cut to ``length`` characters (the page shows the whole in a title)."""
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[:length] + "…"


def size(value: Any) -> str:
    """A byte count as ``1.2 MB``."""
    if not isinstance(value, int | float):
        return "-"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


FILTERS = {"when": when, "number": number, "short": short, "size": size}
