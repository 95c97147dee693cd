"""What every part of the remote backend shares: one ``httpx.Client`` to the server,
requests whose error answers come back as the same modelyard errors, and the helpers
that encode values, model references and bodies for the API."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from modelyard.domain.models import ModelRef
from modelyard.errors import BRANCHES, ERROR_KINDS, InvalidInput, ModelyardError

T = TypeVar("T")
CHUNK = 1 << 20


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def parse(kind: type[T] | Any, data: Any) -> T:
    """JSON data as the domain record ``kind`` (dataclasses, lists of them)."""
    result: T = _adapter(kind).validate_python(data)  # type: ignore[arg-type]
    return result


def _selector(ref: str) -> tuple[str, str]:
    parsed = ModelRef.parse(ref)
    if parsed.alias:
        return parsed.name, f"@{parsed.alias}"
    return parsed.name, "latest" if parsed.version is None else str(parsed.version)


def _quoted_selector(ref: str) -> tuple[str, str]:
    name, selector = _selector(ref)
    return _path(name), _path(selector)


def _path(text: str) -> str:
    return quote(text, safe="")


class RemoteBase:
    """The state ``RemoteBackend.__init__`` sets, and the request helpers its parts use.

    ``RemoteTracking``, ``RemoteCatalog``, ``RemoteEndpoints``, ``RemoteGovernance`` and
    ``RemoteMonitoring`` build on it; ``RemoteBackend`` combines them.
    """

    url: str
    home: Path
    _http: httpx.Client
    _stored_environments: set[str]

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        except httpx.InvalidURL as exc:
            raise InvalidInput(f"cannot build a request to {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @contextlib.contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read in chunks (downloads never sit whole in memory)."""
        try:
            with self._http.stream(method, f"/api/v1{path}", **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: httpx.TransportError) -> ModelyardError:
        return ModelyardError(f"cannot reach modelyard server at {self.url}: {exc}")

    def _error(self, response: httpx.Response) -> ModelyardError:
        try:
            error = response.json()["error"]
            kind, message = str(error["kind"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            return ModelyardError(f"server answered {response.status_code}: {response.text[:200]}")
        return error_class(kind, response.status_code)(message)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _texts(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if values is None else {k: _text(v) for k, v in values.items()}


def _finite_or_none(value: float) -> float | None:
    return None if value != value else value  # NaN is not JSON; the server reads None as NaN


def _body(source: BinaryIO) -> bytes | Iterator[bytes]:
    """A request body that streams ``source`` in chunks (in-memory bytes go as they are)."""
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    return iter(lambda: source.read(CHUNK), b"")


def error_class(kind: str, status_code: int) -> type[ModelyardError]:
    """The error class for a server's error ``kind``; unknown kinds fall back to the branch
    with the same status code (so a newer server's sub-kinds still land on the right branch)."""
    if kind in ERROR_KINDS:
        return ERROR_KINDS[kind]
    for candidate in BRANCHES:
        if candidate.status_code == status_code:
            return candidate
    return ModelyardError
