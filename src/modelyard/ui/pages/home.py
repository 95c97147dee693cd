"""The overview: what needs attention in the workspace, and where to go next."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from modelyard.ui.views import View, page

router = APIRouter()


@router.get("/")
@page
async def overview(view: View) -> Response:
    api = view.api
    return view.render(
        "home.html",
        experiments=await api.get("/experiments"),
        models=await api.get("/models"),
        endpoints=await api.get("/endpoints"),
        alerts=await api.get("/alerts"),
    )
