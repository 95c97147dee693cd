"""Monitors: their specs, running them, and their results as time series.

A run plans the monitor's due windows and claims each one (``windows.py``:
tumbling windows, claims and leases), then its ``Runner`` (``runner.py``, given by
``bootstrap``) evaluates and records every window it claimed and refreshes recent
windows whose labels grew: results, window completion and alert state in one
transaction, alerts delivered after.

Creating, changing and running a monitor on request publish a ``Changed`` (as
``current_actor()``); the worker's scheduled runs (``run_scheduled``) are not
recorded: nobody asked for them.

>>> services.monitors.create("churn", {"endpoint": "churn"})
>>> services.monitors.run("churn").computed
>>> services.monitors.results("churn", check="drift")
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.endpoints import Spec as EndpointSpec
from modelyard.domain.events import Changed, EndpointCreated
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.monitors import Monitor, Spec, check_monitor_name, merge
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.governance.workspaces import check_same
from modelyard.monitoring.alerts import AlertService
from modelyard.monitoring.driftmethods import check_rules
from modelyard.monitoring.reference import Reference, ReferenceService
from modelyard.monitoring.runner import Runner, RunReport, cached_reference
from modelyard.monitoring.windows import (
    LEASE_MS,
    claim_window,
    due_windows,
    next_window,
    renewing,
    take_turn,
    worker_name,
)
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

__all__ = ["MonitorService", "RunReport", "worker_name"]


class MonitorService:
    """Create, edit and run monitors; read their results as time series."""

    def __init__(
        self,
        db: Database,
        predictions: PredictionLog,
        references: ReferenceService,
        alerts: AlertService,
        runner: Runner,
        endpoint_exists: Callable[[str], bool],
    ) -> None:
        self.db = db
        self.predictions = predictions
        self.references = references  # the report's reference profiles
        self.alerts = alerts  # the report's alerts
        self.runner = runner  # evaluates and records the windows a run claims
        self.endpoint_exists = endpoint_exists

    # -- specs ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        spec: Mapping[str, Any],
        *,
        workspace: str | None = None,
    ) -> Monitor:
        """A new monitor; ``spec`` needs only ``endpoint``, the rest has defaults.

        With ``workspace``, the endpoint must belong to it."""
        check_monitor_name(name)
        parsed = Spec.parse(spec)
        self._check(parsed, workspace)
        stamp, actor = now_ms(), current_actor().user
        try:
            with self.db.write() as conn:
                conn.execute(
                    t.monitors.insert().values(
                        name=name,
                        endpoint=parsed.endpoint,
                        spec=parsed.to_dict(),
                        enabled=True,
                        created_by=actor,
                        created_at=stamp,
                        updated_by=actor,
                        updated_at=stamp,
                    )
                )
                after = {"enabled": True, "spec": parsed.to_dict()}
                owner = _owner(conn, parsed.endpoint)
                publish(conn, Changed("create monitor", f"monitors/{name}", owner, None, after))
        except SqlIntegrityError:
            raise Conflict(f"monitor '{name}' already exists") from None
        return self.get(name)

    def _check(self, spec: Spec, workspace: str | None) -> None:
        check_rules(spec.checks)
        if not self.endpoint_exists(spec.endpoint):
            raise NotFound(f"endpoint '{spec.endpoint}' does not exist")
        e = t.endpoints.c
        with self.db.read() as conn:
            owner = conn.execute(select(e.workspace).where(e.name == spec.endpoint)).scalar()
        if workspace is not None:
            check_same(f"endpoint '{spec.endpoint}'", owner, workspace)
        from modelyard.monitoring.channels import secret_names

        named = [name for channel in spec.alerts.channels for name in secret_names(channel)]
        webhook = spec.alerts.retrain.webhook
        if webhook and webhook.get("token_secret"):
            named.append(str(webhook["token_secret"]))
        self._check_secrets(named, owner or DEFAULT_WORKSPACE)

    def _check_secrets(self, names: builtins.list[str], workspace: str) -> None:
        """A monitor's channels may name only its own workspace's secrets."""
        if not names:
            return
        s = t.secrets.c
        with self.db.read() as conn:
            owners = dict(conn.execute(select(s.name, s.workspace).where(s.name.in_(names))).all())
        for name in names:
            check_same(f"secret '{name}'", owners.get(name), workspace)

    def update(
        self,
        name: str,
        changes: Mapping[str, Any] | None = None,
        *,
        enabled: bool | None = None,
        workspace: str | None = None,
    ) -> Monitor:
        """Merge ``changes`` into the spec (objects key by key) and/or enable/disable."""
        current = self.get(name)
        spec = current.spec
        if changes:
            spec = Spec.parse(merge(current.spec.to_dict(), changes))
            self._check(spec, workspace)
        values: dict[str, Any] = {"updated_by": current_actor().user, "updated_at": now_ms()}
        values |= {"spec": spec.to_dict(), "endpoint": spec.endpoint}
        if enabled is not None:
            values["enabled"] = enabled
        with self.db.write() as conn:
            row = _monitor_row(conn, name)
            conn.execute(update(t.monitors).where(t.monitors.c.name == name).values(**values))
            before = {"enabled": bool(row.enabled), "spec": row.spec}
            after = {
                "enabled": values.get("enabled", before["enabled"]),
                "changes": dict(changes or {}),
            }
            owner = _owner(conn, spec.endpoint)
            publish(conn, Changed("update monitor", f"monitors/{name}", owner, before, after))
        return self.get(name)

    def get(self, name: str) -> Monitor:
        with self.db.read() as conn:
            return _monitor(_monitor_row(conn, name))

    def list(
        self, *, endpoint: str | None = None, workspace: str | None = None
    ) -> builtins.list[Monitor]:
        """Every monitor, of one ``endpoint``, or of the endpoints of ``workspace``."""
        query = select(t.monitors).order_by(t.monitors.c.name)
        if endpoint is not None:
            query = query.where(t.monitors.c.endpoint == endpoint)
        if workspace is not None:
            e = t.endpoints.c
            query = query.where(
                t.monitors.c.endpoint.in_(select(e.name).where(e.workspace == workspace))
            )
        with self.db.read() as conn:
            return [_monitor(row) for row in conn.execute(query).all()]

    def on_event(self, event: Any) -> None:
        """A newly deployed endpoint gets its default monitor."""
        if isinstance(event, EndpointCreated):
            self.ensure_default(event.endpoint)

    def ensure_default(self, endpoint: str) -> Monitor | None:
        """The default monitor of a newly deployed endpoint (named after it), unless the
        endpoint already has one; created as the current actor (the endpoint's creator:
        ``EndpointCreated`` reaches its subscribers in the creator's context)."""
        if self.list(endpoint=endpoint):
            return None
        try:
            return self.create(endpoint, {"endpoint": endpoint})
        except Conflict:
            return None

    # -- running -------------------------------------------------------------------

    def run(self, name: str, *, now: int | None = None) -> RunReport:
        """``run_scheduled`` now, on request: recorded as ``"run monitor"`` with the
        number of windows computed and alerts fired (in a transaction of its own after
        the run's: a run commits window by window)."""
        report = self.run_scheduled(name, now=now)
        after = {"windows": len(report.computed), "alerts": len(report.alerts)}
        with self.db.write() as conn:
            owner = _owner(conn, _monitor_row(conn, name).endpoint)
            publish(conn, Changed("run monitor", f"monitors/{name}", owner, None, after))
        return report

    def run_scheduled(
        self,
        name: str,
        *,
        worker: str | None = None,
        now: int | None = None,
        lease_ms: int = LEASE_MS,
    ) -> RunReport:
        """Compute every due window of monitor ``name`` not computed yet, refresh the
        performance of recent windows whose labels grew, and deliver alerts (what
        ``modelyard worker`` does when the schedule comes round; not recorded). Each
        window is claimed for ``lease_ms``, renewed while it is computed."""
        monitor = self.get(name)
        worker = worker or worker_name()
        now = now if now is not None else now_ms()
        report = RunReport(monitor.name)
        references: dict[tuple[str, int], Reference | None] = {}
        for start, end in due_windows(self.db, self.predictions, monitor, now):
            if not self._claim(monitor, start, end, worker, now, lease_ms):
                report.skipped += 1
                continue
            with renewing(self.db, monitor, start, worker, lease_ms):
                self.runner.compute(monitor, start, end, worker, references, report)
        self.runner.refresh(monitor, now, references, report)
        report.next_window = next_window(self.predictions, monitor, now)
        return report

    def take_turn(self, monitor: Monitor, worker: str, now: int) -> int | None:
        """``worker`` takes the monitor's scheduled turn if it is due: None, else the
        time it is next due (``windows.take_turn``; not recorded: a schedule is nobody's act)."""
        return take_turn(self.db, monitor, worker, now)

    def _claim(
        self,
        monitor: Monitor,
        start: int,
        end: int,
        worker: str,
        now: int,
        lease_ms: int = LEASE_MS,
    ) -> bool:
        return claim_window(self.db, monitor, start, end, worker, now, lease_ms=lease_ms)

    # -- reading -------------------------------------------------------------------

    def windows(self, name: str, *, limit: int = 100) -> builtins.list[dict[str, Any]]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        monitor = self.get(name)
        w = t.monitor_windows.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.monitor_windows)
                .where(w.monitor_id == monitor.id)
                .order_by(w.start.desc())
                .limit(limit)
            ).all()
        return [
            {
                "start": r.start,
                "end": r.end,
                "status": r.status,
                "rows": r.rows,
                "labelled": r.labelled,
                "severity": r.severity,
                "summary": r.summary,
                "error": r.error,
                "attempts": r.attempts,
                "claimed_by": r.claimed_by,
                "computed_at": r.computed_at,
            }
            for r in reversed(rows)
        ]

    def results(
        self,
        name: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        version: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 10_000,
    ) -> builtins.list[dict[str, Any]]:
        """Results as a time series, oldest window first."""
        monitor = self.get(name)
        r = t.monitor_results.c
        conditions: builtins.list[Any] = [r.monitor_id == monitor.id]
        for col, value in (
            (r.check, check),
            (r.column, column),
            (r.metric, metric),
            (r.version, version),
        ):
            if value is not None:
                conditions.append(col == value)
        if since is not None:
            conditions.append(r.window_start >= since)
        if until is not None:
            conditions.append(r.window_start < until)
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.monitor_results)
                .where(and_(*conditions))
                .order_by(r.window_start, r.id)
                .limit(limit)
            ).all()
        return [
            {
                "window_start": row.window_start,
                "window_end": row.window_end,
                "check": row.check,
                "column": row.column,
                "metric": row.metric,
                "version": row.version,
                "value": row.value,
                "severity": row.severity,
                "details": row.details,
            }
            for row in rows
        ]

    def report(self, name: str) -> str:
        """The monitor's self-contained HTML report (plots drawn only now)."""
        from modelyard.monitoring.report import render_report

        monitor = self.get(name)
        windows = self.windows(name, limit=500)
        served = [
            str(item["version"])
            for window in windows
            for item in (window.get("summary") or {}).get("versions", [])
        ]
        references: dict[str, Reference] = {}
        # the versions windows were computed on, then those the endpoint routes to now:
        # before its first window a report still names the references it will use
        for ref in dict.fromkeys([*served, *self._routed_versions(monitor.spec.endpoint)]):
            model, _, number = ref.rpartition("/")
            found = cached_reference(self.references, {}, model, int(number))
            if found is not None:
                references[ref] = found
        since = windows[0]["start"] if windows else None
        results = self.results(name, since=since, limit=200_000)
        alerts = self.alerts.alerts({monitor.id: monitor.name}, limit=500)
        html: str = render_report(monitor, references, windows, results, alerts)
        return html

    def _routed_versions(self, endpoint: str) -> builtins.list[str]:
        e, r = t.endpoints.c, t.endpoint_revisions.c
        with self.db.read() as conn:
            spec = conn.execute(
                select(r.spec)
                .join(t.endpoints, (e.id == r.endpoint_id) & (e.revision == r.revision))
                .where(e.name == endpoint)
            ).scalar()
        if spec is None:
            return []
        return [f"{route.model}/{route.version}" for route in EndpointSpec.from_dict(spec).routes]

    def monitor_ids(self, name: str | None = None, workspace: str | None = None) -> dict[int, str]:
        """Ids of monitor ``name``, or of every monitor (of ``workspace``'s endpoints)."""
        if name is None:
            return {m.id: m.name for m in self.list(workspace=workspace)}
        found = [m for m in self.list(workspace=workspace) if m.name == name]
        if not found:
            raise NotFound(f"monitor '{name}' does not exist")
        return {found[0].id: found[0].name}


def _monitor_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
    if row is None:
        raise NotFound(f"monitor '{name}' does not exist")
    return row


def _owner(conn: Connection, endpoint: str) -> str | None:
    """The workspace of ``endpoint``: a monitor belongs where its endpoint does."""
    e = t.endpoints.c
    owner = conn.execute(select(e.workspace).where(e.name == endpoint)).scalar()
    return None if owner is None else str(owner)


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row.name,
        spec=Spec.parse(row.spec),
        enabled=bool(row.enabled),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        id=int(row.id),
    )
