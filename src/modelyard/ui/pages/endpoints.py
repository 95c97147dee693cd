"""Endpoints: the list, and one endpoint's routes, revisions, figures and predictions.

``/endpoints/{name}`` shows what serves now (routes and shadows), the revision
timeline with a rollback form (deploy permission), per-version traffic, latency,
errors and accuracy with the primary-vs-shadow agreement (``GET .../compare``,
re-read for another range in the page), and the newest logged predictions, each
linked to its lineage. Reading predictions is audited by the API like any read of
prediction data.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from modelyard.ui.apiclient import Api, ApiError
from modelyard.ui.views import PageNotFound, View, page

router = APIRouter()
RECENT_PREDICTIONS = 20


def path_of(name: str) -> str:
    """A name as one URL path segment."""
    return quote(name, safe="")


@router.get("/endpoints")
@page
async def endpoints(view: View) -> Response:
    api = view.api
    monitors = await api.get("/monitors")
    firing = await api.get("/alerts", params={"status": "firing"})
    by_endpoint: dict[str, list[str]] = {}
    for monitor in monitors:
        by_endpoint.setdefault(monitor["spec"]["endpoint"], []).append(monitor["name"])
    alerts: dict[str, int] = {}
    for alert in firing:
        alerts[alert["monitor"]] = alerts.get(alert["monitor"], 0) + 1
    return view.render(
        "endpoints/list.html",
        endpoints=await api.get("/endpoints"),
        monitors=by_endpoint,
        firing=alerts,
    )


@router.get("/endpoints/{name}")
@page
async def endpoint(view: View, name: str, flash: str = "", error: str = "") -> Response:
    api = view.api
    base = f"/endpoints/{path_of(name)}"
    found = await read_named(view, base, f"endpoint '{name}'")
    revisions = await api.get(base + "/revisions")
    compare = await api.get(base + "/compare")
    monitors = await api.get("/monitors", params={"endpoint": name})
    return view.render(
        "endpoints/endpoint.html",
        endpoint=found,
        revisions=[
            {**revision, "changed": described(revision.get("changes") or {})}
            for revision in sorted(revisions, key=lambda r: r["revision"], reverse=True)
        ],
        compare=compare,
        predictions=await recent_predictions(api, name),
        monitors=monitors,
        flash=flash,
        error=error,
        can_deploy=view.allows("maintainer"),
    )


@router.post("/endpoints/{name}/rollback")
@page
async def rollback(view: View, name: str) -> Response:
    """Roll back to the chosen revision (the API checks the deploy permission)."""
    form = await read_form(view)
    target = f"/endpoints/{path_of(name)}"
    chosen = form.get("to", "").strip()
    if not chosen.isdigit():
        return _back(target, error=f"choose a revision number to roll back to, not '{chosen}'")
    body = {"to": int(chosen), "comment": form.get("comment", "").strip()}
    try:
        done = await view.api.post(target + "/rollback", body)
    except ApiError as refused:
        if refused.status in (400, 409, 422):  # a bad choice: say so on the page
            return _back(target, error=refused.message)
        raise
    message = f"Rolled back to the routes of revision {chosen}: now revision {done['revision']}."
    return _back(target, flash=message)


async def read_named(view: View, path: str, what: str, **params: Any) -> Any:
    """What ``path`` reads, or a 404 naming ``what`` when it is not in the key's workspaces.

    Every member may read, so a read refused (403) means the thing belongs to a
    workspace the key is not a member of: the page does not say whose it is."""
    try:
        return await view.api.get(path, params=params or None)
    except ApiError as error:
        if error.status != 403:
            raise
        mine = ", ".join(sorted(name for name, _ in view.me.get("roles", [])))
        raise PageNotFound(f"There is no {what} in your workspaces ({mine}).") from None


def described(changes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A revision's changes as (field, before, after) texts."""
    return [
        (field, _text(field, change.get("before")), _text(field, change.get("after")))
        for field, change in sorted(changes.items())
        if isinstance(change, dict)
    ]


def _text(field: str, value: Any) -> str:
    if value is None or value == {} or value == []:
        return "none"
    if isinstance(value, dict):
        unit = "%" if field == "routes" else ""
        return ", ".join(f"{key} {item}{unit}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


async def read_form(view: View) -> dict[str, str]:
    """The posted form, its CSRF token checked."""
    from modelyard.ui.app import form_of  # the app imports the pages: read it when called

    form = await form_of(view.request)
    view.check_form(form)
    return form


def _back(target: str, **message: str) -> RedirectResponse:
    return RedirectResponse(f"{target}?{urlencode(message)}", status_code=303)


async def recent_predictions(api: Api, name: str) -> list[dict[str, Any]]:
    """The newest primary predictions, each with what the shadows answered."""
    base = f"/endpoints/{path_of(name)}/predictions"
    params = {"role": "primary", "limit": RECENT_PREDICTIONS, "newest_first": "true"}
    rows = await _arrow_rows(api, base, params)
    if not rows:
        return rows
    shadows = await _arrow_rows(api, base, {"role": "shadow", "id": [r["id"] for r in rows]})
    shadowed: dict[str, list[dict[str, Any]]] = {}
    for row in shadows:
        shadowed.setdefault(row["id"], []).append(row)
    return [{**row, "shadows": shadowed.get(row["id"], [])} for row in rows]


async def _arrow_rows(api: Api, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.send("GET", path, params=params)
    if answer.status_code >= 400:
        error = answer.json().get("error", {})
        raise ApiError(answer.status_code, error.get("kind", "error"), error.get("message", ""))
    table = pa.ipc.open_stream(io.BytesIO(answer.content)).read_all()
    return list(table.to_pylist())
