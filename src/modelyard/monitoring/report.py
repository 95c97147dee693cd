"""Monitor reports: one monitor's recent history as a single self-contained HTML page.

The page holds a header (what is watched, the time covered, windows by severity,
open alerts), the alerts, input drift over time and in the latest window, each
input's reference distribution against the latest window's, realised and
estimated performance, and latency and errors. Plots are matplotlib figures
inlined as SVG and the page's policy forbids every fetch, so the file opens
offline and can be mailed or archived as it is.

>>> monitor = services.monitors.get("churn")
>>> page = render_report(
...     monitor,
...     {"churn/3": services.references.get("churn/3")},
...     services.monitors.windows("churn"),
...     services.monitors.results("churn"),
...     services.alerts.alerts({monitor.id: "churn"}),
... )
>>> Path("churn.html").write_text(page)
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.clock import now_ms
from modelyard.domain.monitors import SEVERITY_ORDER, Monitor, Window
from modelyard.monitoring.profile import NUMERIC

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from modelyard.monitoring.profile import ColumnProfile
    from modelyard.monitoring.reference import Reference

__all__ = ["render_report"]

MAX_FEATURES = 12  # drifted first, then the largest drift values: each figure costs ~0.2 s
MAX_DRIFT_LINES = 12
MAX_ALERTS = 100
MAX_CATEGORIES = 12
MAX_METRICS = 4
DISPLAY_BINS = 20
SMALLEST_P_VALUE = 1e-16
STORED_INFINITY = 1e300  # results store an infinite value as +-1e308
PERFORMANCE = "performance"
ESTIMATED = "estimated_performance"
Row = Mapping[str, Any]
Bins = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller files, and the reader's own fonts
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}
_SVG_METADATA = {"Format": None, "Type": None, "Creator": None, "Date": None}
_GROUP_ID = re.compile(r'<g id="[^"]*"')


def render_report(
    monitor: Monitor,
    references: Mapping[str, Reference],
    windows: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    *,
    generated_at: int | None = None,
) -> str:
    """The HTML report of ``monitor``: a complete page needing nothing from the network.

    >>> page = render_report(monitor, {"churn/3": reference}, windows, results, alerts)

    ``references`` maps ``"model/version"`` to that version's reference profile;
    ``windows`` and ``results`` are ``MonitorService.windows``/``results`` (oldest
    first), ``alerts`` is ``AlertService.alerts`` (newest first). Any of them may be
    empty: the page then says what is missing. ``generated_at`` (epoch ms) defaults
    to now.
    """
    import matplotlib  # here, not at import: checking a window must not load it

    stamp = now_ms() if generated_at is None else generated_at
    kind = monitor.spec.window.kind
    with matplotlib.rc_context(_RC):
        sections = [
            _header(monitor, references, windows, alerts, stamp),
            _alerts_section(alerts),
            _drift_section(results, kind),
            _features_section(references, windows, results),
            _performance_section(results, windows, kind),
            _technical_section(results, kind),
        ]
    return _page(f"Monitor {monitor.name}", sections)


# -- page ------------------------------------------------------------------------------

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


def _page(title: str, sections: list[str]) -> str:
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


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells under plain-text headings."""
    top = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{top}</tr>\n{body}</table>"


def _badge(severity: Any) -> str:
    text = str(severity)
    kind = text if text in SEVERITY_ORDER else "other"
    return f'<span class="sev sev-{kind}">{escape(text)}</span>'


def _rank(severity: Any) -> int:
    return SEVERITY_ORDER.get(str(severity), 0)


def _when(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if abs(value) >= STORED_INFINITY:
        return "∞" if value > 0 else "-∞"
    return f"{value:.4g}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plot_text(text: str, limit: int) -> str:
    """A name as a plot label: shortened, its '$' escaped so matplotlib reads no TeX."""
    return _short(text, limit).replace("$", r"\$")


# -- header ----------------------------------------------------------------------------


def _header(
    monitor: Monitor,
    references: Mapping[str, Reference],
    windows: Sequence[Row],
    alerts: Sequence[Row],
    stamp: int,
) -> str:
    spec = monitor.spec
    facts = [
        ("Endpoint", f"<code>{escape(spec.endpoint)}</code>"),
        ("Windows", escape(_window_text(spec.window))),
        ("Generated", escape(_when(stamp))),
        ("Covering", escape(_covered(windows, spec.window.kind))),
        ("Windows computed", _window_counts(windows)),
        ("Open alerts", _open_alerts(alerts)),
        ("References", _references_text(references)),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
    disabled = "" if monitor.enabled else " " + _badge("disabled")
    empty = "" if windows else _empty("No windows computed yet: run the monitor to fill this page.")
    title = f"Monitor <code>{escape(monitor.name)}</code>{disabled}"
    return f'<header>\n<h1>{title}</h1>\n<table class="facts">{rows}</table>\n{empty}</header>'


def _window_text(window: Window) -> str:
    if window.kind == "rows":
        return f"tumbling windows of {window.size} rows"
    return f"tumbling time windows of {window.describe()}"


def _covered(windows: Sequence[Row], kind: str) -> str:
    if not windows:
        return "no windows computed yet"
    summaries = [w.get("summary") or {} for w in windows]
    first = [s["first_ts"] for s in summaries if isinstance(s.get("first_ts"), int)]
    last = [s["last_ts"] for s in summaries if isinstance(s.get("last_ts"), int)]
    traffic = f"traffic {_when(min(first))} to {_when(max(last))}" if first and last else ""
    if kind == "rows":
        span = f"rows {windows[0].get('start')} to {windows[-1].get('end')}"
        return f"{span}, {traffic}" if traffic else span
    return f"{_when(windows[0].get('start'))} to {_when(windows[-1].get('end'))}"


def _window_counts(windows: Sequence[Row]) -> str:
    if not windows:
        return "none"
    done = [w for w in windows if w.get("status") == "done"]
    by_severity = Counter(str(w.get("severity") or "ok") for w in done)
    parts = [f"{by_severity[s]} {_badge(s)}" for s in sorted(by_severity, key=_rank)]
    others = Counter(str(w.get("status")) for w in windows if w.get("status") != "done")
    parts += [f"{n} {escape(status)}" for status, n in sorted(others.items())]
    failed = [w for w in windows if w.get("status") == "failed" and w.get("error")]
    if failed:
        parts.append(f"last error: <code>{escape(_short(str(failed[-1]['error']), 200))}</code>")
    return f"{len(windows)} windows: " + ", ".join(parts)


def _open_alerts(alerts: Sequence[Row]) -> str:
    firing = [a for a in alerts if a.get("status") == "firing"]
    if not firing:
        return "none"
    by_severity = Counter(str(a.get("severity")) for a in firing)
    parts = ", ".join(f"{n} {_badge(s)}" for s, n in sorted(by_severity.items()))
    return f"{len(firing)} ({parts})"


def _references_text(references: Mapping[str, Reference]) -> str:
    if not references:
        return "none: drift and distributions need a reference profile of the served version"
    items = []
    for key, reference in references.items():
        source = f"training data '{reference.dataset}'" if reference.dataset else "no dataset"
        if reference.evaluated_on:
            source += f", scored on '{reference.evaluated_on}'"
        items.append(f"<code>{escape(key)}</code> ({escape(source)})")
    return "<br>".join(items)


# -- alerts ----------------------------------------------------------------------------


def _alerts_section(alerts: Sequence[Row]) -> str:
    if not alerts:
        return _section("Alerts", _empty("No alerts."))
    head = ("Check", "Severity", "Status", "Opened", "Resolved", "Summary", "Deliveries")
    rows = [
        (
            f"<code>{escape(str(a.get('check', '')))}</code>",
            _badge(a.get("severity")),
            escape(str(a.get("status", ""))),
            escape(_when(a.get("opened_at"))),
            escape(_when(a.get("resolved_at"))),
            escape(str(a.get("summary", ""))),
            _deliveries(a.get("deliveries") or []),
        )
        for a in alerts[:MAX_ALERTS]
    ]
    more = len(alerts) - MAX_ALERTS
    note = _note(f"{more} older alerts not shown.") if more > 0 else ""
    return _section("Alerts", _table(head, rows) + note)


def _deliveries(deliveries: Sequence[Row]) -> str:
    if not deliveries:
        return "none"
    lines = []
    for item in deliveries:
        line = f"{item.get('event')}: {item.get('channel')} {item.get('status')}"
        if item.get("status") != "sent" and item.get("error"):
            line += f" ({_short(str(item['error']), 120)})"
        lines.append(escape(line))
    return "<br>".join(lines)


# -- time series -----------------------------------------------------------------------


def _figure(rows: int = 1, *, width: float = 7.0, height: float = 2.2) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    # A bare Figure rather than pyplot: no global registry to leak figures into (nothing
    # to close) and no backend switch in the host process; savefig picks the SVG canvas.
    figure = Figure(figsize=(width, height * rows), layout="constrained")
    grid = figure.subplots(rows, 1, squeeze=False, sharex=True)
    return figure, [ax for (ax,) in grid]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    text = buffer.getvalue()
    # Group ids ("figure_1", "axes_1") repeat in every figure and nothing refers to them;
    # the ids that are referred to (markers, clip paths) are random, so unique on the page.
    text = _GROUP_ID.sub("<g", text[text.index("<svg") :])
    return f'<div class="plot">{text}</div>'


def _x(start: Any, kind: str) -> Any:
    if kind == "time":
        return datetime.fromtimestamp(start / 1000, UTC)
    return start


def _format_x(ax: Axes, kind: str) -> None:
    if kind != "time":
        ax.set_xlabel("window (first row)")
        return
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _number(value: Any) -> float:
    """A plottable value: stored infinities and missing figures leave a gap."""
    if not isinstance(value, int | float) or abs(value) >= STORED_INFINITY:
        return math.nan
    return float(value)


def _line(ax: Axes, rows: Sequence[Row], kind: str, label: str, **style: Any) -> Artist | None:
    points = [(r["window_start"], _number(r.get("value"))) for r in rows]
    if not points:
        return None
    (line,) = ax.plot(
        [_x(start, kind) for start, _ in points],
        [value for _, value in points],
        marker="o",
        markersize=3,
        linewidth=1.2,
        label=label,
        **style,
    )
    return line


def _legend(ax: Axes, handles: Sequence[Any]) -> None:
    drawn = [h for h in handles if h is not None]
    if drawn:
        # labels passed explicitly, so a column named "_id" is not taken for a hidden one
        ax.legend(drawn, [str(h.get_label()) for h in drawn], fontsize=7, loc="best")


def _target(
    ax: Axes, value: Any, label: str, color: str = "#cf222e", linestyle: str = "--"
) -> Artist | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return ax.axhline(value, color=color, linestyle=linestyle, linewidth=1, label=label)


# -- drift -----------------------------------------------------------------------------


def _drift_section(results: Sequence[Row], kind: str) -> str:
    drift = [r for r in results if r.get("check") == "drift"]
    if not drift:
        return _section("Input drift", _empty("No drift results yet."))
    return _section("Input drift", _drift_chart(drift, kind) + _latest_drift(drift, kind))


def _ever_drifted(drift: Sequence[Row]) -> list[str]:
    """Columns that drifted in some window: the most often, then the worst, first."""
    counts: Counter[str] = Counter()
    worst: dict[str, int] = {}
    for row in drift:
        if row.get("severity") != "ok":
            column = str(row.get("column"))
            counts[column] += 1
            worst[column] = max(worst.get(column, 0), _rank(row.get("severity")))
    return sorted(counts, key=lambda c: (-counts[c], -worst[c], c))


def _drift_chart(drift: Sequence[Row], kind: str) -> str:
    drifted = _ever_drifted(drift)
    if not drifted:
        return _empty("No input column drifted in these windows.")
    shown = drifted[:MAX_DRIFT_LINES]
    by_method: dict[str, list[Row]] = {}
    for row in drift:
        if row.get("column") in shown:
            by_method.setdefault(str(row.get("metric")), []).append(row)
    figure, axes = _figure(len(by_method), height=1.6)
    for ax, (method, rows) in zip(axes, by_method.items(), strict=True):
        _drift_axes(ax, method, rows, shown, kind)
    intro = _note(
        "One line per input column that drifted in any window; the dashed line is the warn "
        "threshold. Tests (ks, chisquare) are drawn by p-value, where lower means drift."
    )
    hidden = len(drifted) - len(shown)
    more = _note(f"{hidden} more drifted columns not drawn.") if hidden > 0 else ""
    return intro + _svg(figure) + more


def _drift_axes(ax: Axes, method: str, rows: Sequence[Row], columns: list[str], kind: str) -> None:
    details = [r.get("details") or {} for r in rows]
    # the tests (ks, chisquare) keep a p-value, and their thresholds are on it
    on_p_value = any(isinstance(d.get("p_value"), int | float) for d in details)
    handles: list[Any] = []
    for index, column in enumerate(columns):
        mine = [_drift_point(r, on_p_value) for r in rows if r.get("column") == column]
        label = _plot_text(column, 30)
        handles.append(_line(ax, mine, kind, label, color=f"C{index % 10}"))
    warns = {float(d["warn"]) for d in details if isinstance(d.get("warn"), int | float)}
    for warn in sorted(warns):
        level = max(warn, SMALLEST_P_VALUE) if on_p_value else warn
        handles.append(_target(ax, level, f"warn {warn:g}"))
    if on_p_value:
        ax.set_yscale("log")
        ax.set_ylabel(f"{method} p-value")
    else:
        ax.set_ylabel(method)
    _legend(ax, handles)
    _format_x(ax, kind)


def _drift_point(row: Row, on_p_value: bool) -> Row:
    if not on_p_value:
        return row
    p_value = (row.get("details") or {}).get("p_value")
    value = max(float(p_value), SMALLEST_P_VALUE) if isinstance(p_value, int | float) else None
    return {"window_start": row["window_start"], "value": value}


def _latest_drift(drift: Sequence[Row], kind: str) -> str:
    latest = max(r["window_start"] for r in drift)
    rows = sorted((r for r in drift if r["window_start"] == latest), key=_worst_first)
    when = _when(latest) if kind == "time" else f"rows from {latest}"
    count = sum(1 for r in rows if r.get("severity") != "ok")
    head = ("Column", "Method", "Value", "p-value", "Warn", "Severity")
    cells = [
        (
            f"<code>{escape(str(r.get('column')))}</code>",
            escape(str(r.get("metric"))),
            _fmt(r.get("value")),
            _fmt((r.get("details") or {}).get("p_value")),
            _fmt((r.get("details") or {}).get("warn")),
            _badge(r.get("severity")),
        )
        for r in rows
    ]
    caption = f"Latest window ({when}): {count} of {len(rows)} columns drifted."
    return f"<h3>{escape(caption)}</h3>\n" + _table(head, cells)


def _worst_first(row: Row) -> tuple[int, float]:
    value = _number(row.get("value"))
    return -_rank(row.get("severity")), -(value if not math.isnan(value) else math.inf)


# -- input distributions ---------------------------------------------------------------


def _features_section(
    references: Mapping[str, Reference], windows: Sequence[Row], results: Sequence[Row]
) -> str:
    title = "Input distributions"
    latest = next((w for w in reversed(windows) if (w.get("summary") or {}).get("observed")), None)
    summary = (latest or {}).get("summary") or {}
    reference = _reference_of(references, summary)
    if reference is None:
        return _section(title, _empty("No reference profile: nothing to compare inputs with."))
    observed = summary.get("observed") or {}
    start = latest["start"] if latest is not None else None
    scores = {
        str(r.get("column")): r
        for r in results
        if r.get("check") == "drift" and r.get("window_start") == start
    }
    names = _feature_order(reference.inputs.columns, summary.get("drifted") or [], scores)
    blocks = [
        _feature(reference.inputs.columns[name], observed.get(name), scores.get(name))
        for name in names[:MAX_FEATURES]
    ]
    intro = _features_intro(reference, latest, bool(windows))
    hidden = len(names) - MAX_FEATURES
    more = _note(f"{hidden} more input features not shown.") if hidden > 0 else ""
    return _section(title, intro + '<div class="grid">\n' + "\n".join(blocks) + "</div>" + more)


def _reference_of(references: Mapping[str, Reference], summary: Row) -> Reference | None:
    """The reference the window was compared with, else the version that served most."""
    wanted = [summary.get("drift_reference")]
    wanted += [v.get("version") for v in summary.get("versions") or []]
    found = next((references[k] for k in wanted if isinstance(k, str) and k in references), None)
    return found or next(iter(references.values()), None)


def _features_intro(reference: Reference, latest: Row | None, any_window: bool) -> str:
    if latest is None:
        if any_window:
            why = "No window was checked against a reference yet"
        else:
            why = "No window computed yet"
        return _note(f"{why}: the reference distributions of {reference.ref} are drawn alone.")
    return _note(
        f"Reference {reference.ref} (filled) against the latest window (line), from "
        f"{_when(latest.get('start'))}; drifted inputs first, outlined in red."
    )


def _feature_order(
    columns: Mapping[str, ColumnProfile], drifted: Sequence[Row], scores: Mapping[str, Row]
) -> list[str]:
    """Drifted columns worst first, then the rest by their drift value, largest first."""
    worst = sorted(drifted, key=_worst_first)
    first = [str(d["column"]) for d in worst if d.get("column") in columns]
    rest = [name for name in columns if name not in first]
    rest.sort(key=lambda name: -float((scores.get(name) or {}).get("value") or 0.0))
    return first + rest


def _feature(column: ColumnProfile, observed: Row | None, score: Row | None) -> str:
    if column.kind == NUMERIC:
        chart = _numeric_chart(column, observed)
    else:
        chart = _categorical_chart(column, observed)
    severity = (score or {}).get("severity", "ok")
    outline = "feature drifted" if severity != "ok" else "feature"
    caption = _feature_caption(column, observed, score)
    return f'<figure class="{outline}"><figcaption>{caption}</figcaption>{chart}</figure>'


def _feature_caption(column: ColumnProfile, observed: Row | None, score: Row | None) -> str:
    parts = [f"<b><code>{escape(column.name)}</code></b> {escape(column.kind)}"]
    if score is not None:
        method, value = escape(str(score.get("metric"))), _fmt(score.get("value"))
        parts.append(f"{method} {value} {_badge(score.get('severity'))}")
    facts = []
    if column.kind == NUMERIC:
        facts.append(f"mean {_fmt(column.mean)} → {_fmt((observed or {}).get('mean'))}")
    if observed is not None:
        if column.kind == NUMERIC and _beyond(observed):
            facts.append(_beyond(observed))
        rows = observed.get("count", 0) + observed.get("missing", 0)
        missing = observed.get("missing", 0) / rows if rows else 0.0
        facts.append(f"missing {column.missing_rate:.1%} → {missing:.1%}")
    return " ".join(parts) + ("<br>" + escape("; ".join(facts)) if facts else "")


def _beyond(observed: Row) -> str:
    below, above = observed.get("below", 0), observed.get("above", 0)
    if not below and not above:
        return ""
    low, high = _fmt(observed.get("minimum")), _fmt(observed.get("maximum"))
    return f"beyond the reference range: {below} below (to {low}), {above} above (to {high})"


def _small_figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    # fixed margins: up to thirty of these, and a layout engine would double each one's cost
    figure = Figure(figsize=(3.6, 1.9))
    figure.subplots_adjust(left=0.12, right=0.95, bottom=0.22, top=0.9)
    return figure, figure.subplots()


def _numeric_chart(column: ColumnProfile, observed: Row | None) -> str:
    # Densities on the reference's own bins rather than CDFs: the split points are
    # quantiles, so the bins are narrow where data is dense and share / width is an
    # honest density that reads like any histogram, showing where mass moved (a CDF
    # shows the KS gap, but few readers see a shifted mode in one). Percentile bins are
    # too thin for a window of a few hundred rows, so neighbours are merged into about
    # DISPLAY_BINS bins of equal reference mass.
    bins = _numeric_bins(column, observed)
    if bins is None:
        return _empty("No spread to draw: the reference holds one value or none.")
    edges, reference, current = bins
    figure, ax = _small_figure()
    handles: list[Any] = [
        ax.stairs(reference, edges, fill=True, alpha=0.35, color="C0", label="reference")
    ]
    if current is not None:
        handles.append(ax.stairs(current, edges, color="C3", linewidth=1.4, label="latest window"))
    ax.set_ylabel("density")
    ax.set_yticks([])  # the shapes are the message; densities of incomes are 1e-5 and such
    _compact_ticks(ax)
    _legend(ax, handles)
    return _svg(figure)


def _compact_ticks(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _compact(value)))


def _compact(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= 10 * scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _numeric_bins(column: ColumnProfile, observed: Row | None) -> Bins | None:
    """(edges, reference density, current density) on merged reference bins."""
    splits = np.asarray(column.splits, dtype=np.float64)
    shares = np.asarray(column.shares, dtype=np.float64)
    if len(splits) < 2 or len(shares) != len(splits) + 1 or shares.sum() <= 0:
        return None
    inner = shares[1 : len(splits)].copy()
    inner[0] += shares[0]
    inner[-1] += shares[-1]  # the last bin is the maximum itself: fold it into the one before
    starts = _merged(inner)
    edges = np.append(splits[starts], splits[-1])
    reference = np.add.reduceat(inner, starts)
    counts = np.asarray((observed or {}).get("counts") or [], dtype=np.float64)
    if observed is None or len(counts) != len(shares) or counts.sum() <= 0:
        return edges, _density(reference, edges), None
    return _with_tails(edges, reference, counts, starts, observed)


def _merged(shares: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The first bin of each run of neighbours holding 1 / DISPLAY_BINS of the mass."""
    before = (np.cumsum(shares) - shares) / (shares.sum() / DISPLAY_BINS)
    group = np.floor(before + 1e-9)
    starts: np.ndarray[Any, Any] = np.flatnonzero(np.diff(group, prepend=-1.0))
    return starts


def _with_tails(
    edges: np.ndarray[Any, Any],
    reference: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    observed: Row,
) -> Bins:
    """Add bins beyond the reference's range for the window's rows that fall there."""
    below, above = float(observed.get("below", 0)), float(observed.get("above", 0))
    inner = counts[1:-1].copy()
    inner[0] += counts[0] - below
    inner[-1] += counts[-1] - above
    current = np.add.reduceat(inner, starts)
    # an outlier far out would squash the whole plot, so a tail is drawn at most a quarter
    # of the reference range wide; the caption gives how far it really reaches
    reach = (edges[-1] - edges[0]) / 4
    if below:
        low = max(_number(observed.get("minimum")), edges[0] - reach)
        low = low if low < edges[0] else edges[0] - reach  # also when the minimum is unknown
        edges = np.insert(edges, 0, low)
        reference, current = np.insert(reference, 0, 0.0), np.insert(current, 0, below)
    if above:
        high = min(_number(observed.get("maximum")), edges[-1] + reach)
        high = high if high > edges[-1] else edges[-1] + reach
        edges = np.append(edges, high)
        reference, current = np.append(reference, 0.0), np.append(current, above)
    return edges, _density(reference, edges), _density(current, edges)


def _density(mass: np.ndarray[Any, Any], edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    total = mass.sum()
    share = mass / total if total > 0 else mass
    result: np.ndarray[Any, Any] = share / np.diff(edges)
    return result


def _categorical_chart(column: ColumnProfile, observed: Row | None) -> str:
    names, reference, current = _category_shares(column, observed)
    if not names:
        return _empty("No categories to draw.")
    figure, ax = _small_figure()
    positions = np.arange(len(names), dtype=np.float64)
    handles: list[Any] = [
        ax.bar(positions - 0.2, reference, 0.4, color="C0", alpha=0.6, label="reference")
    ]
    if current is not None:
        handles.append(ax.bar(positions + 0.2, current, 0.4, color="C3", label="latest window"))
    ax.set_xticks(
        positions, [_plot_text(n, 16) for n in names], rotation=30, ha="right", fontsize=6
    )
    ax.set_ylabel("share")
    _legend(ax, handles)
    return _svg(figure)


def _category_shares(
    column: ColumnProfile, observed: Row | None
) -> tuple[list[str], list[float], list[float] | None]:
    """The most common categories on either side, then one bar for all the others."""
    reference = _shares(column.categories, column.other)
    current = _shares(observed.get("categories") or {}, 0) if observed is not None else None
    seen = current or {}
    ranked = sorted(
        set(reference) | set(seen), key=lambda n: (-max(reference.get(n, 0), seen.get(n, 0)), n)
    )
    names = ranked[:MAX_CATEGORIES]
    left = [reference.get(n, 0.0) for n in names]
    right = [seen.get(n, 0.0) for n in names]
    rest = (1 - sum(left) if reference else 0.0, 1 - sum(right) if seen else 0.0)
    if max(rest) > 1e-9:
        names, left, right = [*names, "(all others)"], [*left, rest[0]], [*right, rest[1]]
    return names, left, (right if current is not None else None)


def _shares(counts: Mapping[str, int], other: int) -> dict[str, float]:
    total = sum(counts.values()) + other
    return {str(k): v / total for k, v in counts.items()} if total else {}


# -- performance and service -------------------------------------------------------------


def _performance_section(results: Sequence[Row], windows: Sequence[Row], kind: str) -> str:
    title = "Performance"
    if not windows:
        return _section(title, _empty("No windows computed yet."))
    figures = [
        r
        for r in results
        if r.get("check") in (PERFORMANCE, ESTIMATED)
        and r.get("metric") != "labelled"
        and not r.get("column")
    ]
    metrics = list(dict.fromkeys(str(r.get("metric")) for r in figures))
    versions = list(dict.fromkeys(str(r.get("version")) for r in figures))
    figure, axes = _figure(len(metrics[:MAX_METRICS]) + 1, height=1.6)
    for ax, metric in zip(axes, metrics[:MAX_METRICS], strict=False):
        rows = [r for r in figures if r.get("metric") == metric]
        _performance_axes(ax, metric, rows, versions, kind)
    _labelled_axes(axes[-1], windows, kind)
    hidden = metrics[MAX_METRICS:]
    more = _note(f"Not drawn: {', '.join(hidden)}.") if hidden else ""
    return _section(title, _performance_intro(figures) + _svg(figure) + more)


def _performance_intro(figures: Sequence[Row]) -> str:
    realised = any(r.get("check") == PERFORMANCE for r in figures)
    estimated = any(r.get("check") == ESTIMATED for r in figures)
    if not figures:
        return _empty(
            "No performance figures yet: no window has enough labels, and no estimate "
            "(an estimate needs a classifier's scores)."
        )
    text = (
        "Solid lines are realised figures (from labels), dashed lines the estimate from "
        "the model's confidence, dotted lines the reference's figure; one colour per version."
    )
    if estimated and not realised:
        text += " No window has enough labels yet: only the estimate is drawn."
    return _note(text)


def _performance_axes(
    ax: Axes, metric: str, rows: Sequence[Row], versions: list[str], kind: str
) -> None:
    handles: list[Any] = []
    for index, version in enumerate(versions):
        color = f"C{index % 10}"
        mine = [r for r in rows if r.get("version") == version]
        realised = [r for r in mine if r.get("check") == PERFORMANCE]
        estimated = [r for r in mine if r.get("check") == ESTIMATED]
        label = _plot_text(version, 30)
        handles.append(_line(ax, realised, kind, f"{label} realised", color=color))
        handles.append(
            _line(ax, estimated, kind, f"{label} estimated", color=color, linestyle="--")
        )
        bases = [(r.get("details") or {}).get("reference") for r in mine]
        base = next((b for b in bases if b is not None), None)
        handles.append(_target(ax, base, f"{label} reference", color=color, linestyle=":"))
    ax.set_ylabel(metric)
    _legend(ax, handles)
    _format_x(ax, kind)


def _labelled_axes(ax: Axes, windows: Sequence[Row], kind: str) -> None:
    done = [w for w in windows if w.get("status") == "done"]
    starts = [_x(w["start"], kind) for w in done]
    handles: list[Any] = []
    for key, color in (("rows", "#8c959f"), ("labelled", "C2")):
        values = [float(w.get(key) or 0) for w in done]
        (line,) = ax.plot(starts, values, marker="o", markersize=3, color=color, label=key)
        handles.append(line)
    ax.set_ylabel("rows per window")
    ax.set_ylim(bottom=0)
    _legend(ax, handles)
    _format_x(ax, kind)


def _technical_section(results: Sequence[Row], kind: str) -> str:
    title = "Latency and errors"
    technical = [r for r in results if r.get("check") == "technical"]
    if not technical:
        return _section(title, _empty("No technical results yet."))
    figure, (latency, errors) = _figure(2, height=1.7)
    handles: list[Any] = []
    for metric, label, color in (("latency_p50_ms", "p50", "C0"), ("latency_p99_ms", "p99", "C1")):
        handles += _metric(latency, technical, metric, label, color, kind)
    latency.set_ylabel("latency (ms)")
    _legend(latency, handles)
    _legend(errors, _metric(errors, technical, "error_rate", "error rate", "C3", kind))
    errors.set_ylabel("error rate")
    for ax in (latency, errors):
        ax.set_ylim(bottom=0)
        _format_x(ax, kind)
    intro = _note("Dashed lines are the targets; twice a target is critical.")
    return _section(title, intro + _svg(figure))


def _metric(
    ax: Axes, rows: Sequence[Row], metric: str, label: str, color: str, kind: str
) -> list[Any]:
    mine = [r for r in rows if r.get("metric") == metric]
    if not mine:
        return []
    target = (mine[-1].get("details") or {}).get("target")
    return [
        _line(ax, mine, kind, label, color=color),
        _target(ax, target, f"{label} target", color=color),
    ]
