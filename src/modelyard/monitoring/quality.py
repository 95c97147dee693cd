"""Data quality of a window against its reference profile.

Checks, each with a warn and a critical threshold on a share (0..1):

- ``schema``: columns of the reference missing from the window, or values that
  cannot be read as the reference's kind (critical when any);
- ``missing_rate``: the rise in the share of missing values over the reference;
- ``out_of_range``: the share of numeric values below the reference minimum or
  above its maximum;
- ``unseen_categories``: the share of values in categories the reference never had
  (only when the reference kept every category it saw);
- ``constant``: a column that varied in the reference holds a single value.

>>> findings = quality(reference_profile, observed_by_column, present_columns)
>>> [f.column for f in findings if f.severity != "ok"]
['income']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.monitoring.drift import CRITICAL, OK, WARN, Observed
from modelyard.monitoring.profile import NUMERIC, ColumnProfile, Profile

DEFAULTS: dict[str, tuple[float, float]] = {
    "schema": (0.0, 0.0),
    "missing_rate": (0.05, 0.2),
    "out_of_range": (0.05, 0.15),
    "unseen_categories": (0.01, 0.05),
    "constant": (1.0, 2.0),
}
CHECKS = tuple(DEFAULTS)


@dataclass(frozen=True)
class Finding:
    """One quality check on one column of a window."""

    check: str
    column: str
    value: float
    warn: float
    critical: float
    severity: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _grade(value: float, warn: float, critical: float) -> str:
    if value > critical:
        return CRITICAL
    return WARN if value > warn else OK


def quality(
    reference: Profile,
    observed: Mapping[str, Observed],
    present: Iterable[str],
    thresholds: Mapping[str, tuple[float, float]] | None = None,
) -> list[Finding]:
    """Every quality check for every reference column; ``present`` names the columns the
    window had at all, ``observed`` their summaries."""
    limits = DEFAULTS | dict(thresholds or {})
    present = set(present)
    findings: list[Finding] = []
    for name, column in reference.columns.items():
        seen = observed.get(name)
        if name not in present or seen is None:
            warn, critical = limits["schema"]
            findings.append(
                Finding("schema", name, 1.0, warn, critical, CRITICAL, {"problem": "missing"})
            )
            continue
        findings.extend(_column(column, seen, limits))
    return findings


def _column(
    reference: ColumnProfile, seen: Observed, limits: Mapping[str, tuple[float, float]]
) -> list[Finding]:
    rows = max(seen.rows, 1)
    out = []
    warn, critical = limits["schema"]
    unreadable = seen.unreadable / rows
    out.append(
        Finding(
            "schema",
            reference.name,
            unreadable,
            warn,
            critical,
            _grade(unreadable, warn, critical),
            {"unreadable": seen.unreadable} if seen.unreadable else {},
        )
    )
    rise = max(0.0, seen.missing / rows - reference.missing_rate) if seen.rows else 0.0
    out.append(_finding("missing_rate", reference, rise, limits, reference=reference.missing_rate))
    if reference.kind == NUMERIC:
        share = (seen.below + seen.above) / max(seen.count, 1)
        out.append(
            _finding(
                "out_of_range",
                reference,
                share,
                limits,
                below=seen.below,
                above=seen.above,
                reference_min=reference.minimum,
                reference_max=reference.maximum,
            )
        )
    elif reference.complete:
        unseen = {k: v for k, v in seen.categories.items() if k not in reference.categories}
        share = sum(unseen.values()) / max(seen.count, 1)
        top = sorted(unseen, key=lambda k: -unseen[k])[:5]
        out.append(_finding("unseen_categories", reference, share, limits, examples=top))
    varied = reference.distinct > 1 if reference.kind != NUMERIC else (reference.std or 0) > 0
    constant = 1.0 if seen.count > 1 and seen.distinct_at_most_one and varied else 0.0
    warn, critical = limits["constant"]
    severity = WARN if constant else OK
    out.append(Finding("constant", reference.name, constant, warn, critical, severity))
    return out


def _finding(
    check: str,
    column: ColumnProfile,
    value: float,
    limits: Mapping[str, tuple[float, float]],
    **detail: Any,
) -> Finding:
    warn, critical = limits[check]
    return Finding(check, column.name, value, warn, critical, _grade(value, warn, critical), detail)
