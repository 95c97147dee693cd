"""The UI's way to the API: in-process HTTP calls with the signed-in key.

A page never reads a service directly: it asks ``/api/v1`` as the browser's key would,
through ``httpx.ASGITransport`` (no socket), so the API's authorisation, workspace
rules and audit apply to every page unchanged.

>>> api = Api(request)                       # the key of the request's session cookie
>>> await api.get("/models", params={"search": "churn"})
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from modelyard.api.session import SESSION_COOKIE, WORKSPACE_COOKIE

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The API refused or failed a page's call: its status, error kind and message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class Api:
    """Calls to ``/api/v1`` as the request's session (or an explicit ``key``)."""

    def __init__(
        self, request: Request, key: str | None = None, workspace: str | None = None
    ) -> None:
        self.request = request
        self.key = key if key is not None else request.cookies.get(SESSION_COOKIE, "")
        chosen = workspace if workspace is not None else request.cookies.get(WORKSPACE_COOKIE)
        self.workspace = chosen or None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        return await self.call("POST", path, json=body, params=params)

    async def call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON answer of ``method path``; ``ApiError`` for any status from 400."""
        answer = await self.send(method, path, **options)
        if answer.status_code >= 400:
            raise _error_of(answer)
        if not answer.content:
            return None
        if answer.headers.get("content-type", "").startswith("application/json"):
            return answer.json()
        return answer.text

    async def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        client = self.request.client
        transport = httpx.ASGITransport(
            app=self.request.app,
            client=(client.host, client.port) if client else ("127.0.0.1", 0),
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://modelyard") as http:
            return await http.request(method, API_PREFIX + path, headers=self._headers(), **options)

    def _headers(self) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self.key}"}
        if self.workspace:
            headers["x-modelyard-workspace"] = self.workspace
        return headers


def _error_of(answer: httpx.Response) -> ApiError:
    try:
        error = answer.json().get("error", {})
    except ValueError:
        error = {}
    kind = str(error.get("kind", "error"))
    message = str(error.get("message", answer.reason_phrase))
    return ApiError(answer.status_code, kind, message)
