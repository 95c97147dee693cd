"""Reading a channel spec's fields, each error naming the channel type and the field.

A channel type (``monitoring/channels.py``) checks its spec with a ``ChannelFields``:

>>> fields = ChannelFields("webhook", {"type": "webhook", "url": "ftp://x"})
>>> fields.url("url")
InvalidInput: webhook channel url: expected an http:// or https:// URL with a host

Tokens and passwords never sit in a spec (which is stored in clear with its
monitor): a spec names a secret (``secret_name``), and credentials in a URL are
refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from modelyard.domain.secrets import check_secret_name
from modelyard.errors import InvalidInput

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_ADDRESS = re.compile(r"^[^\s@<>,;\"]+@[^\s@<>,;\"]+$")


class ChannelFields:
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

    def url(self, name: str) -> str:
        """A required http(s) URL with a host and no credentials."""
        url = self.text(name, required=True) or ""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise self.fail(name, f"not a URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise self.fail(name, "expected an http:// or https:// URL with a host")
        if parsed.userinfo:
            raise self.fail(name, "credentials in the URL are stored in clear: use token_secret")
        return url

    def headers(self, name: str) -> dict[str, str]:
        """HTTP header names and one-line values; never ``Authorization`` (a token
        belongs in a secret)."""
        headers = self.spec.get(name) or {}
        if not isinstance(headers, Mapping):
            raise self.fail(name, "expected an object of header names and values")
        checked: dict[str, str] = {}
        for header, value in headers.items():
            if not isinstance(header, str) or not _HEADER_NAME.match(header):
                raise self.fail(name, f"invalid header name {header!r}")
            if header.lower() == "authorization":
                raise self.fail(name, "keep the token in a secret and name it in token_secret")
            if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                raise self.fail(name, f"header '{header}' needs a one-line text value")
            checked[header] = value
        return checked

    def address(self, name: str) -> str:
        """A required email address."""
        return self._address(name, self.text(name, required=True))

    def addresses(self, name: str) -> list[str]:
        """An address or a non-empty list of them, as a list."""
        value = self.spec.get(name)
        addresses = [value] if isinstance(value, str) else value
        if not isinstance(addresses, list) or not addresses:
            raise self.fail(name, "expected an address or a non-empty list of addresses")
        return [self._address(name, address) for address in addresses]

    def _address(self, name: str, address: Any) -> str:
        if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
            raise self.fail(name, f"not an email address: {address!r}")
        return address.strip()

    def secret_name(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
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
