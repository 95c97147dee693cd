"""The audit log: the hash chain's verification, and the events filtered by actor,
action, resource, workspace and time, a page at a time (admins of ``default`` only:
the API refuses anyone else, and the page says so)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from modelyard.ui.apiclient import ApiError
from modelyard.ui.views import View, page

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)
FILTERS = ("actor", "action", "resource", "workspace", "since", "until")


@router.get("/audit")
@page
async def audit(
    view: View,
    actor: str = "",
    action: str = "",
    resource: str = "",
    workspace: str = "",
    since: str = "",
    until: str = "",
    after: str = "",
    limit: str = "50",
) -> Response:
    chosen = {
        "actor": actor.strip(),
        "action": action.strip(),
        "resource": resource.strip(),
        "workspace": workspace.strip(),
        "since": since,
        "until": until,
    }
    size = int(limit) if limit.isdigit() and int(limit) in PAGE_SIZES else 50
    start = int(after) if after.isdigit() else None
    params = _api_params(chosen, start, size)
    # one more than a page, to know whether a next page exists
    events = await view.api.get("/audit", params={**params, "limit": size + 1})
    more = len(events) > size
    events = events[:size]
    query = {key: value for key, value in chosen.items() if value}
    if size != 50:
        query["limit"] = str(size)
    return view.render(
        "audit/audit.html",
        events=events,
        chain=await _verify(view),
        chosen=chosen,
        limit=size,
        page_sizes=PAGE_SIZES,
        after=start,
        first_page="/audit?" + urlencode(query),
        next_page=("/audit?" + urlencode({**query, "after": events[-1]["id"]})) if more else "",
        workspaces=sorted(name for name, _ in view.me.get("roles", [])),
    )


def _api_params(chosen: dict[str, str], after: int | None, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        key: chosen[key] for key in ("actor", "action", "resource", "workspace") if chosen[key]
    }
    if chosen["since"]:
        params["since"] = _ms(chosen["since"], "since")
    if chosen["until"]:  # the whole of the last day chosen
        params["until"] = _ms(chosen["until"], "until", days=1)
    if after is not None:
        params["after"] = after
    return params


def _ms(text: str, field: str, days: int = 0) -> int:
    """A date (``2026-12-03``) as milliseconds since the epoch at 00:00 UTC (+ ``days``)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        message = f"'{field}' must be a date like 2026-12-03, got {text!r}"
        raise ApiError(400, "invalid_input", message) from None
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=days)
    return int(moment.timestamp() * 1000)


async def _verify(view: View) -> dict[str, Any]:
    """The chain's check: ``{"intact": True, "events": N}`` or the break the API names."""
    try:
        return dict(await view.api.get("/audit/verify"))
    except ApiError as error:
        if error.kind != "integrity_error":
            raise
        return {"intact": False, "problem": error.message}
