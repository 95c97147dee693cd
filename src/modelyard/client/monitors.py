"""``yard.monitors``: watch endpoints for drift, data quality, accuracy and SLOs.

>>> yard.monitors.create("churn-drift", endpoint="churn", window="1h",
...                      checks={"drift": {"rules": {"age": {"method": "psi"}}}},
...                      alerts={"channels": [{"type": "webhook", "url": "https://..."}]})
>>> yard.monitors.run("churn-drift")                # compute every closed window now
>>> yard.monitors.results("churn-drift", check="drift", column="age")   # a time series
>>> yard.monitors.alerts(status="firing")
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelyard.client.endpoints import When, epoch_ms
from modelyard.monitoring.profile import Profile
from modelyard.monitoring.reference import Reference

if TYPE_CHECKING:
    from modelyard.client.backend import Backend


class MonitorReport(str):
    """A monitor's HTML report: the page itself (write it to a file as it is), shown
    in a notebook inside a sandboxed frame, so its styles stay on the page."""

    def _repr_html_(self) -> str:
        return (
            f'<iframe sandbox="" srcdoc="{escape(str(self), quote=True)}" '
            'style="width:100%;height:720px;border:1px solid #ddd"></iframe>'
        )


class MonitorsAPI:
    """Monitors, their windows, results, alerts and retraining requests."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def create(
        self,
        name: str,
        *,
        endpoint: str,
        window: str | Mapping[str, Any] | None = None,
        schedule: str | None = None,
        checks: Mapping[str, Any] | None = None,
        alerts: Mapping[str, Any] | None = None,
        min_rows: int | None = None,
        traffic: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """A monitor of ``endpoint``; everything not given takes its default.

        ``traffic``: the prediction-log roles its windows read, ``primary`` (online
        requests, the default) and/or ``batch`` (batch jobs run with ``log_to``)."""
        spec: dict[str, Any] = {"endpoint": endpoint}
        for key, value in (
            ("window", window),
            ("schedule", schedule),
            ("checks", checks),
            ("alerts", alerts),
            ("min_rows", min_rows),
            ("traffic", list(traffic) if traffic is not None else None),
        ):
            if value is not None:
                spec[key] = value
        return self._backend.create_monitor(name, spec)

    def update(
        self,
        name: str,
        changes: Mapping[str, Any] | None = None,
        *,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Merge ``changes`` into the spec (objects key by key); enable or disable."""
        return self._backend.update_monitor(name, dict(changes or {}), enabled)

    def get(self, name: str) -> dict[str, Any]:
        return self._backend.get_monitor(name)

    def list(self, endpoint: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._backend.list_monitors(endpoint)

    def run(self, name: str) -> dict[str, Any]:
        """Compute every due window now; the windows computed, alerts sent, requests opened."""
        return self._backend.run_monitor(name)

    def windows(self, name: str, *, limit: int = 100) -> builtins.list[dict[str, Any]]:
        return self._backend.monitor_windows(name, limit)

    def results(
        self,
        name: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        version: str | None = None,
        since: When = None,
        until: When = None,
    ) -> pd.DataFrame:
        """Results as a time series (one row per window and figure), oldest first."""
        rows = self._backend.monitor_results(
            name,
            {
                "check": check,
                "column": column,
                "metric": metric,
                "version": version,
                "since": epoch_ms(since),
                "until": epoch_ms(until),
            },
        )
        frame = pd.DataFrame(
            rows,
            columns=[
                "window_start",
                "window_end",
                "check",
                "column",
                "metric",
                "version",
                "value",
                "severity",
                "details",
            ],
        )
        return frame

    def alerts(
        self, name: str | None = None, *, status: str | None = None, since: When = None
    ) -> builtins.list[dict[str, Any]]:
        """Alerts (newest first), of one monitor or all, with their deliveries."""
        return self._backend.monitor_alerts(name, status, epoch_ms(since))

    def retraining_requests(
        self, name: str | None = None, *, status: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        return self._backend.retraining_requests(name, status)

    def close_request(self, request_id: str, *, comment: str = "") -> dict[str, Any]:
        return self._backend.close_retraining_request(request_id, comment)

    def acknowledge(self, alert_id: str, *, comment: str = "") -> dict[str, Any]:
        """Acknowledge an alert by hand (once): records who is on it, with ``comment``.

        The alert keeps firing until its check is clean again, and no second alert opens
        for that check meanwhile.

        >>> yard.monitors.acknowledge(alert["id"], comment="looking at the new feed")
        """
        return self._backend.acknowledge_alert(alert_id, comment)

    def report(self, name: str, path: str | Path | None = None) -> Path | MonitorReport:
        """The monitor's self-contained HTML report (a string a notebook shows as the
        page); written to ``path`` when given."""
        html = self._backend.monitor_report(name)
        if path is None:
            return MonitorReport(html)
        target = Path(path)
        target.write_text(html, encoding="utf-8")
        return target

    def reference(self, ref: str) -> Reference:
        """The reference profile of a version (training data and its own predictions)."""
        return Reference.from_dict(self._backend.get_reference(ref))

    def build_reference(
        self, ref: str, *, dataset: str | None = None, target: str | None = None
    ) -> Reference:
        """(Re)build a version's reference from its run's stored ``dataset``."""
        return Reference.from_dict(self._backend.build_reference(ref, dataset, target))


def profile(data: Any) -> Profile:
    """Profile a DataFrame, an Arrow table or a Parquet/CSV path, here in this process."""
    from modelyard.monitoring.profile import profile_file, profile_table

    if isinstance(data, str | Path):
        return profile_file(Path(data))
    return profile_table(data)
