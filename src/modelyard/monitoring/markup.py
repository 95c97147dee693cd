"""HTML pieces of a monitor report: the page, sections, tables, badges, number formats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from modelyard.domain.monitors import SEVERITY_ORDER

Row = Mapping[str, Any]
STORED_INFINITY = 1e300  # results store an infinite value as +-1e308

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
max-width:75rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:1px solid #d0d7de;padding-bottom:.25rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}table.facts th{width:11rem}
.sev{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:12px;font-weight:600}
.sev-ok{background:#dafbe1;color:#116329}.sev-warn{background:#fff8c5;color:#7d4e00}
.sev-critical{background:#ffebe9;color:#a40e26}.sev-other{background:#eaeef2}
.empty,.note{color:#57606a;font-style:italic}
.plot svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:.75rem}
figure.feature{margin:0;border:1px solid #d0d7de;border-radius:.4rem;padding:.5rem}
figure.feature.drifted{border-color:#cf222e;border-width:2px}
figcaption{font-size:12px}code{font-size:12px}
"""


def page(title: str, sections: list[str]) -> str:
    # The policy is a second fence behind the escaping: no script runs, nothing loads.
    policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def section(title: str, body: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells under plain-text headings."""
    top = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{top}</tr>\n{body}</table>"


def badge(severity: Any) -> str:
    text = str(severity)
    kind = text if text in SEVERITY_ORDER else "other"
    return f'<span class="sev sev-{kind}">{escape(text)}</span>'


def rank(severity: Any) -> int:
    return SEVERITY_ORDER.get(str(severity), 0)


def when(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def window_span(start: Any, end: Any, kind: str) -> str:
    """Where a window lies: "from <time>" for time windows, "rows a to b" for row windows
    (whose start and end are row positions, not times)."""
    if kind == "rows":
        if not isinstance(start, int) or not isinstance(end, int):
            return "rows -"
        return f"rows {start} to {end - 1}"
    return f"from {when(start)}"


def fmt(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if abs(value) >= STORED_INFINITY:
        return "∞" if value > 0 else "-∞"
    return f"{value:.4g}"


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_text(text: str, limit: int) -> str:
    """A name as a plot label: shortened, its '$' escaped so matplotlib reads no TeX."""
    return short(text, limit).replace("$", r"\$")
