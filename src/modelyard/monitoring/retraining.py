"""Retraining requests: an alert at or above ``retrain.min_severity`` opens one.

One request is open per monitor at a time. Opening it runs the monitor's retraining
command (the request as JSON on stdin) or calls its webhook, and records what that
did on the request; a person closes it with a comment (recorded as ``"close
retraining request"``, by ``current_actor()``). Opening one is the monitor's act
(``created_by="monitor:<name>"``), like the alert that caused it: not recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, select, update

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.monitors import SEVERITY_ORDER, Monitor
from modelyard.errors import InvalidInput, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

if TYPE_CHECKING:
    from modelyard.governance.secrets import WorkspaceSecrets
    from modelyard.monitoring.alerts import Notification

REQUEST_STATUSES = ("open", "triggered", "closed")


class RetrainingRequests:
    """Mixin of ``AlertService``: open a retraining request for an alert and act on it;
    list and close requests."""

    db: Database

    if TYPE_CHECKING:  # provided by AlertService

        def _secrets_of(self, monitor: Monitor) -> WorkspaceSecrets | None: ...

    # -- after commit, when an alert fires or escalates ----------------------------

    def _retraining(self, monitor: Monitor, note: Notification) -> str | None:
        retrain = monitor.spec.alerts.retrain
        if not retrain.open_request:
            return None
        if SEVERITY_ORDER[note.severity] < SEVERITY_ORDER[retrain.min_severity]:
            return None
        model, version = _model_of(note)
        r = t.retraining_requests.c
        with self.db.write() as conn:
            existing = conn.execute(
                select(r.id).where(r.monitor_id == monitor.id, r.status != "closed")
            ).first()
            if existing is not None:
                return None
            if model is None:
                model, version = self._served(conn, monitor)
            request_id = uuid.uuid4().hex
            stamp = now_ms()
            conn.execute(
                t.retraining_requests.insert().values(
                    id=request_id,
                    monitor_id=monitor.id,
                    alert_id=note.alert_id,
                    model=model or "",
                    version=version,
                    status="open",
                    reason=note.summary,
                    evidence=note.evidence,
                    created_by=f"monitor:{monitor.name}",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        action = self._act(monitor, request_id, note, model, version)
        if action:
            with self.db.write() as conn:
                conn.execute(
                    update(t.retraining_requests)
                    .where(r.id == request_id)
                    .values(action=action, status="triggered", updated_at=now_ms())
                )
        return request_id

    def _served(self, conn: Connection, monitor: Monitor) -> tuple[str | None, int | None]:
        """The model version the alert's window was checked against."""
        w = t.monitor_windows.c
        summary = conn.execute(
            select(w.summary)
            .where(w.monitor_id == monitor.id, w.status == "done")
            .order_by(w.start.desc())
            .limit(1)
        ).scalar()
        versions = (summary or {}).get("versions") or []
        if not versions:
            return None, None
        name, _, number = str(versions[0]["version"]).rpartition("/")
        return name, int(number)

    def _act(
        self,
        monitor: Monitor,
        request_id: str,
        note: Notification,
        model: str | None,
        version: int | None,
    ) -> dict[str, Any] | None:
        retrain = monitor.spec.alerts.retrain
        event = {
            "retraining_request": request_id,
            "monitor": monitor.name,
            "model": model,
            "version": version,
            "reason": note.summary,
            "evidence": note.evidence,
        }
        action: dict[str, Any] = {}
        if retrain.command:
            action["command"] = _run_command(list(retrain.command), event, retrain.timeout_s)
        if retrain.webhook:
            from modelyard.monitoring.channels import channel_from_spec

            spec = {"type": "webhook", **retrain.webhook}
            try:
                delivery = channel_from_spec(spec, self._secrets_of(monitor)).send(event)
                action["webhook"] = {"status": delivery.status, "error": delivery.error}
            except Exception as exc:
                action["webhook"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        return action or None

    # -- queries -------------------------------------------------------------------

    def requests(
        self, monitor_ids: dict[int, str], *, status: str | None = None
    ) -> list[dict[str, Any]]:
        r = t.retraining_requests.c
        conditions: list[ColumnElement[bool]] = [r.monitor_id.in_(list(monitor_ids))]
        if status is not None:
            if status not in REQUEST_STATUSES:
                raise InvalidInput(
                    f"request status must be one of {', '.join(REQUEST_STATUSES)}, got {status!r}"
                )
            conditions.append(r.status == status)
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.retraining_requests).where(and_(*conditions)).order_by(r.created_at.desc())
            ).all()
        return [_request(row, monitor_ids) for row in rows]

    def close_request(self, request_id: str, *, comment: str = "") -> dict[str, Any]:
        """Close an open request, with a comment, as the current actor."""
        r = t.retraining_requests.c
        with self.db.write() as conn:
            row = conn.execute(select(t.retraining_requests).where(r.id == request_id)).first()
            if row is None:
                raise NotFound(f"retraining request '{request_id}' does not exist")
            if row.status == "closed":
                raise InvalidInput(f"retraining request '{request_id}' is already closed")
            action = dict(row.action or {})
            action["closed"] = {"by": current_actor().user, "comment": comment, "at": now_ms()}
            conn.execute(
                update(t.retraining_requests)
                .where(r.id == request_id)
                .values(status="closed", action=action, updated_at=now_ms())
            )
            before = {"status": row.status}
            m, e = t.monitors.c, t.endpoints.c
            name, workspace = conn.execute(
                select(m.name, e.workspace)
                .join_from(t.monitors, t.endpoints, e.name == m.endpoint, isouter=True)
                .where(m.id == row.monitor_id)
            ).one()
            after = {"status": "closed", "comment": comment}
            resource = f"retraining-requests/{request_id}"
            publish(conn, Changed("close retraining request", resource, workspace, before, after))
            row = conn.execute(select(t.retraining_requests).where(r.id == request_id)).one()
        return _request(row, {row.monitor_id: name})


def _model_of(note: Notification) -> tuple[str | None, int | None]:
    _, _, version = note.key.partition("@")
    if not version:
        return None, None
    name, _, number = version.rpartition("/")
    return name, int(number)


def _request(row: Any, monitor_ids: dict[int, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "monitor": monitor_ids.get(row.monitor_id, ""),
        "alert": row.alert_id,
        "model": row.model,
        "version": row.version,
        "status": row.status,
        "reason": row.reason,
        "evidence": row.evidence,
        "action": row.action,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _run_command(argv: list[str], event: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the retraining command with the request as JSON on stdin and in the env."""
    env = dict(os.environ)
    env["MODELYARD_RETRAINING_REQUEST"] = str(event["retraining_request"])
    try:
        done = subprocess.run(
            argv,
            input=json.dumps(event).encode(),
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"argv": argv, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    return {
        "argv": argv,
        "status": "ok" if done.returncode == 0 else "failed",
        "exit_code": done.returncode,
        "output": done.stdout.decode(errors="replace")[-2000:],
        "error": done.stderr.decode(errors="replace")[-2000:],
    }
