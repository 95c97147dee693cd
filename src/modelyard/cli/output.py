"""How the CLI shows things: rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from modelyard.errors import InvalidInput
from modelyard.jsonable import plain

console = Console(width=None if sys.stdout.isatty() else 160)


def emit_json(value: Any) -> None:
    """Strict JSON: a missing value (NaN) is null, infinities are the strings "inf"/"-inf"."""
    sys.stdout.write(json.dumps(_strict(plain(value)), indent=2, default=str) + "\n")


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def missing(value: Any) -> bool:
    """Nothing to show: None, empty text, a NaN, or pandas' NA or NaT."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value == ""


def number(value: float | None) -> str:
    return "-" if missing(value) else f"{value:.4g}"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table; a missing cell (None, "", NaN, NA) shows as ``-`` in every table."""
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("-" if missing(cell) else str(cell) for cell in row))
    return grid


_AGO = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def moment(text: str | None) -> int | None:
    """Epoch ms from an ISO date or time (UTC unless given) or a span ago: 30m, 2h, 7d."""
    if text is None:
        return None
    text = text.strip()
    if len(text) > 1 and text[-1] in _AGO and text[:-1].isdigit():
        now = dt.datetime.now(tz=dt.UTC).timestamp()
        return int((now - int(text[:-1]) * _AGO[text[-1]]) * 1000)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"'{text}' is not a date, a time or a span (use e.g. 2026-11-22, "
            "2026-11-22T10:00 or 2h)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)
