"""Service levels: a window's latency, error rate and throughput against their targets.

A figure past its target is a warning and past twice it (half it, for throughput)
critical; a figure without a target is reported as ``ok``.
"""

from __future__ import annotations

import numpy as np

from modelyard.domain.monitors import Spec
from modelyard.monitoring.drift import CRITICAL, OK, WARN
from modelyard.monitoring.results import Result
from modelyard.monitoring.window_data import WindowData


def service_levels(spec: Spec, window: WindowData) -> list[Result]:
    """Latency p50 and p99, error rate and throughput of ``window``, graded by ``spec``."""
    check = spec.checks.technical
    if not window.rows:
        return []
    latency = np.asarray(window.table.column("latency_ms").to_pylist(), dtype=np.float64)
    errors = window.rows - window.table.column("error").null_count
    stamps = window.table.column("ts").to_pylist()
    if window.kind == "time":
        seconds = max((window.end - window.start) / 1000.0, 1e-3)
    else:
        seconds = max((max(stamps) - min(stamps)) / 1000.0, 1e-3)
    figures = {
        "latency_p50_ms": (float(np.percentile(latency, 50)), check.latency_p50_ms, False),
        "latency_p99_ms": (float(np.percentile(latency, 99)), check.latency_p99_ms, False),
        "error_rate": (errors / window.rows, check.error_rate, False),
        "throughput_rps": (window.rows / seconds, check.min_throughput_rps, True),
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
