"""Artifact keys: relative, forward-slash paths that can never leave the store."""

from __future__ import annotations

import re

from modelyard.errors import InvalidInput

_BAD_CHARS = re.compile(r"[\x00-\x1f\\]")


def safe_key(path: str, *, what: str = "artifact path") -> str:
    """Return ``path`` normalised, or raise ``InvalidInput`` if it could escape the store.

    Absolute paths, ``..`` segments, backslashes, control characters and empty
    paths are refused.
    """
    if not path or not path.strip():
        raise InvalidInput(f"{what} is empty")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "://" in path:
        raise InvalidInput(f"{what} {path!r} must be relative, not absolute")
    if _BAD_CHARS.search(path):
        raise InvalidInput(f"{what} {path!r} contains a backslash or control character")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"{what} {path!r} may not contain '..'")
    if not parts:
        raise InvalidInput(f"{what} {path!r} names no file")
    return "/".join(parts)


def join_key(prefix: str, path: str) -> str:
    return f"{safe_key(prefix, what='prefix')}/{safe_key(path)}"
