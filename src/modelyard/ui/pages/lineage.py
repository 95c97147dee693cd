"""Lineage: what fed a node and what it fed, drawn as a graph in the page.

``/lineage?node=KIND:KEY`` reads ``GET /api/v1/lineage`` for the first drawing
(so an unknown or another team's node is a 404 page naming it); clicking a node
in the page re-centres the graph on it from the same API, without a reload.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from modelyard.ui.apiclient import ApiError
from modelyard.ui.pages.endpoints import read_named
from modelyard.ui.views import View, page

router = APIRouter()


@router.get("/lineage")
@page
async def lineage(view: View, node: str = "") -> Response:
    chosen = node.strip()
    graph: dict[str, Any] | None = None
    error = ""
    status = 200
    if chosen:
        try:
            graph = await read_named(view, "/lineage", chosen, node=chosen)
        except ApiError as refused:
            if refused.status not in (400, 422):  # an unknown node is a 404 page naming it
                raise
            error = refused.message
            status = refused.status
    return view.render(
        "lineage/lineage.html",
        status,
        node=chosen,
        graph=graph,
        error=error,
        starts=await starting_points(view),
    )


async def starting_points(view: View) -> list[tuple[str, str]]:
    """Nodes worth starting from: the endpoints and each model's latest version."""
    endpoints = await view.api.get("/endpoints")
    models = await view.api.get("/models")
    found = [(f"endpoint:{e['name']}", f"endpoint {e['name']}") for e in endpoints]
    found += [
        (f"version:{m['name']}/{m['latest_version']}", f"{m['name']} v{m['latest_version']}")
        for m in models
        if m.get("latest_version")
    ]
    return found
