"""Drift: how far a column's current distribution has moved from its reference.

The current values are counted on the reference's own bins (101 quantile split
points for a numeric column, its categories for a categorical one) in one
vectorised pass; every statistic is then computed from the two binned
distributions, so the cost is one ``searchsorted`` per column whatever the method.
The methods (Wasserstein, KS, PSI, Jensen-Shannon, chi-square, ...), their
defaults and their statistics are the registry in ``monitoring/driftmethods.py``;
a rule without a method gets ``default_method`` for the column's kind and the
window's size (a test below 1,000 rows, an effect size from there).

>>> report = drift(reference_profile, current_table)
>>> [c.column for c in report.drifted]
['income', 'age']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.monitoring.driftmethods import Binned, default_method, method_for
from modelyard.monitoring.profile import (
    CATEGORICAL,
    NUMERIC,
    ColumnProfile,
    FloatArray,
    Profile,
    bin_counts,
    category_counts,
    numeric_values,
)

OK, WARN, CRITICAL = "ok", "warn", "critical"
SEVERITIES = (OK, WARN, CRITICAL)
UNSEEN = "<unseen>"
OTHER = "<other>"


def worst(severities: Any) -> str:
    """The most severe of ``severities`` (``ok`` for none)."""
    rank = {OK: 0, WARN: 1, CRITICAL: 2}
    return max(severities, key=rank.__getitem__, default=OK)


# -- what the current window holds, on the reference's bins -----------------------


@dataclass
class Observed:
    """A column of the current window summarised against its reference.

    Numeric: ``counts`` per reference bin (``len(splits) + 1``), range, mean, the
    rows below the reference minimum and above its maximum, and how far beyond
    they reach in total (for the Wasserstein tails). Categorical: counts per
    category as text.
    """

    column: str
    kind: str
    count: int = 0
    missing: int = 0
    counts: list[int] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    distinct_at_most_one: bool = False
    below: int = 0
    above: int = 0
    below_mass: float = 0.0
    above_mass: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0

    @property
    def rows(self) -> int:
        return self.count + self.missing

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}
        return data


def observe(reference: ColumnProfile, values: Any) -> Observed:
    """Summarise ``values`` (an Arrow array or a NumPy array) on ``reference``'s bins."""
    if reference.kind == NUMERIC:
        return _observe_numeric(reference, values)
    counts, missing = category_counts(values)
    observed = Observed(reference.name, CATEGORICAL, sum(counts.values()), missing)
    observed.categories = dict(counts)
    observed.distinct_at_most_one = len(counts) <= 1
    return observed


def _observe_numeric(reference: ColumnProfile, values: Any) -> Observed:
    try:
        present, missing = numeric_values(values)
    except Exception as error:  # text in a numeric column
        raise InvalidInput(f"column '{reference.name}' is not numeric: {error}") from None
    observed = Observed(reference.name, NUMERIC, len(present), missing)
    if not len(present):
        observed.counts = [0] * (len(reference.splits) + 1)
        return observed
    observed.counts = bin_counts(reference.splits_array(), present).tolist()
    observed.minimum, observed.maximum = float(present.min()), float(present.max())
    observed.mean = float(present.mean())
    observed.distinct_at_most_one = observed.minimum == observed.maximum
    if reference.minimum is not None and observed.minimum < reference.minimum:
        low = present[present < reference.minimum]
        observed.below, observed.below_mass = len(low), float((reference.minimum - low).sum())
    if reference.maximum is not None and observed.maximum > reference.maximum:
        high = present[present > reference.maximum]
        observed.above, observed.above_mass = len(high), float((high - reference.maximum).sum())
    return observed


# -- statistics ----------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: the method, its value, and how bad that is."""

    column: str
    kind: str
    method: str
    value: float
    p_value: float | None
    warn: float
    critical: float
    severity: str
    reference_rows: int
    current_rows: int
    detail: dict[str, Any]

    @property
    def drifted(self) -> bool:
        return self.severity != OK

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def binned(reference: ColumnProfile, observed: Observed) -> Binned:
    """``observed`` and its reference as shares over the same bins or categories."""
    if reference.kind == NUMERIC:
        current = max(observed.count, 1)
        return Binned(
            NUMERIC,
            _normalise(np.asarray(reference.shares, dtype=np.float64)),
            _normalise(np.asarray(observed.counts, dtype=np.float64)),
            reference.count,
            observed.count,
            reference.splits_array(),
            reference.std or 0.0,
            (observed.below_mass + observed.above_mass) / current,
        )
    names = list(reference.categories)
    expected = [reference.categories[n] for n in names] + [reference.other]
    actual = [observed.categories.get(n, 0) for n in names]
    actual.append(sum(v for k, v in observed.categories.items() if k not in reference.categories))
    return Binned(
        CATEGORICAL,
        _normalise(np.asarray(expected, dtype=np.float64)),
        _normalise(np.asarray(actual, dtype=np.float64)),
        reference.count,
        observed.count,
    )


def _normalise(counts: FloatArray) -> FloatArray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def column_drift(
    reference: ColumnProfile,
    observed: Observed,
    method: str | None = None,
    warn: float | None = None,
    critical: float | None = None,
) -> ColumnDrift:
    """Score ``observed`` against ``reference`` with ``method`` (default by kind and size)."""
    name = method or default_method(reference.kind, observed.count)
    spec = method_for(reference.name, reference.kind, name)
    bins = binned(reference, observed)
    if not observed.count or not reference.count:
        value, p_value = 0.0, (1.0 if spec.on_p_value else None)
    else:
        score = spec.score(bins)
        value, p_value = score.value, score.p_value
    warn = spec.warn if warn is None else warn
    critical = spec.critical if critical is None else critical
    severity = _severity(p_value if spec.on_p_value else value, warn, critical, spec.on_p_value)
    detail = _detail(reference, observed, bins.expected, bins.actual)
    return ColumnDrift(
        reference.name,
        reference.kind,
        name,
        value,
        p_value,
        warn,
        critical,
        severity,
        reference.count,
        observed.count,
        detail,
    )


def _severity(score: float | None, warn: float, critical: float, lower_is_worse: bool) -> str:
    if score is None or math.isnan(score):
        return OK
    if lower_is_worse:
        return CRITICAL if score < critical else WARN if score < warn else OK
    return CRITICAL if score >= critical else WARN if score >= warn else OK


def _detail(
    reference: ColumnProfile, observed: Observed, expected: FloatArray, actual: FloatArray
) -> dict[str, Any]:
    """What moved, in words a reviewer reads: the mean in reference standard deviations
    for numbers, the categories whose share moved most for categories."""
    if reference.kind == NUMERIC:
        std = reference.std or 0.0
        if observed.mean is None or reference.mean is None:
            return {}
        shift = (observed.mean - reference.mean) / std if std > 0 else None
        return {
            "reference_mean": reference.mean,
            "current_mean": observed.mean,
            "mean_shift_std": shift,
        }
    names = [*reference.categories, OTHER]
    moved = sorted(
        zip(names, expected.tolist(), actual.tolist(), strict=True),
        key=lambda item: -abs(item[2] - item[1]),
    )[:5]
    return {"largest_moves": [{"category": n, "reference": e, "current": a} for n, e, a in moved]}


def holm(results: list[ColumnDrift]) -> list[ColumnDrift]:
    """Holm's step-down adjustment of the p-values of the tests among ``results``.

    Many columns tested at once would flag some by chance alone (30 columns at
    p < 0.05 flag one or two in most clean windows); Holm keeps the chance of any
    false flag in the window at the nominal level. Effect-size methods pass
    through unchanged; the raw p-value stays in ``detail``.
    """
    tested = [(i, r) for i, r in enumerate(results) if r.p_value is not None]
    tested.sort(key=lambda item: item[1].p_value or 0.0)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, (index, result) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * float(result.p_value or 0.0)))
        adjusted[index] = running
    out = []
    for index, result in enumerate(results):
        if index not in adjusted:
            out.append(result)
            continue
        p_value = adjusted[index]
        severity = _severity(p_value, result.warn, result.critical, lower_is_worse=True)
        detail = {**result.detail, "raw_p_value": result.p_value, "adjustment": "holm"}
        out.append(replace(result, p_value=p_value, severity=severity, detail=detail))
    return out


# -- a whole table ---------------------------------------------------------------------


@dataclass(frozen=True)
class DriftReport:
    """Drift of every compared column; ``drifted`` lists those past their warn threshold."""

    columns: list[ColumnDrift]
    observed: dict[str, Observed]

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    @property
    def severity(self) -> str:
        return worst(c.severity for c in self.columns)


@dataclass(frozen=True)
class ColumnRule:
    """How one column is compared: its method and thresholds (``None`` = defaults)."""

    method: str | None = None
    warn: float | None = None
    critical: float | None = None


def drift(
    reference: Profile,
    current: Any,
    rules: Mapping[str, ColumnRule] | None = None,
    columns: list[str] | None = None,
) -> DriftReport:
    """Drift of ``current`` (a PyArrow table, a pandas DataFrame or a mapping of column
    name to array) against ``reference``, for ``columns`` (default: every column of
    the reference that ``current`` has)."""
    rules = rules or {}
    names = columns or [n for n in reference.columns if _has(current, n)]
    results, observed = [], {}
    for name in names:
        column = reference.columns.get(name)
        if column is None:
            raise InvalidInput(f"column '{name}' is not in the reference profile")
        if not _has(current, name):
            raise InvalidInput(f"column '{name}' is not in the current data")
        seen = observe(column, column_values(current, name))
        rule = rules.get(name, ColumnRule())
        observed[name] = seen
        results.append(column_drift(column, seen, rule.method, rule.warn, rule.critical))
    return DriftReport(holm(results), observed)


def _has(data: Any, name: str) -> bool:
    if hasattr(data, "schema") and hasattr(data.schema, "names"):
        return name in data.schema.names
    return name in data


def column_values(data: Any, name: str) -> Any:
    """One column of ``data`` as an Arrow or NumPy array, without copying where possible."""
    if hasattr(data, "schema") and hasattr(data, "column"):
        return data.column(name)
    column = data[name]
    if hasattr(column, "to_numpy") and not isinstance(column, np.ndarray):
        dtype = getattr(column, "dtype", None)
        if dtype is not None and getattr(dtype, "kind", "O") in "fiub":
            return column.to_numpy()
        import pyarrow as pa

        return pa.array(column, from_pandas=True)
    return column
