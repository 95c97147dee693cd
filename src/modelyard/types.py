"""Type aliases shared across modelyard."""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any]
ParamValue: TypeAlias = str | int | float | bool | None
