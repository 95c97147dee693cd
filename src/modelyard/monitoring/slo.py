"""Service levels: a window's latency, error rate and throughput against their targets.

A figure past its target is a warning and past twice it (half it, for throughput)
critical; a figure without a target is reported as ``ok``.

Service levels are figures of online serving, so they are computed over the
window's ``primary`` rows only. A monitor that also reads ``batch`` traffic
(``Spec.traffic``) would be skewed by batch rows: each carries its whole scoring
batch's compute time as ``latency_ms``, every row of a batch shares one timestamp
(a burst, not a request rate), and a batch never logs a failed row (a bad batch
fails the job). A window without primary rows has no service-level results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelyard.domain.monitors import Spec
from modelyard.monitoring.drift import CRITICAL, OK, WARN
from modelyard.monitoring.results import Result
from modelyard.monitoring.window_data import WindowData

if TYPE_CHECKING:
    import pyarrow as pa


def service_levels(spec: Spec, window: WindowData) -> list[Result]:
    """Latency p50 and p99, error rate and throughput of ``window``, graded by ``spec``."""
    check = spec.checks.technical
    table = _online(window.table)
    rows = int(table.num_rows)
    if not rows:
        return []
    latency = np.asarray(table.column("latency_ms").to_pylist(), dtype=np.float64)
    errors = rows - table.column("error").null_count
    stamps = table.column("ts").to_pylist()
    if window.kind == "time":
        seconds = max((window.end - window.start) / 1000.0, 1e-3)
    else:
        seconds = max((max(stamps) - min(stamps)) / 1000.0, 1e-3)
    figures = {
        "latency_p50_ms": (float(np.percentile(latency, 50)), check.latency_p50_ms, False),
        "latency_p99_ms": (float(np.percentile(latency, 99)), check.latency_p99_ms, False),
        "error_rate": (errors / rows, check.error_rate, False),
        "throughput_rps": (rows / seconds, check.min_throughput_rps, True),
    }
    results = []
    for metric, (value, target, at_least) in figures.items():
        severity = OK
        if target is not None:
            if at_least:
                severity = CRITICAL if value < target / 2 else WARN if value < target else OK
            else:
                severity = CRITICAL if value > 2 * target else WARN if value > target else OK
        results.append(Result("technical", metric, value, severity, details={"target": target}))
    return results


def _online(table: pa.Table) -> pa.Table:
    """The ``primary`` rows of ``table``: the online requests."""
    import pyarrow.compute as pc

    if "role" not in table.schema.names:
        return table
    return table.filter(pc.equal(table.column("role"), "primary"))
