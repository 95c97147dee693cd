"""The report's input distributions: each feature's reference against the latest window."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.monitoring import charts, markup
from modelyard.monitoring.markup import Row
from modelyard.monitoring.profile import NUMERIC

if TYPE_CHECKING:
    from modelyard.monitoring.profile import ColumnProfile
    from modelyard.monitoring.reference import Reference

MAX_FEATURES = 12  # drifted first, then the largest drift values: each figure costs ~0.2 s
MAX_CATEGORIES = 12
DISPLAY_BINS = 20
Bins = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]


def features_section(
    references: Mapping[str, Reference],
    windows: Sequence[Row],
    results: Sequence[Row],
    kind: str,
) -> str:
    title = "Input distributions"
    latest = next((w for w in reversed(windows) if (w.get("summary") or {}).get("observed")), None)
    summary = (latest or {}).get("summary") or {}
    reference = reference_of(references, summary)
    if reference is None:
        return markup.section(
            title, markup.empty("No reference profile: nothing to compare inputs with.")
        )
    observed = summary.get("observed") or {}
    start = latest["start"] if latest is not None else None
    scores = {
        str(r.get("column")): r
        for r in results
        if r.get("check") == "drift" and r.get("window_start") == start
    }
    names = feature_order(reference.inputs.columns, summary.get("drifted") or [], scores)
    blocks = [
        feature(reference.inputs.columns[name], observed.get(name), scores.get(name))
        for name in names[:MAX_FEATURES]
    ]
    intro = features_intro(reference, latest, bool(windows), kind)
    hidden = len(names) - MAX_FEATURES
    more = markup.note(f"{hidden} more input features not shown.") if hidden > 0 else ""
    return markup.section(
        title, intro + '<div class="grid">\n' + "\n".join(blocks) + "</div>" + more
    )


def reference_of(references: Mapping[str, Reference], summary: Row) -> Reference | None:
    """The reference the window was compared with, else the version that served most."""
    wanted = [summary.get("drift_reference")]
    wanted += [v.get("version") for v in summary.get("versions") or []]
    found = next((references[k] for k in wanted if isinstance(k, str) and k in references), None)
    return found or next(iter(references.values()), None)


def features_intro(reference: Reference, latest: Row | None, any_window: bool, kind: str) -> str:
    if latest is None:
        if any_window:
            why = "No window was checked against a reference yet"
        else:
            why = "No window computed yet"
        return markup.note(
            f"{why}: the reference distributions of {reference.ref} are drawn alone."
        )
    return markup.note(
        f"Reference {reference.ref} (filled) against the latest window (line), "
        f"{markup.window_span(latest.get('start'), latest.get('end'), kind)}; drifted inputs "
        "first, outlined in red."
    )


def feature_order(
    columns: Mapping[str, ColumnProfile], drifted: Sequence[Row], scores: Mapping[str, Row]
) -> list[str]:
    """Drifted columns worst first, then the rest by their drift value, largest first."""
    worst = sorted(drifted, key=worst_first)
    first = [str(d["column"]) for d in worst if d.get("column") in columns]
    rest = [name for name in columns if name not in first]
    rest.sort(key=lambda name: -float((scores.get(name) or {}).get("value") or 0.0))
    return first + rest


def feature(column: ColumnProfile, observed: Row | None, score: Row | None) -> str:
    if column.kind == NUMERIC:
        chart = numeric_chart(column, observed)
    else:
        chart = categorical_chart(column, observed)
    severity = (score or {}).get("severity", "ok")
    outline = "feature drifted" if severity != "ok" else "feature"
    caption = feature_caption(column, observed, score)
    return f'<figure class="{outline}"><figcaption>{caption}</figcaption>{chart}</figure>'


def feature_caption(column: ColumnProfile, observed: Row | None, score: Row | None) -> str:
    parts = [f"<b><code>{escape(column.name)}</code></b> {escape(column.kind)}"]
    if score is not None:
        method, value = escape(str(score.get("metric"))), markup.fmt(score.get("value"))
        parts.append(f"{method} {value} {markup.badge(score.get('severity'))}")
    facts = []
    if column.kind == NUMERIC:
        facts.append(f"mean {markup.fmt(column.mean)} → {markup.fmt((observed or {}).get('mean'))}")
    if observed is not None:
        if column.kind == NUMERIC and beyond(observed):
            facts.append(beyond(observed))
        rows = observed.get("count", 0) + observed.get("missing", 0)
        missing = observed.get("missing", 0) / rows if rows else 0.0
        facts.append(f"missing {column.missing_rate:.1%} → {missing:.1%}")
    return " ".join(parts) + ("<br>" + escape("; ".join(facts)) if facts else "")


def beyond(observed: Row) -> str:
    below, above = observed.get("below", 0), observed.get("above", 0)
    if not below and not above:
        return ""
    low, high = markup.fmt(observed.get("minimum")), markup.fmt(observed.get("maximum"))
    return f"beyond the reference range: {below} below (to {low}), {above} above (to {high})"


def numeric_chart(column: ColumnProfile, observed: Row | None) -> str:
    # Densities on the reference's own bins rather than CDFs: the split points are
    # quantiles, so the bins are narrow where data is dense and share / width is an
    # honest density that reads like any histogram, showing where mass moved (a CDF
    # shows the KS gap, but few readers see a shifted mode in one). Percentile bins are
    # too thin for a window of a few hundred rows, so neighbours are merged into about
    # DISPLAY_BINS bins of equal reference mass.
    bins = numeric_bins(column, observed)
    if bins is None:
        return markup.empty("No spread to draw: the reference holds one value or none.")
    edges, reference, current = bins
    figure, ax = charts.small_figure()
    handles: list[Any] = [
        ax.stairs(reference, edges, fill=True, alpha=0.35, color="C0", label="reference")
    ]
    if current is not None:
        handles.append(ax.stairs(current, edges, color="C3", linewidth=1.4, label="latest window"))
    ax.set_ylabel("density")
    ax.set_yticks([])  # the shapes are the message; densities of incomes are 1e-5 and such
    charts.compact_ticks(ax)
    charts.legend(ax, handles)
    return charts.svg(figure)


def numeric_bins(column: ColumnProfile, observed: Row | None) -> Bins | None:
    """(edges, reference density, current density) on merged reference bins."""
    splits = np.asarray(column.splits, dtype=np.float64)
    shares = np.asarray(column.shares, dtype=np.float64)
    if len(splits) < 2 or len(shares) != len(splits) + 1 or shares.sum() <= 0:
        return None
    inner = shares[1 : len(splits)].copy()
    inner[0] += shares[0]
    inner[-1] += shares[-1]  # the last bin is the maximum itself: fold it into the one before
    starts = merged(inner)
    edges = np.append(splits[starts], splits[-1])
    reference = np.add.reduceat(inner, starts)
    counts = np.asarray((observed or {}).get("counts") or [], dtype=np.float64)
    if observed is None or len(counts) != len(shares) or counts.sum() <= 0:
        return edges, density(reference, edges), None
    return with_tails(edges, reference, counts, starts, observed)


def merged(shares: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The first bin of each run of neighbours holding 1 / DISPLAY_BINS of the mass."""
    before = (np.cumsum(shares) - shares) / (shares.sum() / DISPLAY_BINS)
    group = np.floor(before + 1e-9)
    starts: np.ndarray[Any, Any] = np.flatnonzero(np.diff(group, prepend=-1.0))
    return starts


def with_tails(
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
        low = max(charts.number(observed.get("minimum")), edges[0] - reach)
        low = low if low < edges[0] else edges[0] - reach  # also when the minimum is unknown
        edges = np.insert(edges, 0, low)
        reference, current = np.insert(reference, 0, 0.0), np.insert(current, 0, below)
    if above:
        high = min(charts.number(observed.get("maximum")), edges[-1] + reach)
        high = high if high > edges[-1] else edges[-1] + reach
        edges = np.append(edges, high)
        reference, current = np.append(reference, 0.0), np.append(current, above)
    return edges, density(reference, edges), density(current, edges)


def density(mass: np.ndarray[Any, Any], edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    total = mass.sum()
    share = mass / total if total > 0 else mass
    result: np.ndarray[Any, Any] = share / np.diff(edges)
    return result


def categorical_chart(column: ColumnProfile, observed: Row | None) -> str:
    names, reference, current = category_shares(column, observed)
    if not names:
        return markup.empty("No categories to draw.")
    figure, ax = charts.small_figure()
    positions = np.arange(len(names), dtype=np.float64)
    handles: list[Any] = [
        ax.bar(positions - 0.2, reference, 0.4, color="C0", alpha=0.6, label="reference")
    ]
    if current is not None:
        handles.append(ax.bar(positions + 0.2, current, 0.4, color="C3", label="latest window"))
    ax.set_xticks(
        positions, [markup.plot_text(n, 16) for n in names], rotation=30, ha="right", fontsize=6
    )
    ax.set_ylabel("share")
    charts.legend(ax, handles)
    return charts.svg(figure)


def category_shares(
    column: ColumnProfile, observed: Row | None
) -> tuple[list[str], list[float], list[float] | None]:
    """The most common categories on either side, then one bar for all the others."""
    reference = shares(column.categories, column.other)
    current = shares(observed.get("categories") or {}, 0) if observed is not None else None
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


def shares(counts: Mapping[str, int], other: int) -> dict[str, float]:
    total = sum(counts.values()) + other
    return {str(k): v / total for k, v in counts.items()} if total else {}


def worst_first(row: Row) -> tuple[int, float]:
    value = charts.number(row.get("value"))
    return -markup.rank(row.get("severity")), -(value if not math.isnan(value) else math.inf)
