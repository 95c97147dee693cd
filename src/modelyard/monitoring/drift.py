"""Drift: how far a column's current distribution has moved from its reference.

The current values are counted on the reference's own bins (101 quantile split
points for a numeric column, its categories for a categorical one) in one
vectorised pass; every statistic is then computed from the two binned
distributions, so the cost is one ``searchsorted`` per column whatever the method.

Methods and what their number means:

=================  ===========  ===========================================
method             column kind  value (higher is more drift)
=================  ===========  ===========================================
``wasserstein``    numeric      Wasserstein-1 distance / reference std
``ks``             numeric      Kolmogorov-Smirnov statistic D (p-value too)
``psi``            both         population stability index
``jensenshannon``  both         Jensen-Shannon distance, base 2, in [0, 1]
``chisquare``      categorical  chi-square statistic (p-value too)
=================  ===========  ===========================================

Default per column kind and window size: below ``SMALL_SAMPLE`` current rows a
test (KS, chi-square) flags on its p-value, where sampling noise is the real
question; at or above it an effect size (normalised Wasserstein, Jensen-Shannon)
flags, so a million-row window does not flag a shift too small to matter.

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

SMALL_SAMPLE = 1000
OK, WARN, CRITICAL = "ok", "warn", "critical"
SEVERITIES = (OK, WARN, CRITICAL)
UNSEEN = "<unseen>"
OTHER = "<other>"
_EPS = 1e-4


def worst(severities: Any) -> str:
    """The most severe of ``severities`` (``ok`` for none)."""
    rank = {OK: 0, WARN: 1, CRITICAL: 2}
    return max(severities, key=rank.__getitem__, default=OK)


@dataclass(frozen=True)
class Method:
    """A drift method: which kinds it applies to, its defaults, and whether its
    thresholds are on the p-value (lower is worse) or on the value."""

    name: str
    kinds: tuple[str, ...]
    warn: float
    critical: float
    on_p_value: bool = False


METHODS = {
    "wasserstein": Method("wasserstein", (NUMERIC,), 0.1, 0.2),
    "ks": Method("ks", (NUMERIC,), 0.05, 0.01, on_p_value=True),
    "psi": Method("psi", (NUMERIC, CATEGORICAL), 0.1, 0.25),
    "jensenshannon": Method("jensenshannon", (NUMERIC, CATEGORICAL), 0.1, 0.2),
    "chisquare": Method("chisquare", (CATEGORICAL,), 0.05, 0.01, on_p_value=True),
}


def default_method(kind: str, current_rows: int) -> str:
    if kind == NUMERIC:
        return "ks" if current_rows < SMALL_SAMPLE else "wasserstein"
    return "chisquare" if current_rows < SMALL_SAMPLE else "jensenshannon"


def check_method(column: str, kind: str, name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise InvalidInput(
            f"column '{column}': drift method {name!r} is not one of {', '.join(METHODS)}"
        )
    if kind not in method.kinds:
        raise InvalidInput(f"column '{column}': method {name!r} does not apply to {kind} columns")
    return method


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


def _distributions(reference: ColumnProfile, observed: Observed) -> tuple[FloatArray, FloatArray]:
    """(reference shares, current shares) over the same bins or categories."""
    if reference.kind == NUMERIC:
        expected = np.asarray(reference.shares, dtype=np.float64)
        actual = np.asarray(observed.counts, dtype=np.float64)
    else:
        names = list(reference.categories)
        expected = np.asarray([reference.categories[n] for n in names], dtype=np.float64)
        actual = np.asarray([observed.categories.get(n, 0) for n in names], dtype=np.float64)
        rest = sum(v for k, v in observed.categories.items() if k not in reference.categories)
        expected = np.append(expected, reference.other)
        actual = np.append(actual, rest)
    return _normalise(expected), _normalise(actual)


def _normalise(counts: FloatArray) -> FloatArray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def _coarse(expected: FloatArray, actual: FloatArray, min_share: float = 0.05) -> Any:
    """Merge adjacent bins until each holds ``min_share`` of the reference (for PSI and
    Jensen-Shannon, which are noisy on many thin bins)."""
    groups: list[list[float]] = []
    acc_e = acc_a = 0.0
    for e, a in zip(expected, actual, strict=True):
        acc_e, acc_a = acc_e + e, acc_a + a
        if acc_e >= min_share:
            groups.append([acc_e, acc_a])
            acc_e = acc_a = 0.0
    if acc_e or acc_a:
        if groups:
            groups[-1][0] += acc_e
            groups[-1][1] += acc_a
        else:
            groups.append([acc_e, acc_a])
    merged = np.asarray(groups, dtype=np.float64)
    return merged[:, 0], merged[:, 1]


def _binned(reference: ColumnProfile, expected: FloatArray, actual: FloatArray) -> Any:
    """Numeric quantile bins coarsened; categories as they are (merging two categories
    would hide a share moving from one to the other)."""
    if reference.kind == NUMERIC:
        return _coarse(expected, actual)
    return expected, actual


def psi(expected: FloatArray, actual: FloatArray) -> float:
    e, a = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(expected: FloatArray, actual: FloatArray) -> float:
    middle = (expected + actual) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(expected > 0, expected * np.log2(expected / middle), 0.0)
        right = np.where(actual > 0, actual * np.log2(actual / middle), 0.0)
    divergence = max(0.0, float(left.sum() + right.sum()) / 2)
    return math.sqrt(min(1.0, divergence))


def _ks(expected: FloatArray, actual: FloatArray, n: int, m: int) -> tuple[float, float]:
    from scipy import stats  # imported on first use: the serving path never pays for it

    statistic = float(np.max(np.abs(np.cumsum(expected) - np.cumsum(actual))))
    effective = n * m / (n + m) if n and m else 0
    p_value = float(stats.kstwo.sf(statistic, max(1, round(effective)))) if effective else 1.0
    return statistic, p_value


def _wasserstein(reference: ColumnProfile, observed: Observed, actual: FloatArray) -> float:
    """W1 between the binned distributions (each linear inside a bin), plus the exact
    contribution of current values beyond the reference's range, over reference std."""
    splits = reference.splits_array()
    expected = np.asarray(reference.shares, dtype=np.float64)
    gap = np.abs(np.cumsum(expected) - np.cumsum(actual))[: len(splits)]
    inside = 0.0
    if len(splits) > 1:
        inside = float(np.sum(np.diff(splits) * (gap[:-1] + gap[1:]) / 2))
    current = max(observed.count, 1)
    tails = (observed.below_mass + observed.above_mass) / current
    scale = reference.std or 0.0
    distance = inside + tails
    if scale > 0:
        return distance / scale
    return 0.0 if distance == 0 else math.inf


def _chisquare(reference: ColumnProfile, observed: Observed) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table of reference and current counts
    (both are samples: testing the current counts against the reference shares as if
    they were exact would flag small references' own noise)."""
    names = list(reference.categories)
    counts = [reference.categories[n] for n in names] + [reference.other]
    current = [observed.categories.get(n, 0) for n in names]
    current.append(sum(v for k, v in observed.categories.items() if k not in reference.categories))
    table = np.asarray([counts, current], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not table[1].sum() or not table[0].sum():
        return 0.0, 1.0
    from scipy import stats

    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def column_drift(
    reference: ColumnProfile,
    observed: Observed,
    method: str | None = None,
    warn: float | None = None,
    critical: float | None = None,
) -> ColumnDrift:
    """Score ``observed`` against ``reference`` with ``method`` (default by kind and size)."""
    name = method or default_method(reference.kind, observed.count)
    spec = check_method(reference.name, reference.kind, name)
    expected, actual = _distributions(reference, observed)
    p_value: float | None = None
    if not observed.count or not reference.count:
        value = 0.0
        p_value = 1.0 if spec.on_p_value else None
    elif name == "wasserstein":
        value = _wasserstein(reference, observed, actual)
    elif name == "ks":
        value, p_value = _ks(expected, actual, reference.count, observed.count)
    elif name == "chisquare":
        value, p_value = _chisquare(reference, observed)
    elif name == "psi":
        value = psi(*_binned(reference, expected, actual))
    else:
        value = jensen_shannon(*_binned(reference, expected, actual))
    warn = spec.warn if warn is None else warn
    critical = spec.critical if critical is None else critical
    severity = _severity(p_value if spec.on_p_value else value, warn, critical, spec.on_p_value)
    detail = _detail(reference, observed, expected, actual)
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
