"""Domain records as JSON-ready values: the one converter the API and the CLI share."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


def plain(value: Any) -> Any:
    """Dataclasses, enums, dicts and lists as plain JSON values; other objects as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
