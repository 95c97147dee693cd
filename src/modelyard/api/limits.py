"""A size limit on the request bodies the API reads whole (JSON); raw files stream.

Routes whose body is a raw file (artifacts, package uploads, dataset content:
``uploads.RAW_BODY`` in their OpenAPI) spool any size to disk. Every other body is
parsed in memory, so one larger than ``MAX_JSON_BODY`` is answered 413 ``too_large``
before it is read past the limit (by its Content-Length, or while it streams).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api.errors import error_response
from modelyard.errors import TooLarge

MAX_JSON_BODY = 16 << 20


class _Exceeded(HTTPException):
    """Raised while a body streams past the limit; FastAPI lets an HTTPException through
    its body parsing, and ``errors._on_http_error`` answers it 413 ``too_large``."""


def raw_routes(routers: Iterable[APIRouter]) -> list[tuple[set[str], re.Pattern[str]]]:
    """(methods, path pattern) of every route of ``routers`` whose body is a raw file."""
    found = []
    for router in routers:
        for route in router.routes:
            extra = getattr(route, "openapi_extra", None) or {}
            content = extra.get("requestBody", {}).get("content", {})
            if isinstance(route, APIRoute) and "application/octet-stream" in content:
                found.append((set(route.methods or ()), route.path_regex))
    return found


class BodyLimit:
    """Refuse a JSON body over ``limit`` bytes with 413, naming the limit; the bodies of
    the ``raw`` routes (methods, path pattern) stream whatever their size."""

    def __init__(
        self,
        app: ASGIApp,
        raw: list[tuple[set[str], re.Pattern[str]]],
        limit: int = MAX_JSON_BODY,
    ) -> None:
        self.app = app
        self.raw = raw
        self.limit = limit

    def _is_raw(self, method: str, path: str) -> bool:
        return any(method in methods and regex.match(path) for methods, regex in self.raw)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_raw(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, f"request body is {int(declared)} bytes")
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _Exceeded(TooLarge.status_code, self._message("request body is larger"))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _Exceeded as exceeded:
            if started:
                raise
            response = error_response(exceeded.status_code, TooLarge.kind, exceeded.detail)
            await response(scope, receive, send)

    def _message(self, what: str) -> str:
        return f"{what}; the limit is {self.limit} bytes for a JSON body"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        response = error_response(TooLarge.status_code, TooLarge.kind, self._message(what))
        await response(scope, receive, send)
