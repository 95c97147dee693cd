"""Categorical columns: a count per category, the top ``TOP_CATEGORIES`` kept.

At most ``MAX_TRACKED`` categories are counted while streaming; past that the rarest
are folded into an untracked count and the column is marked incomplete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelyard.monitoring.columns import CATEGORICAL, ColumnProfile

TOP_CATEGORIES = 200
MAX_TRACKED = 10_000


def category_counts(column: Any) -> tuple[Counter[str], int]:
    """(count per category as text, how many were missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, np.ndarray):
        column = pa.array(column, from_pandas=True)
    missing = int(column.null_count)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        column = pc.cast(column, pa.string())
    counts: Counter[str] = Counter()
    for item in pc.value_counts(column).to_pylist():
        if item["values"] is not None:
            counts[item["values"]] = int(item["counts"])
    return counts, missing


class _CategoricalBuilder:
    def __init__(self, name: str, arrow_type: str) -> None:
        self.name = name
        self.type = arrow_type
        self.counts: Counter[str] = Counter()
        self.missing = 0
        self.untracked = 0
        self.complete = True

    def update(self, column: Any) -> None:
        counts, missing = category_counts(column)
        self.missing += missing
        self._add(counts)

    def _add(self, counts: Mapping[str, int]) -> None:
        self.counts.update(counts)
        if len(self.counts) > MAX_TRACKED:
            kept = self.counts.most_common(MAX_TRACKED)
            self.untracked += sum(self.counts.values()) - sum(n for _, n in kept)
            self.counts = Counter(dict(kept))
            self.complete = False

    def merge(self, other: _CategoricalBuilder) -> None:
        self.missing += other.missing
        self.untracked += other.untracked
        self.complete = self.complete and other.complete
        self._add(other.counts)

    def finish(self) -> ColumnProfile:
        top = dict(self.counts.most_common(TOP_CATEGORIES))
        total = sum(self.counts.values()) + self.untracked
        profile = ColumnProfile(self.name, CATEGORICAL, self.type, total, self.missing)
        profile.categories = top
        profile.other = total - sum(top.values())
        profile.distinct = len(self.counts)
        profile.complete = self.complete and len(self.counts) <= TOP_CATEGORIES
        return profile

    @classmethod
    def from_profile(cls, profile: ColumnProfile) -> _CategoricalBuilder:
        builder = cls(profile.name, profile.type)
        builder.counts = Counter(profile.categories)
        builder.missing = profile.missing
        builder.untracked = profile.other
        builder.complete = profile.complete
        return builder
