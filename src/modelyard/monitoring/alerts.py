"""Alerts: fire when a check group crosses its threshold, resolve when it clears.

A check group is one check of one monitor (per version for the checks that are
per version): ``drift``, ``quality``, ``output_drift@churn/3``, ... Its severity
in a window is the worst of its results. A group at or above the monitor's
``min_severity`` opens an alert, or keeps the open one (deduplicated: one open
alert per group); the next window where the group is evaluated and clean
resolves it. Notifications go to the monitor's channels after the window's
transaction commits; the same group is not notified again within the cooldown
(an escalation from warn to critical always is). An alert at or above
``retrain.min_severity`` opens a retraining request (one open per monitor) and
runs its command or webhook (``retraining.py``). Someone can acknowledge an alert by
hand (``acknowledge``): it records who is on it, and changes nothing else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, select, update

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.monitors import SEVERITY_ORDER, Monitor
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.monitoring.results import Result
from modelyard.monitoring.retraining import RetrainingRequests
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

if TYPE_CHECKING:
    from modelyard.governance.secrets import WorkspaceSecrets

log = logging.getLogger("modelyard.monitoring")
PER_VERSION = ("output_drift", "performance", "estimated_performance")


@dataclass(frozen=True)
class Notification:
    """An alert event to deliver once the window's transaction has committed."""

    alert_id: str
    event: str
    severity: str
    key: str
    summary: str
    evidence: dict[str, Any]
    window: int

    def payload(self, monitor: Monitor) -> dict[str, Any]:
        return {
            "monitor": monitor.name,
            "endpoint": monitor.spec.endpoint,
            "alert": self.alert_id,
            "event": self.event,
            "severity": self.severity,
            "check": self.key,
            "summary": self.summary,
            "evidence": self.evidence,
            "window": self.window,
            "time": now_ms(),
        }


@dataclass
class Outcome:
    """What alerting did for one window."""

    notifications: list[Notification] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def group_key(result: Result) -> str:
    if result.check in PER_VERSION and result.version:
        return f"{result.check}@{result.version}"
    return result.check


def _evaluated(result: Result) -> bool:
    """Whether a result says anything about its group (a label count does not)."""
    return not (result.check == "performance" and result.metric == "labelled")


def summarise(key: str, results: Sequence[Result]) -> tuple[str, dict[str, Any]]:
    """A one-line summary and the evidence of a group's bad results."""
    bad = [r for r in results if r.severity != "ok" and _evaluated(r)]
    # worst first; among equals, the features the model leans on most (drift)
    bad.sort(
        key=lambda r: (
            -SEVERITY_ORDER[r.severity],
            -float(r.details.get("importance") or 0.0),
            -(r.value or 0),
        )
    )
    items = [
        {
            "column": r.column,
            "metric": r.metric,
            "value": r.value,
            "severity": r.severity,
            **({"version": r.version} if r.version else {}),
            **({"importance": r.details["importance"]} if "importance" in r.details else {}),
        }
        for r in bad
    ]
    named = ", ".join(
        f"{r.column or r.metric} ({r.metric} {_fmt(r.value)})"
        if r.column
        else f"{r.metric} {_fmt(r.value)}"
        for r in bad[:5]
    )
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    noun = "columns" if any(r.column for r in bad) else "figures"
    return f"{key}: {len(bad)} {noun} past threshold: {named}{more}", {"results": items}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class AlertService(RetrainingRequests):
    """Alert state per monitor and check group, deliveries and retraining requests."""

    def __init__(self, db: Database, secrets: Any = None) -> None:
        self.db = db
        self.secrets = secrets

    # -- state, inside the window's transaction ------------------------------------

    def evaluate(
        self, conn: Connection, monitor: Monitor, window: int, results: Iterable[Result]
    ) -> Outcome:
        groups: dict[str, list[Result]] = {}
        for result in results:
            groups.setdefault(group_key(result), []).append(result)
        outcome = Outcome()
        floor = SEVERITY_ORDER[monitor.spec.alerts.min_severity]
        for key, members in groups.items():
            evaluated = [r for r in members if _evaluated(r)]
            if not evaluated:
                continue
            severity = max((r.severity for r in evaluated), key=SEVERITY_ORDER.__getitem__)
            if SEVERITY_ORDER[severity] >= floor:
                self._fire(conn, monitor, window, key, severity, members, outcome)
            else:
                self._resolve(conn, monitor, window, key, outcome)
        return outcome

    def _open(self, conn: Connection, monitor: Monitor, key: str) -> Any:
        a = t.alerts.c
        return conn.execute(
            select(t.alerts).where(a.monitor_id == monitor.id, a.key == key, a.status == "firing")
        ).first()

    def _fire(
        self,
        conn: Connection,
        monitor: Monitor,
        window: int,
        key: str,
        severity: str,
        members: list[Result],
        outcome: Outcome,
    ) -> None:
        summary, evidence = summarise(key, members)
        current = self._open(conn, monitor, key)
        stamp = now_ms()
        if current is not None:
            if window < current.last_window:
                return  # an older window computed late says nothing new
            escalated = SEVERITY_ORDER[severity] > SEVERITY_ORDER[current.severity]
            conn.execute(
                update(t.alerts)
                .where(t.alerts.c.id == current.id)
                .values(
                    last_window=window,
                    severity=max(severity, current.severity, key=SEVERITY_ORDER.__getitem__),
                    summary=summary if escalated else current.summary,
                    evidence=evidence if escalated else current.evidence,
                )
            )
            if escalated:
                outcome.notifications.append(
                    Notification(current.id, "escalated", severity, key, summary, evidence, window)
                )
            return
        alert_id = uuid.uuid4().hex
        conn.execute(
            t.alerts.insert().values(
                id=alert_id,
                monitor_id=monitor.id,
                key=key,
                severity=severity,
                status="firing",
                summary=summary,
                evidence=evidence,
                opened_at=stamp,
                opened_window=window,
                last_window=window,
            )
        )
        if self._cooled(conn, monitor, key, stamp):
            outcome.notifications.append(
                Notification(alert_id, "fired", severity, key, summary, evidence, window)
            )

    def _cooled(self, conn: Connection, monitor: Monitor, key: str, stamp: int) -> bool:
        """No notification for this group within the cooldown."""
        a = t.alerts.c
        last = conn.execute(
            select(a.notified_at)
            .where(a.monitor_id == monitor.id, a.key == key, a.notified_at.is_not(None))
            .order_by(a.notified_at.desc())
            .limit(1)
        ).scalar()
        return last is None or stamp - int(last) >= monitor.spec.alerts.cooldown

    def _resolve(
        self, conn: Connection, monitor: Monitor, window: int, key: str, outcome: Outcome
    ) -> None:
        current = self._open(conn, monitor, key)
        if current is None or window <= current.last_window:
            return
        conn.execute(
            update(t.alerts)
            .where(t.alerts.c.id == current.id, t.alerts.c.status == "firing")
            .values(status="resolved", resolved_at=now_ms(), last_window=window)
        )
        outcome.notifications.append(
            Notification(
                current.id,
                "resolved",
                "ok",
                key,
                f"{key}: back within thresholds",
                {"opened_window": current.opened_window},
                window,
            )
        )

    # -- after commit --------------------------------------------------------------

    def deliver(self, monitor: Monitor, outcome: Outcome) -> None:
        """Send each notification to every channel, record each delivery, and act on
        retraining; a failing channel never stops the others."""
        from modelyard.monitoring.channels import channel_from_spec

        for note in outcome.notifications:
            payload = note.payload(monitor)
            if note.event in ("fired", "escalated"):
                request = self._retraining(monitor, note)
                if request is not None:
                    outcome.requests.append(request)
                    payload["retraining_request"] = request
            delivered = False
            for spec in monitor.spec.alerts.channels:
                try:
                    delivery = channel_from_spec(spec, self._secrets_of(monitor)).send(payload)
                    status, attempts, error = delivery.status, delivery.attempts, delivery.error
                    name = delivery.channel
                except Exception as exc:  # a misconfigured channel is recorded, not raised
                    status, attempts, error = "failed", 0, f"{type(exc).__name__}: {exc}"
                    name = str(spec.get("type", "?"))
                delivered = delivered or status == "sent"
                self._record(note, name, status, attempts, error or "")
            if delivered:
                with self.db.write() as conn:
                    conn.execute(
                        update(t.alerts)
                        .where(t.alerts.c.id == note.alert_id)
                        .values(notified_at=now_ms())
                    )

    def _record(
        self, note: Notification, channel: str, status: str, attempts: int, error: str
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                t.alert_deliveries.insert().values(
                    alert_id=note.alert_id,
                    event=note.event,
                    channel=channel[:250],
                    status=status,
                    attempts=attempts,
                    error=error[:2000],
                    at=now_ms(),
                )
            )

    def _secrets_of(self, monitor: Monitor) -> WorkspaceSecrets | None:
        """The secrets ``monitor``'s channels may read: its endpoint's workspace's."""
        if self.secrets is None:
            return None
        e = t.endpoints.c
        with self.db.read() as conn:
            owner = conn.execute(
                select(e.workspace).where(e.name == monitor.spec.endpoint)
            ).scalar()
        scoped: WorkspaceSecrets = self.secrets.scoped(owner or DEFAULT_WORKSPACE)
        return scoped

    # -- by hand -------------------------------------------------------------------

    def acknowledge(self, alert_id: str, *, comment: str = "") -> dict[str, Any]:
        """Acknowledge an alert, as the current actor: someone is on it (recorded as
        ``acknowledge alert``). It keeps its status: a firing alert stays the open one of
        its check (no new alert opens beside it) and resolves by itself. Once only."""
        a = t.alerts.c
        with self.db.write() as conn:
            row = conn.execute(select(t.alerts).where(a.id == alert_id)).first()
            if row is None:
                raise NotFound(f"alert '{alert_id}' does not exist")
            done = conn.execute(
                update(t.alerts)
                .where(a.id == alert_id, a.acknowledged_at.is_(None))
                .values(
                    acknowledged_at=now_ms(),
                    acknowledged_by=current_actor().user,
                    acknowledge_comment=comment,
                )
            )
            if done.rowcount != 1:
                raise Conflict(
                    f"alert '{alert_id}' was already acknowledged by '{row.acknowledged_by}'"
                )
            m, e = t.monitors.c, t.endpoints.c
            name, workspace = conn.execute(
                select(m.name, e.workspace)
                .join_from(t.monitors, t.endpoints, e.name == m.endpoint, isouter=True)
                .where(m.id == row.monitor_id)
            ).one()
            after = {"monitor": name, "check": row.key, "status": row.status, "comment": comment}
            change = Changed(
                "acknowledge alert", f"alerts/{alert_id}", workspace, {"acknowledged": False}, after
            )
            publish(conn, change)
        return self.alerts({row.monitor_id: name}, alert_id=alert_id)[0]

    # -- queries -------------------------------------------------------------------

    def alerts(
        self,
        monitor_ids: dict[int, str],
        *,
        status: str | None = None,
        since: int | None = None,
        limit: int = 200,
        alert_id: str | None = None,
    ) -> list[dict[str, Any]]:
        a = t.alerts.c
        conditions: list[ColumnElement[bool]] = [a.monitor_id.in_(list(monitor_ids))]
        if alert_id is not None:
            conditions.append(a.id == alert_id)
        if status is not None:
            if status not in ("firing", "resolved"):
                raise InvalidInput(f"alert status must be 'firing' or 'resolved', got {status!r}")
            conditions.append(a.status == status)
        if since is not None:
            conditions.append(a.opened_at >= since)
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.alerts).where(and_(*conditions)).order_by(a.opened_at.desc()).limit(limit)
            ).all()
            ids = [row.id for row in rows]
            deliveries: dict[str, list[dict[str, Any]]] = {}
            if ids:
                d = t.alert_deliveries.c
                for item in conn.execute(
                    select(t.alert_deliveries).where(d.alert_id.in_(ids)).order_by(d.id)
                ).all():
                    deliveries.setdefault(item.alert_id, []).append(
                        {
                            "event": item.event,
                            "channel": item.channel,
                            "status": item.status,
                            "attempts": item.attempts,
                            "error": item.error,
                            "at": item.at,
                        }
                    )
        return [
            {
                "id": row.id,
                "monitor": monitor_ids[row.monitor_id],
                "check": row.key,
                "severity": row.severity,
                "status": row.status,
                "summary": row.summary,
                "evidence": row.evidence,
                "opened_at": row.opened_at,
                "resolved_at": row.resolved_at,
                "acknowledged_at": row.acknowledged_at,
                "acknowledged_by": row.acknowledged_by,
                "acknowledge_comment": row.acknowledge_comment,
                "opened_window": row.opened_window,
                "last_window": row.last_window,
                "deliveries": deliveries.get(row.id, []),
            }
            for row in rows
        ]
