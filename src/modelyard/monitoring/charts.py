"""matplotlib pieces of a monitor report: figures drawn to inline SVG, time axes, lines."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelyard.monitoring.markup import STORED_INFINITY, Row

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller files, and the reader's own fonts
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}
_SVG_METADATA = {"Format": None, "Type": None, "Creator": None, "Date": None}
_GROUP_ID = re.compile(r'<g id="[^"]*"')


def figure(rows: int = 1, *, width: float = 7.0, height: float = 2.2) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    # A bare Figure rather than pyplot: no global registry to leak figures into (nothing
    # to close) and no backend switch in the host process; savefig picks the SVG canvas.
    figure = Figure(figsize=(width, height * rows), layout="constrained")
    grid = figure.subplots(rows, 1, squeeze=False, sharex=True)
    return figure, [ax for (ax,) in grid]


def svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    text = buffer.getvalue()
    # Group ids ("figure_1", "axes_1") repeat in every figure and nothing refers to them;
    # the ids that are referred to (markers, clip paths) are random, so unique on the page.
    text = _GROUP_ID.sub("<g", text[text.index("<svg") :])
    return f'<div class="plot">{text}</div>'


def x(start: Any, kind: str) -> Any:
    if kind == "time":
        return datetime.fromtimestamp(start / 1000, UTC)
    return start


def format_x(ax: Axes, kind: str) -> None:
    if kind != "time":
        ax.set_xlabel("window (first row)")
        return
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def number(value: Any) -> float:
    """A plottable value: stored infinities and missing figures leave a gap."""
    if not isinstance(value, int | float) or abs(value) >= STORED_INFINITY:
        return math.nan
    return float(value)


def line(ax: Axes, rows: Sequence[Row], kind: str, label: str, **style: Any) -> Artist | None:
    points = [(r["window_start"], number(r.get("value"))) for r in rows]
    if not points:
        return None
    (line,) = ax.plot(
        [x(start, kind) for start, _ in points],
        [value for _, value in points],
        marker="o",
        markersize=3,
        linewidth=1.2,
        label=label,
        **style,
    )
    return line


def marks(ax: Axes, rows: Sequence[Row], kind: str, **style: Any) -> None:
    """Markers only (no line, no legend entry) at ``rows``' values: flags on a line."""
    if rows:
        ax.plot(
            [x(r["window_start"], kind) for r in rows],
            [number(r.get("value")) for r in rows],
            linestyle="none",
            markersize=6,
            label="_nolegend_",
            **style,
        )


def legend(ax: Axes, handles: Sequence[Any]) -> None:
    drawn = [h for h in handles if h is not None]
    if drawn:
        # labels passed explicitly, so a column named "_id" is not taken for a hidden one;
        # beside the axes, never over the data (the constrained layout makes the room)
        ax.legend(
            drawn,
            [str(h.get_label()) for h in drawn],
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
        )


def target(
    ax: Axes, value: Any, label: str, color: str = "#cf222e", linestyle: str = "--"
) -> Artist | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return ax.axhline(value, color=color, linestyle=linestyle, linewidth=1, label=label)


def small_figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    # fixed margins: up to thirty of these, and a layout engine would double each one's cost
    figure = Figure(figsize=(3.6, 1.9))
    figure.subplots_adjust(left=0.12, right=0.95, bottom=0.22, top=0.9)
    return figure, figure.subplots()


def compact_ticks(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: compact(value)))


def compact(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= 10 * scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"
