"""Monitors: per endpoint, and one monitor's drift, performance, quality, service
levels, alerts and retraining requests.

The charts on ``/monitors/{name}`` are drawn in the page from the monitor's results
(embedded as JSON, re-cut by feature, metric and range in the page); the
reference-vs-current distribution of a feature is read by the page from
``GET /references`` (the reference profile's bins) and ``GET /monitors/{name}/windows``
(each window's counts in those bins). Acknowledging an alert and closing a
retraining request are forms the API checks (monitor permission).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from modelyard.ui.apiclient import ApiError
from modelyard.ui.format import when
from modelyard.ui.pages.endpoints import path_of, read_form, read_named
from modelyard.ui.views import View, page

router = APIRouter()
WINDOWS_SHOWN = 100
DRIFT_CHECKS = ("drift", "output_drift")
PERFORMANCE_CHECKS = ("performance", "estimated_performance")


@router.get("/monitors")
@page
async def monitors(view: View) -> Response:
    api = view.api
    found = await api.get("/monitors")
    alerts = await api.get("/alerts", params={"status": "firing"})
    requests = await api.get("/retraining-requests", params={"status": "open"})
    rows = []
    for monitor in sorted(found, key=lambda m: (m["spec"]["endpoint"], m["name"])):
        latest = await api.get(f"/monitors/{path_of(monitor['name'])}/windows", {"limit": 12})
        rows.append(
            {
                **monitor,
                "every": describe_window(monitor["spec"]["window"]),
                "windows": sorted(latest, key=lambda w: w["start"]),
                "firing": [a for a in alerts if a["monitor"] == monitor["name"]],
                "open_requests": sum(r["monitor"] == monitor["name"] for r in requests),
            }
        )
    return view.render("monitors/list.html", monitors=rows)


@router.get("/monitors/{name}")
@page
async def monitor(view: View, name: str, flash: str = "", error: str = "") -> Response:
    api = view.api
    base = f"/monitors/{path_of(name)}"
    found = await read_named(view, base, f"monitor '{name}'")
    windows = sorted(
        await api.get(base + "/windows", {"limit": WINDOWS_SHOWN}), key=lambda w: w["start"]
    )
    results = await api.get(base + "/results")
    shown = {w["start"] for w in windows}
    results = [r for r in results if r["window_start"] in shown]
    alerts = await api.get("/alerts", params={"monitor": name})
    requests = await api.get("/retraining-requests", params={"monitor": name})
    return view.render(
        "monitors/monitor.html",
        monitor=found,
        every=describe_window(found["spec"]["window"]),
        windows=windows,
        charts=chart_data(found, windows, results),
        quality=quality_table(results),
        slos=latest_of(results, "technical"),
        alerts=sorted(alerts, key=lambda a: (a["status"] != "firing", -a["opened_at"])),
        requests=sorted(requests, key=lambda r: (r["status"] != "open", -r["created_at"])),
        can_act=view.allows("maintainer"),
        flash=flash,
        error=error,
    )


@router.post("/monitors/{name}/alerts/{alert_id}/acknowledge")
@page
async def acknowledge(view: View, name: str, alert_id: str) -> Response:
    form = await read_form(view)
    body = {"comment": form.get("comment", "").strip()}
    return await _act(
        view, name, f"/alerts/{path_of(alert_id)}/acknowledge", body, "Alert acknowledged."
    )


@router.post("/monitors/{name}/requests/{request_id}/close")
@page
async def close_request(view: View, name: str, request_id: str) -> Response:
    form = await read_form(view)
    body = {"comment": form.get("comment", "").strip()}
    path = f"/retraining-requests/{path_of(request_id)}/close"
    return await _act(view, name, path, body, "Retraining request closed.")


async def _act(view: View, name: str, path: str, body: dict[str, Any], done: str) -> Response:
    target = f"/monitors/{path_of(name)}"
    try:
        await view.api.post(path, body)
    except ApiError as refused:
        if refused.status in (400, 409, 422):
            return RedirectResponse(f"{target}?{urlencode({'error': refused.message})}", 303)
        raise
    return RedirectResponse(f"{target}?{urlencode({'flash': done})}", status_code=303)


def describe_window(window: dict[str, Any]) -> str:
    """``every 500 rows``, ``every 1 h``, ``every 15 min``."""
    size = int(window.get("size", 0))
    if window.get("kind") == "rows":
        return f"every {size:,} rows"
    for unit, span in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if size >= span and size % span == 0:
            return f"every {size // span} {unit}"
    return f"every {size} ms"


def window_label(monitor: dict[str, Any], start: int, end: int) -> str:
    """How a window is named on an axis: its rows, or its start time."""
    if monitor["spec"]["window"].get("kind") == "rows":
        return f"rows {start:,}\u2013{end:,}"  # an en dash, as a range is set
    return when(start).removesuffix(":00 UTC").removesuffix(" UTC")


def chart_data(
    monitor: dict[str, Any], windows: list[dict[str, Any]], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the page's charts draw: windows, and compact series of the results."""
    labels = {w["start"]: window_label(monitor, w["start"], w["end"]) for w in windows}
    latest = windows[-1]["summary"] if windows else {}
    return {
        "monitor": monitor["name"],
        "reference": latest.get("drift_reference"),
        "windows": [
            {
                "start": w["start"],
                "label": labels[w["start"]],
                "severity": w["severity"],
                "rows": w["rows"],
                "last_ts": (w["summary"] or {}).get("last_ts"),
            }
            for w in windows
        ],
        "drift": _series(results, DRIFT_CHECKS, labels, "p_value"),
        "performance": _series(results, PERFORMANCE_CHECKS, labels, "reference"),
        "technical": _series(results, ("technical",), labels, "target"),
    }


def _series(
    results: list[dict[str, Any]], checks: tuple[str, ...], labels: dict[int, str], extra: str
) -> list[dict[str, Any]]:
    return [
        {
            "window": labels[r["window_start"]],
            "check": r["check"],
            "column": r["column"],
            "metric": r["metric"],
            "version": r["version"],
            "value": r["value"],
            "severity": r["severity"],
            extra: (r["details"] or {}).get(extra),
        }
        for r in results
        if r["check"] in checks and r["metric"] != "labelled"
    ]


SEVERITY_RANK = {"critical": 0, "warn": 1, "ok": 2}


def latest_of(results: list[dict[str, Any]], check: str) -> list[dict[str, Any]]:
    """The newest window's results of ``check``, worst first."""
    found = [r for r in results if r["check"] == check]
    if not found:
        return []
    newest = max(r["window_start"] for r in found)
    return sorted(
        (r for r in found if r["window_start"] == newest),
        key=lambda r: (SEVERITY_RANK.get(r["severity"], 3), r["column"], r["metric"]),
    )


def quality_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest window's data quality, one row per column, worst first."""
    columns: dict[str, dict[str, Any]] = {}
    for result in latest_of(results, "quality"):
        row = columns.setdefault(
            result["column"], {"column": result["column"], "severity": "ok", "metrics": {}}
        )
        row["metrics"][result["metric"]] = result
        if SEVERITY_RANK.get(result["severity"], 3) < SEVERITY_RANK.get(row["severity"], 3):
            row["severity"] = result["severity"]
    return sorted(
        columns.values(), key=lambda r: (SEVERITY_RANK.get(r["severity"], 3), r["column"])
    )
