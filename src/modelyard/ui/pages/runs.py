"""Experiments and runs: the experiments list, an experiment's runs table (filter,
sort, chosen columns, cursor paging), a run's page and the comparison of runs.

Every figure comes from the API as the session's key: ``/experiments``,
``/experiments/{name}/summary`` (the columns a table can show), ``/runs/search``
(one page and the cursor of the next), ``/runs/{id}`` and what hangs off it. Metric
histories are fetched by the page's script (``static/runs.js``) and drawn with
Plotly, so choosing another metric never reloads the page.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response

from modelyard.ui.apiclient import ApiError
from modelyard.ui.views import View, page

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)  # offered in the page; any size up to the largest works
DEFAULT_PAGE_SIZE = 50
DEFAULT_PARAMS = 3  # columns shown before the user picks any
DEFAULT_METRICS = 4
COMPARE_LIMITS = (2, 10)
# (order field, header) of the attributes every runs table shows
ATTRIBUTE_COLUMNS = (
    ("name", "run"),
    ("status", "status"),
    ("user", "user"),
    ("start_time", "started"),
    ("duration", "duration"),
)
_POSITION = re.compile(r"at position (\d+)")


_PLAIN_NAME = re.compile(r"^[A-Za-z_][\w.\-/:]*$")


def segment(name: str) -> str:
    """A name as one URL path segment."""
    return quote(name, safe="")


def order_field(column: str) -> str:
    """A column (``params.C``, ``metrics.val loss``, ``start_time``) as the filter
    language writes it: a key that is not a plain name goes in backticks."""
    namespace, dot, key = column.partition(".")
    if not dot or _PLAIN_NAME.match(key):
        return column
    return f"{namespace}.`{key}`"


def split_order(order: str) -> tuple[str, bool]:
    """``"metrics.auc desc"`` as (``metrics.auc``, descending)."""
    text = order.strip()
    for suffix, descending in ((" desc", True), (" asc", False)):
        if text.lower().endswith(suffix):
            return text[: -len(suffix)].strip(), descending
    return text, False


def duration(milliseconds: Any) -> str:
    """A run's duration as ``850 ms``, ``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``."""
    if not isinstance(milliseconds, int | float):
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second:02d} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min"


def render(view: View, template: str, **context: Any) -> Response:
    return view.render(template, duration=duration, **context)


# -- the experiments list ----------------------------------------------------------


@router.get("/experiments")
@page
async def experiments(view: View) -> Response:
    found = await view.api.get("/experiments")
    paths = [f"/experiments/{segment(experiment['name'])}" for experiment in found]
    summaries = await asyncio.gather(*(view.api.get(f"{path}/summary") for path in paths))
    rows = [
        {**experiment, **summary, "href": path}
        for experiment, summary, path in zip(found, summaries, paths, strict=True)
    ]
    rows.sort(key=lambda row: row["last_run_at"] or row["created_at"], reverse=True)
    return render(view, "runs/experiments.html", experiments=rows)


# -- an experiment's runs ----------------------------------------------------------


@dataclass(frozen=True)
class TableState:
    """What a runs table shows; each link on the page is this state with one change."""

    experiment: str
    filter: str = ""
    order: str = ""
    columns: tuple[str, ...] = ()
    picked: bool = False  # the user chose the columns (possibly none)
    size: int = DEFAULT_PAGE_SIZE
    cursor: str = ""
    trail: tuple[str, ...] = field(default=())  # cursors of the pages before, after the first

    def link(self, **changes: Any) -> str:
        state = replace(self, **changes)
        query: list[tuple[str, str]] = []
        if state.filter:
            query.append(("filter", state.filter))
        if state.order:
            query.append(("order", state.order))
        if state.picked:
            query.append(("picked", "1"))
            query.extend(("col", column) for column in state.columns)
        if state.size != DEFAULT_PAGE_SIZE:
            query.append(("size", str(state.size)))
        if state.cursor:
            query.append(("cursor", state.cursor))
            if state.trail:
                query.append(("trail", ",".join(state.trail)))
        return state.path + ("?" + urlencode(query) if query else "")

    @property
    def custom_size(self) -> bool:
        return self.size != DEFAULT_PAGE_SIZE

    @property
    def path(self) -> str:
        return f"/experiments/{segment(self.experiment)}"

    def sorted_by(self, column: str) -> str:
        """The link that sorts by ``column``: ascending first (metrics: descending),
        then the other way; paging starts again."""
        current, descending = split_order(self.order)
        if current == order_field(column):
            descending = not descending
        else:
            descending = column.startswith("metrics.")
        order = order_field(column) + (" desc" if descending else "")
        return self.link(order=order, cursor="", trail=())

    def direction(self, column: str) -> str | None:
        """``ascending``/``descending`` when the table is sorted by ``column``."""
        current, descending = split_order(self.order)
        if current != order_field(column):
            return None
        return "descending" if descending else "ascending"

    @property
    def page_number(self) -> int:
        return len(self.trail) + 2 if self.cursor else 1

    def next_page(self, next_cursor: str) -> str:
        trail = (*self.trail, self.cursor) if self.cursor else ()
        return self.link(cursor=next_cursor, trail=trail)

    def previous_page(self) -> str:
        if not self.trail:
            return self.link(cursor="", trail=())
        return self.link(cursor=self.trail[-1], trail=self.trail[:-1])


@router.get("/experiments/{name}")
@page
async def experiment_runs(
    view: View,
    name: str,
    filter: str = "",
    order: str = "",
    col: Annotated[list[str] | None, Query()] = None,
    picked: str = "",
    size: int = DEFAULT_PAGE_SIZE,
    cursor: str = "",
    trail: str = "",
) -> Response:
    summary = await view.api.get(f"/experiments/{segment(name)}/summary")
    columns = tuple(col or ()) if picked else _default_columns(summary)
    state = TableState(
        experiment=name,
        filter=filter.strip(),
        order=order.strip(),
        columns=columns,
        picked=bool(picked),
        size=size if 1 <= size <= max(PAGE_SIZES) else DEFAULT_PAGE_SIZE,
        cursor=cursor,
        trail=tuple(part for part in trail.split(",") if part),
    )
    runs: list[dict[str, Any]] = []
    next_cursor = None
    problem: dict[str, Any] | None = None
    try:
        found = await view.api.get("/runs/search", params=_search_params(state))
        runs, next_cursor = found["runs"], found["next_cursor"]
    except ApiError as error:
        if error.status not in (400, 422):
            raise
        problem = _problem(error.message, state.filter)
    return render(
        view,
        "runs/experiment.html",
        summary=summary,
        state=state,
        runs=runs,
        next_cursor=next_cursor,
        problem=problem,
        attributes=ATTRIBUTE_COLUMNS,
        page_sizes=sorted({*PAGE_SIZES, state.size}),
        limits=COMPARE_LIMITS,
    )


def _default_columns(summary: dict[str, Any]) -> tuple[str, ...]:
    params = [f"params.{key}" for key in summary["params"][:DEFAULT_PARAMS]]
    metrics = [f"metrics.{key}" for key in summary["metrics"][:DEFAULT_METRICS]]
    return (*params, *metrics)


def _search_params(state: TableState) -> dict[str, Any]:
    params: dict[str, Any] = {"experiments": [state.experiment], "max_results": state.size}
    if state.filter:
        params["filter"] = state.filter
    if state.order:
        params["order_by"] = [state.order]
    if state.cursor:
        params["cursor"] = state.cursor
    return params


def _problem(message: str, text: str) -> dict[str, Any]:
    """The API's refusal, and where in the filter it points (1-based), if it does."""
    found = _POSITION.search(message) if message.startswith("invalid filter") else None
    if found is None:
        return {"message": message, "position": None}
    position = int(found.group(1))
    return {
        "message": message,
        "position": position,
        "before": text[: position - 1],
        "at": text[position - 1 : position] or " ",
        "after": text[position:],
    }


# -- one run -----------------------------------------------------------------------


@router.get("/runs/{run_id}")
@page
async def run_page(view: View, run_id: str) -> Response:
    api = view.api
    run = await api.get(f"/runs/{segment(run_id)}")
    datasets = await api.get(f"/runs/{segment(run_id)}/datasets")
    for use in datasets:
        name = segment(use["dataset"]["name"])
        use["classes"] = (await api.get(f"/datasets/{name}/classes"))["classes"]
    environment = None
    if run["environment_id"]:
        environment = await api.get(f"/environments/{segment(run['environment_id'])}")
    return render(
        view,
        "runs/run.html",
        run=run,
        datasets=datasets,
        environment=environment,
        artifacts=await api.get(f"/runs/{segment(run_id)}/artifacts"),
        versions=await api.get("/versions", params={"run_id": run_id}),
        charts={
            "runs": [{"id": run["id"], "name": run["name"]}],
            "metrics": sorted(run["metrics"]),
        },
    )


# -- comparing runs ----------------------------------------------------------------


@router.get("/compare")
@page
async def compare(view: View, runs: Annotated[list[str] | None, Query()] = None) -> Response:
    ids = list(dict.fromkeys(part for text in runs or () for part in text.split(",") if part))
    low, high = COMPARE_LIMITS
    if not low <= len(ids) <= high:
        message = (
            f"compare needs {low} to {high} runs, not {len(ids)}: tick them in an "
            "experiment's runs table"
        )
        raise ApiError(422, "invalid_input", message)
    found = [await view.api.get(f"/runs/{segment(run_id)}") for run_id in ids]
    return render(
        view,
        "runs/compare.html",
        runs=found,
        sections=_differences(found),
        charts={
            "runs": [{"id": run["id"], "name": run["name"] or run["id"][:8]} for run in found],
            "metrics": sorted({key for run in found for key in run["metrics"]}),
        },
    )


def _differences(runs: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows of the comparison table by section; a row differs when any two runs disagree
    (a value one run lacks counts as different)."""

    def row(label: str, values: list[Any], kind: str = "text") -> dict[str, Any]:
        distinct = {repr(value) for value in values}
        return {"label": label, "values": values, "kind": kind, "differs": len(distinct) > 1}

    attributes = [
        row("experiment", [run["experiment"] for run in runs]),
        row("status", [run["status"] for run in runs], "status"),
        row("user", [run["user"] for run in runs]),
        row("started", [run["start_time"] for run in runs], "time"),
        row("duration", [_duration(run) for run in runs], "duration"),
    ]
    sections = [("Run", attributes)]
    for section, kind in (("params", "text"), ("metrics", "number"), ("tags", "text")):
        keys = sorted({key for run in runs for key in run[section]})
        rows = [row(key, [run[section].get(key) for run in runs], kind) for key in keys]
        if rows:
            sections.append((section.capitalize(), rows))
    return sections


def _duration(run: dict[str, Any]) -> int | None:
    end = run.get("end_time")
    return None if end is None else int(end) - int(run["start_time"])
