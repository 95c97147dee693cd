"""Monitors: their specs, their windows, and running them.

A monitor's windows are tumbling: by time (aligned to the epoch, computed once
closed) or by rows (the endpoint's primary predictions in time order, computed
once full). Running a monitor claims each due window with an atomic statement
(an insert that a unique key makes exclusive, or an update of a window whose
lease ran out), so two workers on the same database never compute a window
twice, and a window left by a crashed worker is taken again when its lease
expires. The results and the window's completion are written in one
transaction, guarded by the claim; alerts are evaluated in it and delivered
after it commits.

Labels that arrive after a window was computed still count: each run recomputes
the performance of done windows younger than the label horizon whose labelled
count grew.
"""

from __future__ import annotations

import builtins
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from modelyard.clock import now_ms
from modelyard.domain.events import EndpointCreated
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.monitors import Monitor, Spec, check_monitor_name, merge
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.governance.workspaces import check_same
from modelyard.monitoring.alerts import AlertService, Outcome
from modelyard.monitoring.checks import Result, WindowData, evaluate
from modelyard.monitoring.reference import Reference, ReferenceService
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database
from modelyard.store.dialects import insert_for

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("modelyard.monitoring")
LEASE_MS = 10 * 60_000
MAX_WINDOWS_PER_RUN = 200
MAX_ATTEMPTS = 3


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunReport:
    """What one run of a monitor did."""

    monitor: str
    computed: builtins.list[dict[str, Any]] = field(default_factory=list)
    refreshed: builtins.list[int] = field(default_factory=list)
    skipped: int = 0
    alerts: builtins.list[dict[str, Any]] = field(default_factory=list)
    requests: builtins.list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MonitorService:
    """Create, edit and run monitors; read their results as time series."""

    def __init__(
        self,
        db: Database,
        predictions: PredictionLog,
        references: ReferenceService,
        alerts: AlertService,
        endpoint_exists: Callable[[str], bool],
        skew_rows: Callable[[Reference, str, str | None], pa.Table] | None = None,
    ) -> None:
        self.db = db
        self.predictions = predictions
        self.references = references
        self.alerts = alerts
        self.endpoint_exists = endpoint_exists
        self.skew_rows = skew_rows

    # -- specs ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        spec: Mapping[str, Any],
        *,
        actor: str = "",
        workspace: str | None = None,
    ) -> Monitor:
        """A new monitor; ``spec`` needs only ``endpoint``, the rest has defaults.

        With ``workspace``, the endpoint must belong to it."""
        check_monitor_name(name)
        parsed = Spec.parse(spec)
        self._check(parsed, workspace)
        stamp = now_ms()
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
        except SqlIntegrityError:
            raise Conflict(f"monitor '{name}' already exists") from None
        return self.get(name)

    def _check(self, spec: Spec, workspace: str | None) -> None:
        if not self.endpoint_exists(spec.endpoint):
            raise NotFound(f"endpoint '{spec.endpoint}' does not exist")
        e = t.endpoints.c
        with self.db.read() as conn:
            owner = conn.execute(select(e.workspace).where(e.name == spec.endpoint)).scalar()
        if workspace is not None:
            check_same(f"endpoint '{spec.endpoint}'", owner, workspace)
        from modelyard.monitoring.channels import check_channel_spec

        named: list[str] = []
        for channel in spec.alerts.channels:
            checked = check_channel_spec(channel)
            named += [checked[f] for f in ("token_secret", "password_secret") if checked.get(f)]
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
        actor: str = "",
        workspace: str | None = None,
    ) -> Monitor:
        """Merge ``changes`` into the spec (objects key by key) and/or enable/disable."""
        current = self.get(name)
        spec = current.spec
        if changes:
            spec = Spec.parse(merge(current.spec.to_dict(), changes))
            self._check(spec, workspace)
        values: dict[str, Any] = {"updated_by": actor, "updated_at": now_ms()}
        values |= {"spec": spec.to_dict(), "endpoint": spec.endpoint}
        if enabled is not None:
            values["enabled"] = enabled
        with self.db.write() as conn:
            conn.execute(update(t.monitors).where(t.monitors.c.name == name).values(**values))
        return self.get(name)

    def get(self, name: str) -> Monitor:
        with self.db.read() as conn:
            row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).first()
        if row is None:
            raise NotFound(f"monitor '{name}' does not exist")
        return _monitor(row)

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
            self.ensure_default(event.endpoint, actor=event.actor)

    def ensure_default(self, endpoint: str, *, actor: str = "") -> Monitor | None:
        """The default monitor of a newly deployed endpoint (named after it), unless the
        endpoint already has one."""
        if self.list(endpoint=endpoint):
            return None
        try:
            return self.create(endpoint, {"endpoint": endpoint}, actor=actor)
        except Conflict:
            return None

    # -- running -------------------------------------------------------------------

    def run(self, name: str, *, worker: str | None = None, now: int | None = None) -> RunReport:
        """Compute every due window of monitor ``name`` not computed yet, refresh the
        performance of recent windows whose labels grew, and deliver alerts."""
        monitor = self.get(name)
        worker = worker or worker_name()
        now = now if now is not None else now_ms()
        report = RunReport(monitor.name)
        references: dict[tuple[str, int], Reference | None] = {}
        for start, end in self._due(monitor, now):
            if not self._claim(monitor, start, end, worker, now):
                report.skipped += 1
                continue
            self._compute(monitor, start, end, worker, references, report)
        self._refresh(monitor, now, references, report)
        return report

    def _due(self, monitor: Monitor, now: int) -> builtins.list[tuple[int, int]]:
        window = monitor.spec.window
        endpoint = monitor.spec.endpoint
        done = self._finished_starts(monitor)
        if window.kind == "rows":
            total = self.predictions.count(endpoint, role="primary")
            starts = range(0, (total // window.size) * window.size, window.size)
            due = [(s, s + window.size) for s in starts if s not in done]
            return due[:MAX_WINDOWS_PER_RUN]
        first = self.predictions.query(endpoint, role="primary", limit=1, with_labels=False)
        if first.num_rows == 0:
            return []
        origin = int(first.column("ts")[0].as_py()) // window.size * window.size
        closed = now // window.size * window.size
        due = [(s, s + window.size) for s in range(origin, closed, window.size) if s not in done]
        return due[-MAX_WINDOWS_PER_RUN:] if len(due) > MAX_WINDOWS_PER_RUN else due

    def _finished_starts(self, monitor: Monitor) -> set[int]:
        w = t.monitor_windows.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(w.start).where(
                    w.monitor_id == monitor.id,
                    (w.status == "done") | ((w.status == "failed") & (w.attempts >= MAX_ATTEMPTS)),
                )
            ).all()
        return {int(r.start) for r in rows}

    def _claim(self, monitor: Monitor, start: int, end: int, worker: str, now: int) -> bool:
        """Take window ``start`` for ``worker``: atomic on SQLite and PostgreSQL alike."""
        w = t.monitor_windows.c
        lease = now_ms() + LEASE_MS
        with self.db.write() as conn:
            inserted = conn.execute(
                insert_for(self.db.dialect, t.monitor_windows)
                .values(
                    monitor_id=monitor.id,
                    start=start,
                    end=end,
                    status="running",
                    claimed_by=worker,
                    lease_until=lease,
                    attempts=1,
                )
                .on_conflict_do_nothing(index_elements=["monitor_id", "start"])
                .returning(w.id)  # rowcount is not reliable for this statement on PostgreSQL
            ).first()
            if inserted is not None:
                return True
            taken = conn.execute(
                update(t.monitor_windows)
                .where(
                    w.monitor_id == monitor.id,
                    w.start == start,
                    ((w.status == "running") & (w.lease_until < now_ms()))
                    | ((w.status == "failed") & (w.attempts < MAX_ATTEMPTS)),
                )
                .values(
                    status="running",
                    claimed_by=worker,
                    lease_until=lease,
                    attempts=w.attempts + 1,
                )
            )
            return taken.rowcount == 1

    def _window_data(self, monitor: Monitor, start: int, end: int) -> WindowData:
        window = monitor.spec.window
        endpoint = monitor.spec.endpoint
        if window.kind == "rows":
            table = self.predictions.query(
                endpoint, role="primary", limit=window.size, offset=start, with_labels=True
            )
        else:
            table = self.predictions.query(
                endpoint, role="primary", since=start, until=end, limit=None, with_labels=True
            )
        return WindowData(table, start, end, window.kind)

    def _reference(
        self, cache: dict[tuple[str, int], Reference | None], model: str, version: int
    ) -> Reference | None:
        key = (model, version)
        if key not in cache:
            try:
                cache[key] = self.references.get(f"{model}/{version}")
            except NotFound:
                cache[key] = None
        return cache[key]

    def _compute(
        self,
        monitor: Monitor,
        start: int,
        end: int,
        worker: str,
        cache: dict[tuple[str, int], Reference | None],
        report: RunReport,
    ) -> None:
        try:
            data = self._window_data(monitor, start, end)
            references = {
                (m, v): ref
                for m, v, _ in data.versions()
                if (ref := self._reference(cache, m, v)) is not None
            }
            if data.rows < monitor.spec.min_rows:
                results: builtins.list[Result] = []
                summary: dict[str, Any] = {
                    "rows": data.rows,
                    "labelled": data.labelled,
                    "severity": "ok",
                    "note": f"fewer than {monitor.spec.min_rows} rows: not checked",
                }
            else:
                results, summary = evaluate(
                    monitor.spec,
                    data,
                    references,
                    skew_rows=self.skew_rows,
                    predictions=lambda con: self.predictions._attach(con, monitor.spec.endpoint),
                )
            if data.rows:
                stamps = data.table.column("ts")
                summary["first_ts"] = int(stamps[0].as_py())
                summary["last_ts"] = int(stamps[-1].as_py())
        except Exception as error:
            log.exception("monitor %s window %s failed", monitor.name, start)
            self._fail(monitor, start, worker, f"{type(error).__name__}: {error}")
            return
        outcome = self._finish(monitor, start, end, worker, data, results, summary)
        if outcome is None:
            report.skipped += 1
            return
        report.computed.append(
            {
                "start": start,
                "end": end,
                "rows": data.rows,
                "severity": summary.get("severity", "ok"),
                "drifted": [d["column"] for d in summary.get("drifted", [])],
            }
        )
        self._deliver(monitor, outcome, report)

    def _finish(
        self,
        monitor: Monitor,
        start: int,
        end: int,
        worker: str,
        data: WindowData,
        results: builtins.list[Result],
        summary: dict[str, Any],
    ) -> Outcome | None:
        w = t.monitor_windows.c
        with self.db.write() as conn:
            done = conn.execute(
                update(t.monitor_windows)
                .where(
                    w.monitor_id == monitor.id,
                    w.start == start,
                    w.status == "running",
                    w.claimed_by == worker,
                )
                .values(
                    status="done",
                    rows=data.rows,
                    labelled=data.labelled,
                    severity=summary.get("severity", "ok"),
                    summary=summary,
                    error="",
                    computed_at=now_ms(),
                )
            )
            if done.rowcount != 1:
                return None  # the lease ran out and another worker took the window
            window_id = conn.execute(
                select(w.id).where(w.monitor_id == monitor.id, w.start == start)
            ).scalar_one()
            self._store_results(conn, monitor, window_id, start, end, results)
            return self.alerts.evaluate(conn, monitor, start, results)

    def _store_results(
        self,
        conn: Connection,
        monitor: Monitor,
        window_id: int,
        start: int,
        end: int,
        results: builtins.list[Result],
    ) -> None:
        if not results:
            return
        conn.execute(
            t.monitor_results.insert(),
            [
                {
                    "window_id": window_id,
                    "monitor_id": monitor.id,
                    "window_start": start,
                    "window_end": end,
                    "check": r.check,
                    "column": r.column[:250],
                    "metric": r.metric,
                    "version": r.version,
                    "value": r.value,
                    "severity": r.severity,
                    "details": r.details,
                }
                for r in results
            ],
        )

    def _fail(self, monitor: Monitor, start: int, worker: str, error: str) -> None:
        w = t.monitor_windows.c
        with self.db.write() as conn:
            conn.execute(
                update(t.monitor_windows)
                .where(w.monitor_id == monitor.id, w.start == start, w.claimed_by == worker)
                .values(status="failed", error=error[:2000], computed_at=now_ms())
            )

    def _deliver(self, monitor: Monitor, outcome: Outcome, report: RunReport) -> None:
        self.alerts.deliver(monitor, outcome)
        report.requests += outcome.requests
        report.alerts += [
            {
                "alert": n.alert_id,
                "event": n.event,
                "severity": n.severity,
                "check": n.key,
                "summary": n.summary,
            }
            for n in outcome.notifications
        ]

    def _refresh(
        self,
        monitor: Monitor,
        now: int,
        cache: dict[tuple[str, int], Reference | None],
        report: RunReport,
    ) -> None:
        """Recompute performance of recent done windows that gained labels."""
        check = monitor.spec.checks.performance
        if not check.enabled:
            return
        w = t.monitor_windows.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(w.id, w.start, w.end, w.labelled, w.rows, w.computed_at).where(
                    w.monitor_id == monitor.id,
                    w.status == "done",
                    w.labelled < w.rows,
                    w.computed_at >= now - check.label_horizon,
                )
            ).all()
        for row in rows:
            data = self._window_data(monitor, int(row.start), int(row.end))
            if data.labelled <= row.labelled:
                continue
            only = Spec(
                monitor.spec.endpoint,
                monitor.spec.window,
                monitor.spec.schedule,
                monitor.spec.min_rows,
                _performance_only(monitor.spec),
                monitor.spec.alerts,
            )
            references = {
                (m, v): ref
                for m, v, _ in data.versions()
                if (ref := self._reference(cache, m, v)) is not None
            }
            results, _ = evaluate(only, data, references)
            results = [r for r in results if r.check == "performance"]
            with self.db.write() as conn:
                conn.execute(
                    delete(t.monitor_results).where(
                        t.monitor_results.c.window_id == row.id,
                        t.monitor_results.c.check == "performance",
                    )
                )
                self._store_results(conn, monitor, row.id, row.start, row.end, results)
                conn.execute(
                    update(t.monitor_windows).where(w.id == row.id).values(labelled=data.labelled)
                )
                outcome = self.alerts.evaluate(conn, monitor, int(row.start), results)
            report.refreshed.append(int(row.start))
            self._deliver(monitor, outcome, report)

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
        references: dict[str, Reference] = {}
        for window in windows:
            for item in (window.get("summary") or {}).get("versions", []):
                ref = str(item["version"])
                if ref not in references:
                    model, _, number = ref.rpartition("/")
                    found = self._reference({}, model, int(number))
                    if found is not None:
                        references[ref] = found
        since = windows[0]["start"] if windows else None
        results = self.results(name, since=since, limit=200_000)
        alerts = self.alerts.alerts({monitor.id: monitor.name}, limit=500)
        html: str = render_report(monitor, references, windows, results, alerts)
        return html

    def monitor_ids(self, name: str | None = None, workspace: str | None = None) -> dict[int, str]:
        """Ids of monitor ``name``, or of every monitor (of ``workspace``'s endpoints)."""
        if name is None:
            return {m.id: m.name for m in self.list(workspace=workspace)}
        found = [m for m in self.list(workspace=workspace) if m.name == name]
        if not found:
            raise NotFound(f"monitor '{name}' does not exist")
        return {found[0].id: found[0].name}


def _performance_only(spec: Spec) -> Any:
    from dataclasses import replace

    checks = spec.checks
    off = replace(checks.drift, enabled=False)
    return replace(
        checks,
        drift=off,
        output_drift=replace(checks.output_drift, enabled=False),
        quality=replace(checks.quality, enabled=False),
        estimated_performance=replace(checks.estimated_performance, enabled=False),
        technical=replace(checks.technical, enabled=False),
        skew=None,
        custom=(),
    )


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
