"""Monitors, alerts, retraining requests and reference profiles in the embedded backend."""

from __future__ import annotations

from typing import Any

from modelyard.client.local_base import LocalBase
from modelyard.tracking.environment import current_user


class LocalMonitoring(LocalBase):
    """Monitors and their windows, results and alerts, retraining requests and reference
    profiles, in-process (specs and results as JSON-able dicts)."""

    def create_monitor(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        monitor = self.services.monitors.create(
            name, spec, actor=current_user(), workspace=self.workspace
        )
        self._audit("create monitor", f"monitors/{name}", after=monitor.spec.to_dict())
        return monitor.to_dict()

    def update_monitor(
        self, name: str, changes: dict[str, Any], enabled: bool | None
    ) -> dict[str, Any]:
        before = self.services.monitors.get(name)
        after = self.services.monitors.update(
            name, changes, enabled=enabled, actor=current_user(), workspace=self.workspace
        )
        self._audit(
            "update monitor",
            f"monitors/{name}",
            before={"enabled": before.enabled, "spec": before.spec.to_dict()},
            after={"enabled": after.enabled, "changes": changes},
        )
        return after.to_dict()

    def get_monitor(self, name: str) -> dict[str, Any]:
        return self.services.monitors.get(name).to_dict()

    def list_monitors(self, endpoint: str | None) -> list[dict[str, Any]]:
        found = self.services.monitors.list(endpoint=endpoint, workspace=self.workspace)
        return [m.to_dict() for m in found]

    def run_monitor(self, name: str) -> dict[str, Any]:
        report = self.services.monitors.run(name)
        self._audit(
            "run monitor",
            f"monitors/{name}",
            after={"windows": len(report.computed), "alerts": len(report.alerts)},
        )
        return report.to_dict()

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
        closed = self.services.alerts.close_request(
            request_id, comment=comment, actor=current_user()
        )
        self._audit(
            "close retraining request",
            f"retraining-requests/{request_id}",
            after={"comment": comment},
        )
        return closed

    def monitor_report(self, name: str) -> str:
        return self.services.monitors.report(name)

    def get_reference(self, ref: str) -> dict[str, Any]:
        return self.services.references.get(ref).to_dict()

    def build_reference(self, ref: str, dataset: str | None, target: str | None) -> dict[str, Any]:
        built = self.services.references.build(
            ref, dataset=dataset, target=target, actor=current_user()
        )
        self._audit(
            "build reference",
            f"models/{built.ref}/reference",
            after={"dataset": built.dataset, "target": built.target},
        )
        return built.to_dict()
