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

from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from modelyard.clock import now_ms
from modelyard.domain.monitors import Monitor, Window
from modelyard.monitoring import charts, distributions, markup
from modelyard.monitoring.driftmethods import DRIFT_METHODS
from modelyard.monitoring.markup import Row

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from modelyard.monitoring.reference import Reference

__all__ = ["render_report"]

MAX_DRIFT_LINES = 12
MAX_ALERTS = 100
MAX_METRICS = 4
SMALLEST_P_VALUE = 1e-16
PERFORMANCE = "performance"
ESTIMATED = "estimated_performance"


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
    with matplotlib.rc_context(charts.STYLE):
        sections = [
            _header(monitor, references, windows, alerts, stamp),
            _alerts_section(alerts),
            _drift_section(results, kind),
            distributions.features_section(references, windows, results, kind),
            _performance_section(results, windows, kind),
            _technical_section(results, kind),
        ]
    return markup.page(f"Monitor {monitor.name}", sections)


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
        ("Generated", escape(markup.when(stamp))),
        ("Covering", escape(_covered(windows, spec.window.kind))),
        ("Windows computed", _window_counts(windows)),
        ("Open alerts", _open_alerts(alerts)),
        ("References", _references_text(references)),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
    disabled = "" if monitor.enabled else " " + markup.badge("disabled")
    empty = (
        ""
        if windows
        else markup.empty("No windows computed yet: run the monitor to fill this page.")
    )
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
    traffic = (
        f"traffic {markup.when(min(first))} to {markup.when(max(last))}" if first and last else ""
    )
    if kind == "rows":
        span = f"rows {windows[0].get('start')} to {windows[-1].get('end')}"
        return f"{span}, {traffic}" if traffic else span
    return f"{markup.when(windows[0].get('start'))} to {markup.when(windows[-1].get('end'))}"


def _window_counts(windows: Sequence[Row]) -> str:
    if not windows:
        return "none"
    done = [w for w in windows if w.get("status") == "done"]
    by_severity = Counter(str(w.get("severity") or "ok") for w in done)
    parts = [f"{by_severity[s]} {markup.badge(s)}" for s in sorted(by_severity, key=markup.rank)]
    others = Counter(str(w.get("status")) for w in windows if w.get("status") != "done")
    parts += [f"{n} {escape(status)}" for status, n in sorted(others.items())]
    failed = [w for w in windows if w.get("status") == "failed" and w.get("error")]
    if failed:
        parts.append(
            f"last error: <code>{escape(markup.short(str(failed[-1]['error']), 200))}</code>"
        )
    return f"{len(windows)} windows: " + ", ".join(parts)


def _open_alerts(alerts: Sequence[Row]) -> str:
    firing = [a for a in alerts if a.get("status") == "firing"]
    if not firing:
        return "none"
    by_severity = Counter(str(a.get("severity")) for a in firing)
    parts = ", ".join(f"{n} {markup.badge(s)}" for s, n in sorted(by_severity.items()))
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
        return markup.section("Alerts", markup.empty("No alerts."))
    head = ("Check", "Severity", "Status", "Opened", "Resolved", "Summary", "Deliveries")
    rows = [
        (
            f"<code>{escape(str(a.get('check', '')))}</code>",
            markup.badge(a.get("severity")),
            escape(str(a.get("status", ""))),
            escape(markup.when(a.get("opened_at"))),
            escape(markup.when(a.get("resolved_at"))),
            escape(str(a.get("summary", ""))),
            _deliveries(a.get("deliveries") or []),
        )
        for a in alerts[:MAX_ALERTS]
    ]
    more = len(alerts) - MAX_ALERTS
    note = markup.note(f"{more} older alerts not shown.") if more > 0 else ""
    return markup.section("Alerts", markup.table(head, rows) + note)


def _deliveries(deliveries: Sequence[Row]) -> str:
    if not deliveries:
        return "none"
    lines = []
    for item in deliveries:
        line = f"{item.get('event')}: {item.get('channel')} {item.get('status')}"
        if item.get("status") != "sent" and item.get("error"):
            line += f" ({markup.short(str(item['error']), 120)})"
        lines.append(escape(line))
    return "<br>".join(lines)


# -- drift -----------------------------------------------------------------------------


def _drift_section(results: Sequence[Row], kind: str) -> str:
    drift = [r for r in results if r.get("check") == "drift"]
    if not drift:
        return markup.section("Input drift", markup.empty("No drift results yet."))
    return markup.section("Input drift", _drift_chart(drift, kind) + _latest_drift(drift, kind))


def _ever_drifted(drift: Sequence[Row]) -> list[str]:
    """Columns that drifted in some window: the most often, then the worst, first."""
    counts: Counter[str] = Counter()
    worst: dict[str, int] = {}
    for row in drift:
        if row.get("severity") != "ok":
            column = str(row.get("column"))
            counts[column] += 1
            worst[column] = max(worst.get(column, 0), markup.rank(row.get("severity")))
    return sorted(counts, key=lambda c: (-counts[c], -worst[c], c))


def _drift_chart(drift: Sequence[Row], kind: str) -> str:
    drifted = _ever_drifted(drift)
    if not drifted:
        return markup.empty("No input column drifted in these windows.")
    shown = drifted[:MAX_DRIFT_LINES]
    by_method: dict[str, list[Row]] = {}
    for row in drift:
        if row.get("column") in shown:
            by_method.setdefault(str(row.get("metric")), []).append(row)
    figure, axes = charts.figure(len(by_method), height=1.6)
    for ax, (method, rows) in zip(axes, by_method.items(), strict=True):
        _drift_axes(ax, method, rows, shown, kind)
    tests = ", ".join(m.name for m in DRIFT_METHODS.values() if m.on_p_value)
    text = (
        "One line per input column that drifted in any window; the dashed line is the warn "
        f"threshold. Tests ({tests}) are drawn by p-value, where lower means drift."
    )
    drawn = [row for rows in by_method.values() for row in rows]
    if any(_drift_point(row, on_p_value=True).get("floored") for row in drawn):
        text += (
            f" A p-value below {SMALLEST_P_VALUE:g} (or 0) is drawn at {SMALLEST_P_VALUE:g},"
            " marked ▼: a log axis has no place for 0."
        )
    intro = markup.note(text)
    hidden = len(drifted) - len(shown)
    more = markup.note(f"{hidden} more drifted columns not drawn.") if hidden > 0 else ""
    return intro + charts.svg(figure) + more


def _drift_axes(ax: Axes, method: str, rows: Sequence[Row], columns: list[str], kind: str) -> None:
    details = [r.get("details") or {} for r in rows]
    # the tests keep a p-value, and their thresholds are on it
    on_p_value = any(isinstance(d.get("p_value"), int | float) for d in details)
    handles: list[Any] = []
    for index, column in enumerate(columns):
        mine = [_drift_point(r, on_p_value) for r in rows if r.get("column") == column]
        label = markup.plot_text(column, 30)
        color = f"C{index % 10}"
        # the most drifted column first in the legend and on top where lines coincide
        # (several p-values floored at the same window): never hidden by a milder one
        zorder = 3 + (len(columns) - index) / 100
        handles.append(charts.line(ax, mine, kind, label, color=color, zorder=zorder))
        floored = [r for r in mine if r.get("floored")]
        charts.marks(ax, floored, kind, color=color, marker="v", zorder=zorder)
    warns = {float(d["warn"]) for d in details if isinstance(d.get("warn"), int | float)}
    for warn in sorted(warns):
        level = max(warn, SMALLEST_P_VALUE) if on_p_value else warn
        handles.append(charts.target(ax, level, f"warn {warn:g}"))
    if on_p_value:
        ax.set_yscale("log")
        ax.set_ylabel(f"{method} p-value")
    else:
        ax.set_ylabel(method)
    charts.legend(ax, handles)
    charts.format_x(ax, kind)


def _p_value(row: Row) -> float | None:
    p_value = (row.get("details") or {}).get("p_value")
    return float(p_value) if isinstance(p_value, int | float) else None


def _drift_point(row: Row, on_p_value: bool) -> Row:
    """The point drawn for a result: its p-value on a test's axis (log scale, so one
    below ``SMALLEST_P_VALUE``, even 0, is drawn there and flagged ``floored``)."""
    if not on_p_value:
        return row
    p_value = _p_value(row)
    if p_value is None:
        return {"window_start": row["window_start"], "value": None}
    floored = p_value < SMALLEST_P_VALUE
    value = SMALLEST_P_VALUE if floored else p_value
    return {"window_start": row["window_start"], "value": value, "floored": floored}


def _latest_drift(drift: Sequence[Row], kind: str) -> str:
    latest = max(r["window_start"] for r in drift)
    rows = sorted((r for r in drift if r["window_start"] == latest), key=distributions.worst_first)
    when = markup.when(latest) if kind == "time" else f"rows from {latest}"
    count = sum(1 for r in rows if r.get("severity") != "ok")
    head = ("Column", "Method", "Value", "p-value", "Warn", "Severity")
    cells = [
        (
            f"<code>{escape(str(r.get('column')))}</code>",
            escape(str(r.get("metric"))),
            markup.fmt(r.get("value")),
            markup.fmt((r.get("details") or {}).get("p_value")),
            markup.fmt((r.get("details") or {}).get("warn")),
            markup.badge(r.get("severity")),
        )
        for r in rows
    ]
    caption = f"Latest window ({when}): {count} of {len(rows)} columns drifted."
    return f"<h3>{escape(caption)}</h3>\n" + markup.table(head, cells)


# -- performance and service -------------------------------------------------------------


def _performance_section(results: Sequence[Row], windows: Sequence[Row], kind: str) -> str:
    title = "Performance"
    if not windows:
        return markup.section(title, markup.empty("No windows computed yet."))
    figures = [
        r
        for r in results
        if r.get("check") in (PERFORMANCE, ESTIMATED)
        and r.get("metric") != "labelled"
        and not r.get("column")
    ]
    metrics = list(dict.fromkeys(str(r.get("metric")) for r in figures))
    versions = list(dict.fromkeys(str(r.get("version")) for r in figures))
    figure, axes = charts.figure(len(metrics[:MAX_METRICS]) + 1, height=1.6)
    for ax, metric in zip(axes, metrics[:MAX_METRICS], strict=False):
        rows = [r for r in figures if r.get("metric") == metric]
        _performance_axes(ax, metric, rows, versions, kind)
    _labelled_axes(axes[-1], windows, kind)
    hidden = metrics[MAX_METRICS:]
    more = markup.note(f"Not drawn: {', '.join(hidden)}.") if hidden else ""
    return markup.section(title, _performance_intro(figures) + charts.svg(figure) + more)


def _performance_intro(figures: Sequence[Row]) -> str:
    realised = any(r.get("check") == PERFORMANCE for r in figures)
    estimated = any(r.get("check") == ESTIMATED for r in figures)
    if not figures:
        return markup.empty(
            "No performance figures yet: no window has enough labels, and no estimate "
            "(an estimate needs a classifier's scores)."
        )
    text = (
        "Solid lines are realised figures (from labels), dashed lines the estimate from "
        "the model's confidence, dotted lines the reference's figure; one colour per version."
    )
    if estimated and not realised:
        text += " No window has enough labels yet: only the estimate is drawn."
    return markup.note(text)


def _performance_axes(
    ax: Axes, metric: str, rows: Sequence[Row], versions: list[str], kind: str
) -> None:
    handles: list[Any] = []
    for index, version in enumerate(versions):
        color = f"C{index % 10}"
        mine = [r for r in rows if r.get("version") == version]
        realised = [r for r in mine if r.get("check") == PERFORMANCE]
        estimated = [r for r in mine if r.get("check") == ESTIMATED]
        label = markup.plot_text(version, 30)
        handles.append(charts.line(ax, realised, kind, f"{label} realised", color=color))
        handles.append(
            charts.line(ax, estimated, kind, f"{label} estimated", color=color, linestyle="--")
        )
        bases = [(r.get("details") or {}).get("reference") for r in mine]
        base = next((b for b in bases if b is not None), None)
        handles.append(charts.target(ax, base, f"{label} reference", color=color, linestyle=":"))
    ax.set_ylabel(metric)
    charts.legend(ax, handles)
    charts.format_x(ax, kind)


def _labelled_axes(ax: Axes, windows: Sequence[Row], kind: str) -> None:
    done = [w for w in windows if w.get("status") == "done"]
    starts = [charts.x(w["start"], kind) for w in done]
    handles: list[Any] = []
    for key, color in (("rows", "#8c959f"), ("labelled", "C2")):
        values = [float(w.get(key) or 0) for w in done]
        (line,) = ax.plot(starts, values, marker="o", markersize=3, color=color, label=key)
        handles.append(line)
    ax.set_ylabel("rows per window")
    ax.set_ylim(bottom=0)
    charts.legend(ax, handles)
    charts.format_x(ax, kind)


def _technical_section(results: Sequence[Row], kind: str) -> str:
    title = "Latency and errors"
    technical = [r for r in results if r.get("check") == "technical"]
    if not technical:
        return markup.section(title, markup.empty("No technical results yet."))
    figure, (latency, errors) = charts.figure(2, height=1.7)
    handles: list[Any] = []
    for metric, label, color in (("latency_p50_ms", "p50", "C0"), ("latency_p99_ms", "p99", "C1")):
        handles += _metric(latency, technical, metric, label, color, kind)
    latency.set_ylabel("latency (ms)")
    charts.legend(latency, handles)
    charts.legend(errors, _metric(errors, technical, "error_rate", "error rate", "C3", kind))
    errors.set_ylabel("error rate")
    for ax in (latency, errors):
        ax.set_ylim(bottom=0)
        charts.format_x(ax, kind)
    intro = markup.note("Dashed lines are the targets; twice a target is critical.")
    return markup.section(title, intro + charts.svg(figure))


def _metric(
    ax: Axes, rows: Sequence[Row], metric: str, label: str, color: str, kind: str
) -> list[Any]:
    mine = [r for r in rows if r.get("metric") == metric]
    if not mine:
        return []
    target = (mine[-1].get("details") or {}).get("target")
    return [
        charts.line(ax, mine, kind, label, color=color),
        charts.target(ax, target, f"{label} target", color=color),
    ]
