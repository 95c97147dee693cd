"""Monitors, alerts, retraining requests and reference profiles in the embedded backend."""

from __future__ import annotations

from typing import Any

from modelyard.client.local_base import LocalBase


class LocalMonitoring(LocalBase):
    """Monitors and their windows, results and alerts, retraining requests and reference
    profiles, in-process (specs and results as JSON-able dicts)."""

    def create_monitor(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.services.monitors.create(name, spec, workspace=self.workspace).to_dict()

    def update_monitor(
        self, name: str, changes: dict[str, Any], enabled: bool | None
    ) -> dict[str, Any]:
        monitors = self.services.monitors
        return monitors.update(name, changes, enabled=enabled, workspace=self.workspace).to_dict()

    def get_monitor(self, name: str) -> dict[str, Any]:
        return self.services.monitors.get(name).to_dict()

    def list_monitors(self, endpoint: str | None) -> list[dict[str, Any]]:
        found = self.services.monitors.list(endpoint=endpoint, workspace=self.workspace)
        return [m.to_dict() for m in found]

    def run_monitor(self, name: str) -> dict[str, Any]:
        return self.services.monitors.run(name).to_dict()

    def monitor_windows(self, name: str, limit: int) -> list[dict[str, Any]]:
        return self.services.monitors.windows(name, limit=limit)

    def monitor_results(self, name: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.services.monitors.results(name, **filters)

    def monitor_alerts(
        self, name: str | None, status: str | None, since: int | None
    ) -> list[dict[str, Any]]:
        ids = self.services.monitors.monitor_ids(name, self.workspace)
        return self.services.alerts.alerts(ids, status=status, since=since)

    def retraining_requests(self, name: str | None, status: str | None) -> list[dict[str, Any]]:
        ids = self.services.monitors.monitor_ids(name, self.workspace)
        return self.services.alerts.requests(ids, status=status)

    def close_retraining_request(self, request_id: str, comment: str) -> dict[str, Any]:
        return self.services.alerts.close_request(request_id, comment=comment)

    def acknowledge_alert(self, alert_id: str, comment: str) -> dict[str, Any]:
        return self.services.alerts.acknowledge(alert_id, comment=comment)

    def monitor_report(self, name: str) -> str:
        return self.services.monitors.report(name)

    def get_reference(self, ref: str) -> dict[str, Any]:
        return self.services.references.get(ref).to_dict()

    def build_reference(self, ref: str, dataset: str | None, target: str | None) -> dict[str, Any]:
        return self.services.references.build(ref, dataset=dataset, target=target).to_dict()
