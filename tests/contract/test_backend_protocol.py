"""The SDK's two backends implement the one ``Backend`` protocol, and every remote
operation reaches a route the API server has.

Derived from the protocol itself, so a new operation is checked without adding it
to a list: both backends must have it with the protocol's signature, and the remote
one must call (directly or through its own helpers) an API route that exists.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.api.app import create_app
from modelyard.client.backend import Backend
from modelyard.client.local import LocalBackend
from modelyard.client.remote import RemoteBackend
from tests.conftest import sqlite_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# operations the remote backend answers on the client side, without a route
CLIENT_SIDE = {"close", "fetch_package", "batch_journal", "child_environment"}


def protocol_operations() -> list[str]:
    return sorted(
        name
        for name, member in vars(Backend).items()
        if callable(member) and not name.startswith("_")
    )


@pytest.mark.parametrize("backend", [LocalBackend, RemoteBackend])
def test_both_backends_implement_every_operation_with_its_signature(backend: type) -> None:
    operations = protocol_operations()
    assert len(operations) >= 60
    for name in operations:
        wanted = inspect.signature(getattr(Backend, name))
        found = inspect.signature(getattr(backend, name))
        assert list(found.parameters) == list(wanted.parameters), (backend.__name__, name)
        for parameter, expected in wanted.parameters.items():
            actual = found.parameters[parameter]
            assert (actual.kind, actual.default) == (expected.kind, expected.default), (
                backend.__name__,
                name,
                parameter,
            )


def _template(node: ast.expr) -> str | None:
    """``"/models"`` or ``f"/models/{_path(name)}/versions"`` as ``/models/{}/versions``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [value.value if isinstance(value, ast.Constant) else "{}" for value in node.values]
        return "".join(str(part) for part in parts)
    return None


def _calls(function: Any) -> Iterator[tuple[str, str] | str]:
    """The (method, path) requests in ``function``'s body, and the ``self.x`` it calls.

    A path is a literal, an f-string, or a local name assigned one (in any branch).
    """
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    assigned: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], _template(node.value)
            if isinstance(target, ast.Name) and value is not None:
                assigned.setdefault(target.id, []).append(value)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and first.value in METHODS and len(node.args) > 1:
            second = node.args[1]
            paths = assigned.get(second.id, []) if isinstance(second, ast.Name) else []
            for path in [_template(second), *paths]:
                if path is not None:
                    yield str(first.value), path
        callee = node.func
        if (
            isinstance(callee, ast.Attribute)
            and isinstance(callee.value, ast.Name)
            and callee.value.id == "self"
        ):
            yield callee.attr


def _requests(name: str, seen: set[str] | None = None) -> set[tuple[str, str]]:
    seen = seen if seen is not None else set()
    if name in seen or not hasattr(RemoteBackend, name):
        return set()
    seen.add(name)
    found: set[tuple[str, str]] = set()
    for call in _calls(getattr(RemoteBackend, name)):
        found |= {call} if isinstance(call, tuple) else _requests(call, seen)
    return found


def _route_pattern(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{\w+:path\}", "\0", path.removeprefix("/api/v1"))
    pattern = re.sub(r"\{\w+\}", "\1", pattern)
    pattern = re.escape(pattern).replace("\0", ".+").replace("\1", "[^/]+")
    return re.compile(f"^{pattern}$")


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, re.Pattern[str]]]:
    from modelyard.bootstrap import bootstrap

    home: Path = tmp_path_factory.mktemp("protocol") / "home"
    services = bootstrap(sqlite_settings(home))
    try:
        schema = create_app(services).openapi()
    finally:
        services.close()
    return [
        (method.upper(), _route_pattern(path))
        for path, methods in schema["paths"].items()
        for method in methods
    ]


def test_every_remote_operation_calls_a_route_the_server_has(
    routes: list[tuple[str, re.Pattern[str]]],
) -> None:
    unrouted = []
    for name in protocol_operations():
        if name in CLIENT_SIDE:
            continue
        requests = _requests(name)
        concrete = {(m, p.replace("{}", "x")) for m, p in requests}
        reached = [
            (method, path)
            for method, path in concrete
            if any(m == method and pattern.match(path) for m, pattern in routes)
        ]
        if not requests or len(reached) != len(concrete):
            unrouted.append((name, sorted(requests)))
    assert unrouted == []


def test_the_walk_finds_requests_through_helpers() -> None:
    """The detector itself: a direct request and one made through a helper are both seen."""
    assert ("GET", "/models/{}") in _requests("get_model")
    assert _requests("register_version") == {("POST", "/models/{}/versions")}
