"""Records as HTML for notebooks: every value escaped, nothing fetched, no script.

Jupyter shows an object through its ``_repr_html_``; runs, versions and run pages
build theirs from these two pieces, so a value such as ``<script>`` in a
parameter is shown as text.

>>> facts_html("run 4f2a", [("status", "FINISHED"), ("params", {"C": "0.5"})])
'<div class="modelyard"><b>run 4f2a</b><table>...</table></div>'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_STYLE = "border-collapse:collapse;font-size:12px"
_CELL = 'style="text-align:left;padding:2px 8px;border-bottom:1px solid #ddd"'


def text(value: Any) -> str:
    """A value as escaped text: mappings as ``key=value`` pairs, nothing as ``-``."""
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, Mapping):
        return escape(", ".join(f"{k}={v}" for k, v in value.items()))
    if isinstance(value, list | tuple):
        return escape(", ".join(str(v) for v in value))
    if isinstance(value, float):
        return escape(f"{value:.6g}")
    return escape(str(value))


def when(ms: int | None) -> str:
    """Epoch milliseconds as a UTC time, ``-`` for none."""
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def facts_html(title: str, facts: Sequence[tuple[str, Any]]) -> str:
    """A titled two-column table: one row per (name, value)."""
    rows = "".join(
        f"<tr><th {_CELL}>{escape(k)}</th><td {_CELL}>{text(v)}</td></tr>" for k, v in facts
    )
    return (
        f'<div class="modelyard"><b>{escape(title)}</b><table style="{_STYLE}">{rows}</table></div>'
    )


def table_html(title: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A titled table under ``head``; every cell escaped."""
    top = "".join(f"<th {_CELL}>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{text(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    table = f'<table style="{_STYLE}"><tr>{top}</tr>{body}</table>'
    return f'<div class="modelyard"><b>{escape(title)}</b>{table}</div>'
