"""Monitors, alerts, retraining requests and reference profiles in the remote backend."""

from __future__ import annotations

from typing import Any

from modelyard.client.remote_base import RemoteBase, _path


class RemoteMonitoring(RemoteBase):
    """Monitors and their windows, results and alerts, retraining requests and reference
    profiles, over HTTP (specs and results as JSON-able dicts)."""

    def create_monitor(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "spec": spec}
        return dict(self._json("POST", "/monitors", json=body))

    def update_monitor(
        self, name: str, changes: dict[str, Any], enabled: bool | None
    ) -> dict[str, Any]:
        body = {"changes": changes, "enabled": enabled}
        return dict(self._json("PATCH", f"/monitors/{_path(name)}", json=body))

    def get_monitor(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/monitors/{_path(name)}"))

    def list_monitors(self, endpoint: str | None) -> list[dict[str, Any]]:
        params = {"endpoint": endpoint} if endpoint else {}
        return list(self._json("GET", "/monitors", params=params))

    def run_monitor(self, name: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/monitors/{_path(name)}/run"))

    def monitor_windows(self, name: str, limit: int) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/monitors/{_path(name)}/windows", params={"limit": limit}))

    def monitor_results(self, name: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._json("GET", f"/monitors/{_path(name)}/results", params=params))

    def monitor_alerts(
        self, name: str | None, status: str | None, since: int | None
    ) -> list[dict[str, Any]]:
        params = {"monitor": name, "status": status, "since": since}
        return list(
            self._json("GET", "/alerts", params={k: v for k, v in params.items() if v is not None})
        )

    def retraining_requests(self, name: str | None, status: str | None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"monitor": name, "status": status}.items() if v is not None}
        return list(self._json("GET", "/retraining-requests", params=params))

    def close_retraining_request(self, request_id: str, comment: str) -> dict[str, Any]:
        path = f"/retraining-requests/{_path(request_id)}/close"
        return dict(self._json("POST", path, json={"comment": comment}))

    def acknowledge_alert(self, alert_id: str, comment: str) -> dict[str, Any]:
        path = f"/alerts/{_path(alert_id)}/acknowledge"
        return dict(self._json("POST", path, json={"comment": comment}))

    def monitor_report(self, name: str) -> str:
        response = self._send("GET", f"/monitors/{_path(name)}/report")
        return str(response.text)

    def get_reference(self, ref: str) -> dict[str, Any]:
        return dict(self._json("GET", "/references", params={"version": ref}))

    def build_reference(self, ref: str, dataset: str | None, target: str | None) -> dict[str, Any]:
        body = {"version": ref, "dataset": dataset, "target": target}
        return dict(self._json("POST", "/references", json=body))
