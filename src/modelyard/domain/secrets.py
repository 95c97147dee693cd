"""Named secrets as the platform shows them: a name and who set it when, never the value."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


@dataclass(frozen=True)
class SecretRecord:
    """A stored secret without its value (which only alert channels read)."""

    name: str
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int
    workspace: str = "default"


def check_secret_name(name: str) -> str:
    """``name`` if it is a valid secret name, else ``InvalidInput`` naming it."""
    if not isinstance(name, str) or not _NAME.match(name) or not name.strip("."):
        raise InvalidInput(
            f"invalid secret name {name!r}: use 1 to 128 letters, digits, '-', '_' or '.' "
            "(not only dots)"
        )
    return name
