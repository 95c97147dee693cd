"""Column profiles: one column of a ``Profile``, numeric or categorical.

A column's kind follows its Arrow type (``kind_of``) unless the caller names it.

>>> column = profile.columns["age"]
>>> column.kind, column.missing_rate
('numeric', 0.02)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def kind_of(arrow_type: pa.DataType) -> str:
    """``numeric`` for integers, floats and decimals; ``categorical`` for the rest."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return NUMERIC
    if pa.types.is_decimal(arrow_type):
        return NUMERIC
    return CATEGORICAL


@dataclass
class ColumnProfile:
    """One column of a profile; numeric or categorical fields are set by ``kind``."""

    name: str
    kind: str
    type: str
    count: int = 0
    missing: int = 0
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    sketch: str | None = None
    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0
    distinct: int = 0
    complete: bool = True

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    def histogram(self, bins: int = 20) -> tuple[list[float], list[float]]:
        """(edges, share of rows per bin) on equal-width bins over the column's range."""
        if self.kind != NUMERIC or self.minimum is None or self.maximum is None:
            return [], []
        low, high = self.minimum, self.maximum
        if high <= low:
            return [low, low], [1.0]
        edges = np.linspace(low, high, bins + 1)
        cdf = np.interp(edges, self.splits_array(), self.cdf_at_splits())
        return edges.tolist(), np.diff(cdf).clip(min=0).tolist()

    def splits_array(self) -> FloatArray:
        return np.asarray(self.splits, dtype=np.float64)

    def cdf_at_splits(self) -> FloatArray:
        """Share of rows below each split point; 1 at the last one, the maximum."""
        cumulative = np.cumsum(np.asarray(self.shares, dtype=np.float64))[: len(self.splits)]
        if len(cumulative):
            cumulative[-1] = 1.0
        return cumulative

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "count": self.count,
            "missing": self.missing,
        }
        if self.kind == NUMERIC:
            data |= {
                "min": self.minimum,
                "max": self.maximum,
                "mean": self.mean,
                "std": self.std,
                "quantiles": self.quantiles,
                "splits": self.splits,
                "shares": self.shares,
                "sketch": self.sketch,
            }
        else:
            data |= {
                "categories": self.categories,
                "other": self.other,
                "distinct": self.distinct,
                "complete": self.complete,
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        if data.get("kind") not in KINDS:
            raise InvalidInput(f"column profile kind {data.get('kind')!r} is not one of {KINDS}")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            type=str(data.get("type", "")),
            count=int(data.get("count", 0)),
            missing=int(data.get("missing", 0)),
            minimum=data.get("min"),
            maximum=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            quantiles=list(data.get("quantiles", [])),
            splits=list(data.get("splits", [])),
            shares=list(data.get("shares", [])),
            sketch=data.get("sketch"),
            categories={str(k): int(v) for k, v in data.get("categories", {}).items()},
            other=int(data.get("other", 0)),
            distinct=int(data.get("distinct", 0)),
            complete=bool(data.get("complete", True)),
        )
