"""Reproducing a run: what it recorded against what a new run gives.

Plain rules, no I/O: the differences between a recorded environment and the
current one, and the comparison of two runs' metrics within a relative tolerance.
``client/reproduce.py`` gathers the facts (git, files, the new run) and uses these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

REPRODUCES_TAG = "modelyard.reproduces"  # on a run made by ``reproduce``: the original's id
REPRODUCTION_TAG = "modelyard.reproduction"  # one token per ``reproduce`` call, to find it
DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class EnvironmentDifference:
    """One way the current environment differs from the recorded one: ``what`` is
    ``python`` or a package name; a missing side is None."""

    what: str
    recorded: str | None
    current: str | None

    def __str__(self) -> str:
        if self.current is None:
            return f"{self.what} {self.recorded} is not installed"
        if self.recorded is None:
            return f"{self.what} {self.current} is installed but the run did not have it"
        return f"{self.what} is {self.current}, the run had {self.recorded}"


def environment_differences(
    recorded_python: str,
    recorded_packages: Mapping[str, str],
    current_python: str,
    current_packages: Mapping[str, str],
) -> list[EnvironmentDifference]:
    """Every difference: the Python version, then packages by name (changed, missing,
    extra)."""
    found = []
    if recorded_python != current_python:
        found.append(EnvironmentDifference("python", recorded_python, current_python))
    for name in sorted(set(recorded_packages) | set(current_packages)):
        recorded, current = recorded_packages.get(name), current_packages.get(name)
        if recorded != current:
            found.append(EnvironmentDifference(name, recorded, current))
    return found


@dataclass(frozen=True)
class Check:
    """One line of the comparison: a metric (or a dataset's fingerprint, ``dataset:NAME``)
    of the original run and of the reproduction; ``difference`` is relative."""

    key: str
    original: float | str | None
    reproduced: float | str | None
    difference: float | None
    ok: bool


def relative_difference(original: float, reproduced: float) -> float:
    """|reproduced - original| / |original| (absolute when the original is 0)."""
    if math.isnan(original) and math.isnan(reproduced):
        return 0.0
    if original == reproduced:
        return 0.0
    scale = abs(original)
    return abs(reproduced - original) / scale if scale else abs(reproduced - original)


def compare_metrics(
    original: Mapping[str, float], reproduced: Mapping[str, float], tolerance: float
) -> list[Check]:
    """Each metric of the original run against the reproduction's, within ``tolerance``
    (relative); a metric the reproduction did not log fails."""
    checks = []
    for key in sorted(original):
        value = original[key]
        if key not in reproduced:
            checks.append(Check(f"metrics.{key}", value, None, None, False))
            continue
        difference = relative_difference(value, reproduced[key])
        ok = not math.isnan(difference) and difference <= tolerance
        checks.append(Check(f"metrics.{key}", value, reproduced[key], difference, ok))
    return checks


def compare_datasets(original: Mapping[str, str], reproduced: Mapping[str, str]) -> list[Check]:
    """Each dataset (``name (role)`` to content fingerprint) of the original run against
    the reproduction's: the same content, or the check fails."""
    return [
        Check(
            f"dataset:{key}",
            fingerprint,
            reproduced.get(key),
            None,
            reproduced.get(key) == fingerprint,
        )
        for key, fingerprint in sorted(original.items())
    ]


@dataclass(frozen=True)
class Reproduction:
    """What ``yard.runs.reproduce`` did: the new run, the environment's differences
    (allowed, or there would be no new run) and the checks; ``ok`` when all pass."""

    original: str
    run_id: str
    commit: str
    checks: list[Check]
    tolerance: float
    environment: list[EnvironmentDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]
