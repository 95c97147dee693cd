"""Drift methods: the one registry of statistics a monitor may compare a column with.

A method is one class: its ``name`` (what a spec's ``method`` says), the column
``kinds`` it applies to, its default ``warn`` and ``critical`` thresholds, whether
those are on its p-value (``on_p_value``: lower is worse) or on its value (higher
is worse), and ``score``, its statistic over the column's two binned distributions
(``Binned``). ``DRIFT_METHODS`` holds one of each; spec checks (``check_rules``)
and the computation (``monitoring/drift.py``) both read it, so a new method is a
new class here and its entry in ``DRIFT_METHODS``.

=================  ===========  ===========================================
method             column kind  value (higher is more drift)
=================  ===========  ===========================================
``wasserstein``    numeric      Wasserstein-1 distance / reference std
``ks``             numeric      Kolmogorov-Smirnov statistic D (p-value too)
``psi``            both         population stability index
``jensenshannon``  both         Jensen-Shannon distance, base 2, in [0, 1]
``chisquare``      categorical  chi-square statistic (p-value too)
``hellinger``      both         Hellinger distance, in [0, 1]
=================  ===========  ===========================================

>>> method = DRIFT_METHODS["psi"]
>>> method.kinds, method.warn, method.critical, method.on_p_value
(('numeric', 'categorical'), 0.1, 0.25, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from modelyard.domain.checks import Checks
from modelyard.errors import InvalidInput
from modelyard.monitoring.columns import CATEGORICAL, NUMERIC, FloatArray

__all__ = [
    "DRIFT_METHODS",
    "SMALL_SAMPLE",
    "Binned",
    "DriftMethod",
    "Score",
    "check_rules",
    "default_method",
    "method_for",
]

SMALL_SAMPLE = 1000
_EPS = 1e-4


@dataclass(frozen=True)
class Binned:
    """One column's reference and current window counted on the same bins.

    Numeric: the reference's quantile bins (``splits`` are their inner edges);
    categorical: the reference's categories, then one bin for every other value.
    ``expected`` and ``actual`` are the reference's and the window's shares per
    bin; ``reference_rows`` and ``current_rows`` the values behind them. For a
    numeric column ``scale`` is the reference's standard deviation and ``beyond``
    the mean distance of the window's values past the reference's range.
    """

    kind: str
    expected: FloatArray
    actual: FloatArray
    reference_rows: int
    current_rows: int
    splits: FloatArray = field(default_factory=lambda: np.zeros(0))
    scale: float = 0.0
    beyond: float = 0.0

    def coarse(self, min_share: float = 0.05) -> tuple[FloatArray, FloatArray]:
        """(expected, actual) with adjacent numeric bins merged until each holds
        ``min_share`` of the reference (PSI and the distances are noisy on many thin
        bins); categories as they are (merging two would hide a share moving from one
        to the other)."""
        if self.kind != NUMERIC:
            return self.expected, self.actual
        groups: list[list[float]] = []
        acc_e = acc_a = 0.0
        for e, a in zip(self.expected, self.actual, strict=True):
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

    def counts(self) -> FloatArray:
        """The 2 x bins table of reference and current counts."""
        return np.vstack([self.expected * self.reference_rows, self.actual * self.current_rows])


@dataclass(frozen=True)
class Score:
    """A method's value for one column, and its p-value when it is a test."""

    value: float
    p_value: float | None = None


class DriftMethod:
    """A drift statistic and its defaults; ``score`` computes it from a ``Binned``."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL)
    warn: ClassVar[float] = 0.1
    critical: ClassVar[float] = 0.2
    on_p_value: ClassVar[bool] = False

    def score(self, binned: Binned) -> Score:
        raise NotImplementedError


class Wasserstein(DriftMethod):
    """W1 between the binned distributions (each linear inside a bin), plus the exact
    contribution of values beyond the reference's range, over the reference's std."""

    name = "wasserstein"
    kinds = (NUMERIC,)

    def score(self, binned: Binned) -> Score:
        splits = binned.splits
        gap = np.abs(np.cumsum(binned.expected) - np.cumsum(binned.actual))[: len(splits)]
        inside = 0.0
        if len(splits) > 1:
            inside = float(np.sum(np.diff(splits) * (gap[:-1] + gap[1:]) / 2))
        distance = inside + binned.beyond
        if binned.scale > 0:
            return Score(distance / binned.scale)
        return Score(0.0 if distance == 0 else math.inf)


class KolmogorovSmirnov(DriftMethod):
    """The largest gap between the two cumulative distributions, and its p-value for
    the two sample sizes."""

    name = "ks"
    kinds = (NUMERIC,)
    warn, critical, on_p_value = 0.05, 0.01, True

    def score(self, binned: Binned) -> Score:
        from scipy import stats  # imported on first use: the serving path never pays for it

        gaps = np.abs(np.cumsum(binned.expected) - np.cumsum(binned.actual))
        statistic = float(np.max(gaps))
        n, m = binned.reference_rows, binned.current_rows
        effective = n * m / (n + m) if n and m else 0
        if not effective:
            return Score(statistic, 1.0)
        return Score(statistic, float(stats.kstwo.sf(statistic, max(1, round(effective)))))


class PopulationStability(DriftMethod):
    """Population stability index on coarse bins (shares floored at 1e-4)."""

    name = "psi"
    critical = 0.25

    def score(self, binned: Binned) -> Score:
        expected, actual = binned.coarse()
        e, a = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
        return Score(float(np.sum((a - e) * np.log(a / e))))


class JensenShannon(DriftMethod):
    """Jensen-Shannon distance (base 2, so in [0, 1]) on coarse bins."""

    name = "jensenshannon"

    def score(self, binned: Binned) -> Score:
        expected, actual = binned.coarse()
        middle = (expected + actual) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(expected > 0, expected * np.log2(expected / middle), 0.0)
            right = np.where(actual > 0, actual * np.log2(actual / middle), 0.0)
        divergence = max(0.0, float(left.sum() + right.sum()) / 2)
        return Score(math.sqrt(min(1.0, divergence)))


class ChiSquare(DriftMethod):
    """Chi-square test of homogeneity on the 2 x k table of reference and current counts
    (both are samples: testing the current counts against the reference shares as if
    they were exact would flag small references' own noise)."""

    name = "chisquare"
    kinds = (CATEGORICAL,)
    warn, critical, on_p_value = 0.05, 0.01, True

    def score(self, binned: Binned) -> Score:
        table = binned.counts()
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2 or not table[1].sum() or not table[0].sum():
            return Score(0.0, 1.0)
        from scipy import stats

        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        return Score(statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1)))


class Hellinger(DriftMethod):
    """Hellinger distance on coarse bins: ``sqrt(1 - sum(sqrt(p * q)))``, 0 for the same
    distribution, 1 for two with no bin in common."""

    name = "hellinger"

    def score(self, binned: Binned) -> Score:
        expected, actual = binned.coarse()
        overlap = float(np.sum(np.sqrt(expected * actual)))
        return Score(math.sqrt(max(0.0, 1.0 - overlap)))


DRIFT_METHODS: dict[str, DriftMethod] = {
    method.name: method
    for method in (
        Wasserstein(),
        KolmogorovSmirnov(),
        PopulationStability(),
        JensenShannon(),
        ChiSquare(),
        Hellinger(),
    )
}


def default_method(kind: str, current_rows: int) -> str:
    """Below ``SMALL_SAMPLE`` rows a test decides on its p-value, where sampling noise is
    the real question; from there an effect size, so a million-row window does not flag
    a shift too small to matter."""
    if kind == NUMERIC:
        return "ks" if current_rows < SMALL_SAMPLE else "wasserstein"
    return "chisquare" if current_rows < SMALL_SAMPLE else "jensenshannon"


def _known(name: str, what: str) -> DriftMethod:
    method = DRIFT_METHODS.get(name)
    if method is None:
        raise InvalidInput(f"{what} {name!r} is not one of {', '.join(DRIFT_METHODS)}")
    return method


def method_for(column: str, kind: str, name: str) -> DriftMethod:
    """The method ``name``, or ``InvalidInput`` if there is none or it does not apply to
    ``kind`` columns."""
    method = _known(name, f"column '{column}': drift method")
    if kind not in method.kinds:
        raise InvalidInput(f"column '{column}': method {name!r} does not apply to {kind} columns")
    return method


def check_rules(checks: Checks) -> None:
    """``InvalidInput`` naming the field if a spec's drift rule names an unknown method
    (which kinds it applies to is known only once a column meets its reference)."""
    for what, check in (("drift", checks.drift), ("output_drift", checks.output_drift)):
        for column, rule in check.rules.items():
            if rule.method is not None:
                _known(rule.method, f"checks.{what}.rules.{column}: method")
