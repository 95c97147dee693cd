"""Alert channel specs: what each channel type accepts, checked with errors naming the field.

>>> check_channel_spec({"type": "webhook", "url": "https://hooks.example.com/x"})["retries"]
3
>>> check_channel_spec({"type": "webhook", "url": "ftp://x"})
InvalidInput: webhook channel url: expected an http:// or https:// URL with a host

Tokens and passwords never sit in a spec (which is stored in clear with its
monitor): a spec names a secret (``token_secret``, ``password_secret``), and an
``Authorization`` header or credentials in a URL are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from modelyard.domain.secrets import check_secret_name
from modelyard.errors import InvalidInput

_FIELDS: dict[str, frozenset[str]] = {
    "log": frozenset({"type", "level"}),
    "webhook": frozenset(
        {"type", "url", "headers", "token_secret", "retries", "backoff_s", "timeout_s"}
    ),
    "email": frozenset(
        {
            "type",
            "host",
            "port",
            "from",
            "to",
            "username",
            "password_secret",
            "starttls",
            "timeout_s",
            "retries",
            "backoff_s",
        }
    ),
}
_LEVELS = ("debug", "info", "warning", "error", "critical")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_ADDRESS = re.compile(r"^[^\s@<>,;\"]+@[^\s@<>,;\"]+$")


def check_channel_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with defaults filled in, or ``InvalidInput`` naming the bad field.

    >>> check_channel_spec({"type": "webhook", "url": "https://hooks.example.com/x"})["retries"]
    3
    """
    if not isinstance(spec, Mapping):
        raise InvalidInput("a channel spec must be an object with a 'type'")
    kind = spec.get("type")
    if kind not in _FIELDS:
        known = ", ".join(sorted(_FIELDS))
        raise InvalidInput(f"channel type: expected one of {known} (got {kind!r})")
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        raise InvalidInput(
            f"{kind} channel: unknown field '{unknown[0]}' "
            f"(known: {', '.join(sorted(_FIELDS[kind]))}; keep tokens and passwords in secrets)"
        )
    check = {"log": _check_log, "webhook": _check_webhook, "email": _check_email}[kind]
    return {"type": kind, **check(_Fields(kind, spec))}


class _Fields:
    """Reads one spec's fields, naming the channel type and field in every error."""

    def __init__(self, kind: str, spec: Mapping[str, Any]) -> None:
        self.kind = kind
        self.spec = spec

    def fail(self, name: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{self.kind} channel {name}: {problem}")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.spec.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "expected non-empty text")
        if any(c in value for c in "\r\n\0"):
            raise self.fail(name, "must be one line")
        return value.strip()

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.spec.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number (got {type(value).__name__})")
        if not low <= value <= high:
            raise self.fail(name, f"expected {low:g} to {high:g} (got {value:g})")
        return float(value)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.spec.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected a whole number (got {value!r})")
        if not low <= value <= high:
            raise self.fail(name, f"expected {low} to {high} (got {value})")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.spec.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false (got {value!r})")
        return value

    def secret_name(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return check_secret_name(value)
        except InvalidInput as exc:
            raise self.fail(name, exc.message) from None

    def retry_policy(self, timeout_default: float) -> dict[str, Any]:
        return {
            "retries": self.integer("retries", 3, 0, 10),
            "backoff_s": self.number("backoff_s", 0.5, 0, 60),
            "timeout_s": self.number("timeout_s", timeout_default, 0.1, 120),
        }


def _check_log(fields: _Fields) -> dict[str, Any]:
    level = fields.text("level")
    if level is not None and level.lower() not in _LEVELS:
        raise fields.fail("level", f"expected one of {', '.join(_LEVELS)} (got {level!r})")
    return {"level": level.lower() if level else None}


def _check_webhook(fields: _Fields) -> dict[str, Any]:
    url = fields.text("url", required=True) or ""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise fields.fail("url", f"not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise fields.fail("url", "expected an http:// or https:// URL with a host")
    if parsed.userinfo:
        raise fields.fail("url", "credentials in the URL are stored in clear: use token_secret")
    return {
        "url": url,
        "headers": _headers(fields),
        "token_secret": fields.secret_name("token_secret"),
        **fields.retry_policy(5.0),
    }


def _headers(fields: _Fields) -> dict[str, str]:
    headers = fields.spec.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise fields.fail("headers", "expected an object of header names and values")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise fields.fail("headers", f"invalid header name {name!r}")
        if name.lower() == "authorization":
            raise fields.fail("headers", "keep the token in a secret and name it in token_secret")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise fields.fail("headers", f"header '{name}' needs a one-line text value")
        checked[name] = value
    return checked


def _check_email(fields: _Fields) -> dict[str, Any]:
    username = fields.text("username")
    password_secret = fields.secret_name("password_secret")
    if bool(username) != bool(password_secret):
        raise fields.fail(
            "username" if password_secret else "password_secret",
            "give username and password_secret together",
        )
    return {
        "host": fields.text("host", required=True),
        "port": fields.integer("port", 25, 1, 65535),
        "from": _address(fields, "from", fields.text("from", required=True) or ""),
        "to": _recipients(fields),
        "username": username,
        "password_secret": password_secret,
        "starttls": fields.flag("starttls", False),
        **fields.retry_policy(10.0),
    }


def _recipients(fields: _Fields) -> list[str]:
    to = fields.spec.get("to")
    addresses = [to] if isinstance(to, str) else to
    if not isinstance(addresses, list) or not addresses:
        raise fields.fail("to", "expected an address or a non-empty list of addresses")
    return [_address(fields, "to", address) for address in addresses]


def _address(fields: _Fields, name: str, address: Any) -> str:
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise fields.fail(name, f"not an email address: {address!r}")
    return address.strip()
