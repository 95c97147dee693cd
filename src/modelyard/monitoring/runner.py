"""Running a monitor: evaluating the windows it claimed, and what the run did.

The results and the window's completion are written in one transaction, guarded
by the claim; alerts are evaluated in it and delivered after it commits.

Labels that arrive after a window was computed still count: each run recomputes
the performance of done windows younger than the label horizon whose labelled
count grew.

>>> runner = Runner(db, predictions, references, alerts)
>>> report, cache = RunReport("churn"), {}
>>> runner.compute(monitor, start, end, worker, cache, report)   # a claimed window
>>> runner.refresh(monitor, now_ms(), cache, report)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, update

from modelyard.clock import now_ms
from modelyard.domain.monitors import Monitor, Spec
from modelyard.errors import NotFound
from modelyard.monitoring.alerts import AlertService, Outcome
from modelyard.monitoring.checks import evaluate
from modelyard.monitoring.reference import Reference, ReferenceService
from modelyard.monitoring.results import Result
from modelyard.monitoring.window_data import WindowData
from modelyard.monitoring.windows import fail_window, window_data
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("modelyard.monitoring")


@dataclass
class RunReport:
    """What one run of a monitor did."""

    monitor: str
    computed: list[dict[str, Any]] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    skipped: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    next_window: dict[str, Any] | None = None  # windows.next_window: what the next one waits for

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def cached_reference(
    references: ReferenceService,
    cache: dict[tuple[str, int], Reference | None],
    model: str,
    version: int,
) -> Reference | None:
    """The reference of ``model`` version ``version`` (``None`` if it has none), once
    per ``cache``."""
    key = (model, version)
    if key not in cache:
        try:
            cache[key] = references.get(f"{model}/{version}")
        except NotFound:
            cache[key] = None
    return cache[key]


class Runner:
    """Evaluate a monitor's claimed windows, record them and deliver their alerts."""

    def __init__(
        self,
        db: Database,
        predictions: PredictionLog,
        references: ReferenceService,
        alerts: AlertService,
        skew_rows: Callable[[Reference, str, str | None], pa.Table] | None = None,
        importance: Callable[[str, int], dict[str, float] | None] | None = None,
    ) -> None:
        self.db = db
        self.predictions = predictions
        self.references = references
        self.alerts = alerts
        self.skew_rows = skew_rows
        self.importance = importance  # a version's feature importance shares, when known

    def compute(
        self,
        monitor: Monitor,
        start: int,
        end: int,
        worker: str,
        cache: dict[tuple[str, int], Reference | None],
        report: RunReport,
    ) -> None:
        """Evaluate window ``start``, claimed by ``worker``, and record it in ``report``."""
        try:
            data = window_data(self.predictions, monitor, start, end)
            references = {
                (m, v): ref
                for m, v, _ in data.versions()
                if (ref := cached_reference(self.references, cache, m, v)) is not None
            }
            for (m, v), ref in references.items():
                if ref.importance is None and self.importance is not None:
                    ref.importance = self.importance(m, v)
            if data.rows < monitor.spec.min_rows:
                results: list[Result] = []
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
            fail_window(self.db, monitor, start, worker, f"{type(error).__name__}: {error}")
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
        results: list[Result],
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
            _store_results(conn, monitor, window_id, start, end, results)
            return self.alerts.evaluate(conn, monitor, start, results)

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

    def refresh(
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
            data = window_data(self.predictions, monitor, int(row.start), int(row.end))
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
                if (ref := cached_reference(self.references, cache, m, v)) is not None
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
                _store_results(conn, monitor, row.id, row.start, row.end, results)
                conn.execute(
                    update(t.monitor_windows).where(w.id == row.id).values(labelled=data.labelled)
                )
                outcome = self.alerts.evaluate(conn, monitor, int(row.start), results)
            report.refreshed.append(int(row.start))
            self._deliver(monitor, outcome, report)


def _store_results(
    conn: Connection,
    monitor: Monitor,
    window_id: int,
    start: int,
    end: int,
    results: list[Result],
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
