"""Profiles: what a dataset looks like, column by column, in a few kilobytes.

A numeric column keeps a KLL quantile sketch (mergeable: profiles of parts merge
into the profile of the whole), 101 quantiles, the exact share of rows between
consecutive quantiles, moments, range and missing count. A categorical column
keeps its category counts (the top ``TOP_CATEGORIES`` and the rest). A profile is
built in one streaming pass over record batches; when the source can be read a
second time the bin shares are counted exactly rather than read off the sketch.

The parts: ``columns`` (``ColumnProfile``, kinds), ``numeric`` (values, KLL sketch,
bins) and ``categories`` (counts); what others import from them is exported here.

>>> profile = profile_table(pyarrow.parquet.read_table("train.parquet"))
>>> profile.columns["age"].quantiles[50]   # the median
41.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.monitoring.categories import _CategoricalBuilder, category_counts
from modelyard.monitoring.columns import (
    CATEGORICAL,
    KINDS,
    NUMERIC,
    ColumnProfile,
    FloatArray,
    kind_of,
)
from modelyard.monitoring.numeric import (
    _exact_numeric,
    _NumericBuilder,
    bin_counts,
    numeric_values,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "ColumnProfile",
    "FloatArray",
    "Profile",
    "ProfileBuilder",
    "bin_counts",
    "category_counts",
    "exact_shares",
    "kind_of",
    "numeric_values",
    "profile_batches",
    "profile_file",
    "profile_table",
]

BATCH_ROWS = 262_144


@dataclass
class Profile:
    """A dataset's profile: its row count and one ``ColumnProfile`` per column."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        columns = [ColumnProfile.from_dict(c) for c in data.get("columns", [])]
        return cls(rows=int(data.get("rows", 0)), columns={c.name: c for c in columns})

    def merge(self, other: Profile) -> Profile:
        """The profile of both datasets together (needs the sketches; bins are re-read)."""
        builder = ProfileBuilder.from_profile(self)
        builder.merge(ProfileBuilder.from_profile(other))
        return builder.finish()


_Builder = _NumericBuilder | _CategoricalBuilder


class ProfileBuilder:
    """Build a profile from record batches in one pass; builders of parts merge.

    >>> builder = ProfileBuilder()
    >>> for batch in parquet_file.iter_batches():
    ...     builder.update(batch)
    >>> profile = builder.finish()
    """

    def __init__(self, kinds: Mapping[str, str] | None = None) -> None:
        self.kinds = dict(kinds or {})
        self.rows = 0
        self._columns: dict[str, _Builder] = {}

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            builder = self._columns.get(name)
            if builder is None:
                builder = self._columns[name] = self._new(name, column.type)
            builder.update(column)

    def _new(self, name: str, arrow_type: pa.DataType) -> _Builder:
        import pyarrow as pa

        kind = self.kinds.get(name) or kind_of(arrow_type)
        if kind not in KINDS:
            raise InvalidInput(f"column '{name}': kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind == NUMERIC and kind_of(arrow_type) != NUMERIC and not pa.types.is_null(arrow_type):
            raise InvalidInput(f"column '{name}' holds {arrow_type}, which is not numeric")
        if kind == NUMERIC:
            return _NumericBuilder(name, str(arrow_type))
        return _CategoricalBuilder(name, str(arrow_type))

    def merge(self, other: ProfileBuilder) -> None:
        self.rows += other.rows
        for name, theirs in other._columns.items():
            mine = self._columns.get(name)
            if mine is None:
                self._columns[name] = theirs
            elif type(mine) is not type(theirs):
                raise InvalidInput(f"column '{name}' is numeric in one part and not the other")
            else:
                mine.merge(theirs)  # type: ignore[arg-type]

    def finish(self) -> Profile:
        columns = {name: builder.finish() for name, builder in self._columns.items()}
        return Profile(rows=self.rows, columns=columns)

    @classmethod
    def from_profile(cls, profile: Profile) -> ProfileBuilder:
        builder = cls()
        builder.rows = profile.rows
        for name, column in profile.columns.items():
            if column.kind == NUMERIC:
                builder._columns[name] = _NumericBuilder.from_profile(column)
            else:
                builder._columns[name] = _CategoricalBuilder.from_profile(column)
        return builder


def exact_shares(profile: Profile, batches: Iterable[pa.RecordBatch | pa.Table]) -> None:
    """Replace the sketch's bin shares by exact counts from a second pass."""
    numeric = {n: c for n, c in profile.columns.items() if c.kind == NUMERIC and c.count}
    counts = {n: np.zeros(len(c.splits) + 1, dtype=np.int64) for n, c in numeric.items()}
    for batch in batches:
        for name, column in numeric.items():
            if name in batch.schema.names:
                values, _ = numeric_values(batch.column(name))
                counts[name] += bin_counts(column.splits_array(), values)
    for name, column in numeric.items():
        total = counts[name].sum()
        if total:
            column.shares = (counts[name] / total).tolist()


def profile_table(
    table: Any, kinds: Mapping[str, str] | None = None, *, sketch: bool = False
) -> Profile:
    """Profile an in-memory table (PyArrow or pandas) exactly, from sorted columns.

    With ``sketch`` each numeric column also keeps its KLL sketch, so the profile
    can later be merged with others (costs ~3x the time).
    """
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        from modelyard.tracking.datasets import to_arrow

        table = to_arrow(table)
    kinds = dict(kinds or {})
    columns: dict[str, ColumnProfile] = {}
    for name, column in zip(table.schema.names, table.columns, strict=True):
        builder = ProfileBuilder(kinds)._new(name, column.type)
        if isinstance(builder, _NumericBuilder):
            columns[name] = _exact_numeric(name, builder.type, column, sketch)
        else:
            builder.update(column)
            columns[name] = builder.finish()
    return Profile(rows=table.num_rows, columns=columns)


def profile_batches(
    batches: Callable[[], Iterator[pa.RecordBatch]],
    kinds: Mapping[str, str] | None = None,
    *,
    exact: bool = True,
) -> Profile:
    """Profile the batches ``batches()`` yields; with ``exact`` it is called twice."""
    builder = ProfileBuilder(kinds)
    for batch in batches():
        builder.update(batch)
    profile = builder.finish()
    if exact:
        exact_shares(profile, batches())
    return profile


def profile_file(path: Path, kinds: Mapping[str, str] | None = None) -> Profile:
    """Profile a Parquet or CSV file, streaming it (two passes)."""
    import pyarrow as pa

    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInput(f"no file at {path}")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        def batches() -> Iterator[pa.RecordBatch]:
            reader: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(BATCH_ROWS)
            return reader

    elif suffix in (".csv", ".tsv"):
        import pyarrow.csv as pacsv

        delimiter = "\t" if suffix == ".tsv" else ","

        def batches() -> Iterator[pa.RecordBatch]:
            return iter(pacsv.open_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter)))

    else:
        raise InvalidInput(f"cannot profile {path.name}: expected a .parquet, .csv or .tsv file")
    try:
        return profile_batches(batches, kinds)
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidInput(f"cannot read {path.name}: {error}") from None
