"""Custom metrics: a number a Python function or a DuckDB query computes on a window.

A query reads ``window_rows`` (the window's predictions with their labels) and
``predictions`` (the endpoint's whole log, attached by the ``predictions`` callback);
it must return one row of one number. A metric that fails is a warning carrying its
error, never an exception.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.monitoring.drift import CRITICAL, OK, WARN
from modelyard.monitoring.results import Result, json_float
from modelyard.monitoring.window_data import WindowData


def custom_metric(
    metric: Any, window: WindowData, predictions: Callable[[Any], None] | None
) -> Result:
    """``metric`` computed on ``window`` and graded by its thresholds."""
    try:
        if metric.python:
            module, _, name = metric.python.partition(":")
            function = getattr(importlib.import_module(module), name)
            value = float(function(window.table))
        else:
            con = window.con()
            if predictions is not None:
                predictions(con)
            rows = con.execute(metric.sql).fetchall()  # fetch all: the connection is reused
            if len(rows) != 1 or len(rows[0]) != 1:
                raise InvalidInput("the query must return one row of one number")
            value = float(rows[0][0])
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        return Result("custom", metric.name, None, WARN, details={"error": message[:500]})
    severity = OK
    if metric.below:
        if metric.critical is not None and value < metric.critical:
            severity = CRITICAL
        elif metric.warn is not None and value < metric.warn:
            severity = WARN
    else:
        if metric.critical is not None and value > metric.critical:
            severity = CRITICAL
        elif metric.warn is not None and value > metric.warn:
            severity = WARN
    return Result(
        "custom",
        metric.name,
        json_float(value),
        severity,
        details={"warn": metric.warn, "critical": metric.critical},
    )
