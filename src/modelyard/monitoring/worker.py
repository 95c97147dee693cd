"""``modelyard worker``: runs every enabled monitor on its schedule.

Several workers may share one database: each monitor's turn and each window are
claimed atomically (``monitoring/windows.py``), so they split the monitors, look at
each once a schedule between them, and never compute a window twice; a window
whose worker died is taken again when its lease (``lease`` seconds, renewed while
the window is computed) runs out.

Every ``MAINTAIN_EVERY`` seconds it also seals and compacts the file prediction
log (``serving/segments.py``), so a log nobody queried for a while is ready.

>>> Worker(services.monitors, services.predictions).run(stop_event)   # until it is set
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from modelyard.clock import now_ms
from modelyard.monitoring.monitors import MonitorService
from modelyard.monitoring.runner import RunReport
from modelyard.monitoring.windows import LEASE_MS, worker_name
from modelyard.serving.predictlog import PredictionLog

log = logging.getLogger("modelyard.monitoring")

MAINTAIN_EVERY = 60.0


class Worker:
    """Run monitors when their schedule comes round (``only`` these, if named)."""

    def __init__(
        self,
        monitors: MonitorService,
        predictions: PredictionLog,
        *,
        only: Sequence[str] = (),
        poll: float = 5.0,
        name: str | None = None,
        lease: float = LEASE_MS / 1000,
    ) -> None:
        self.monitors = monitors
        self.predictions = predictions  # sealed and compacted every MAINTAIN_EVERY seconds
        self.only = set(only)
        self.poll = poll
        self.name = name or worker_name()
        self.lease_ms = int(lease * 1000)
        self._next: dict[str, int] = {}
        self._maintained = float("-inf")

    def run_once(self, *, force: bool = False) -> list[RunReport]:
        """Run each enabled monitor that is due (all of them with ``force``)."""
        reports = []
        now = now_ms()
        for monitor in self.monitors.list():
            if not monitor.enabled or (self.only and monitor.name not in self.only):
                continue
            if not force and self._next.get(monitor.name, 0) > now:
                continue
            try:
                if not force:
                    due = self.monitors.take_turn(monitor, self.name, now_ms())
                    self._next[monitor.name] = due or now + monitor.spec.schedule
                    if due is not None:
                        continue  # another worker's turn
                report = self.monitors.run_scheduled(
                    monitor.name, worker=self.name, lease_ms=self.lease_ms
                )
            except Exception:
                log.exception("monitor %s failed to run", monitor.name)
                continue
            if report.computed or report.alerts or report.refreshed:
                log.info(
                    "monitor %s: %d windows, %d alerts",
                    monitor.name,
                    len(report.computed),
                    len(report.alerts),
                )
            reports.append(report)
        if force or time.monotonic() - self._maintained >= MAINTAIN_EVERY:
            self.maintain_log()
        return reports

    def maintain_log(self) -> None:
        """Seal and compact the prediction log; a failure is logged and tried again later."""
        self._maintained = time.monotonic()
        try:
            sealed, merged = self.predictions.maintain()
        except Exception:
            log.exception("could not seal or compact the prediction log")
            return
        if sealed or merged:
            log.info("prediction log: %d journals sealed, %d segments merged", sealed, merged)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set, waking every ``poll`` seconds."""
        log.info("worker %s started", self.name)
        while not stop.is_set():
            self.run_once()
            stop.wait(self.poll)
        log.info("worker %s stopped", self.name)
