"""A monitor's windows: which are due, and claiming one for a worker.

A monitor's windows are tumbling: by time (aligned to the epoch, computed once
closed) or by rows (the endpoint's predictions in time order, computed once
full). Windows hold the predictions of the roles in the spec's ``traffic``:
``primary`` (online requests, the default), ``batch`` (batch jobs run with
``--log-to``) or both, counted and read together. Running a monitor claims each
due window with an atomic statement (an insert that a unique key makes
exclusive, or an update of a window whose lease ran out), so two workers on the
same database never compute a window twice, and a window left by a crashed
worker is taken again when its lease expires. While a worker computes a window
it renews the lease every third of it (``renewing``), so a computation longer
than the lease is never taken from a live worker, and the lease can be short (a
dead worker's window waits at most one lease: ``modelyard worker --lease``). A
failed window is taken again until it has been tried ``MAX_ATTEMPTS`` times.

Workers also share each monitor's turn (``take_turn``): when the schedule comes
round, one worker moves the monitor's next run forward and runs it, and the others
skip it until then, so N workers look at each monitor once a schedule, not N times
(looking costs reads of the log and the database even when nothing is due).

>>> worker = worker_name()
>>> for start, end in due_windows(db, predictions, monitor, now_ms()):
...     if claim_window(db, monitor, start, end, worker, now_ms()):
...         with renewing(db, monitor, start, worker):
...             data = window_data(predictions, monitor, start, end)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, update

from modelyard.clock import now_ms
from modelyard.domain.monitors import Monitor
from modelyard.monitoring.window_data import WindowData
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database
from modelyard.store.dialects import insert_for

log = logging.getLogger("modelyard.monitoring")

LEASE_MS = 10 * 60_000
MAX_WINDOWS_PER_RUN = 200
MAX_ATTEMPTS = 3


def worker_name() -> str:
    """A name for this process's claims: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def due_windows(
    db: Database, predictions: PredictionLog, monitor: Monitor, now: int
) -> list[tuple[int, int]]:
    """The (start, end) of each window that is complete by ``now`` and not done yet."""
    window = monitor.spec.window
    endpoint = monitor.spec.endpoint
    done = _finished_starts(db, monitor)
    if window.kind == "rows":
        total = predictions.count(endpoint, role=monitor.spec.traffic)
        starts = range(0, (total // window.size) * window.size, window.size)
        due = [(s, s + window.size) for s in starts if s not in done]
        return due[:MAX_WINDOWS_PER_RUN]
    first = predictions.query(endpoint, role=monitor.spec.traffic, limit=1, with_labels=False)
    if first.num_rows == 0:
        return []
    origin = int(first.column("ts")[0].as_py()) // window.size * window.size
    closed = now // window.size * window.size
    due = [(s, s + window.size) for s in range(origin, closed, window.size) if s not in done]
    return due[-MAX_WINDOWS_PER_RUN:] if len(due) > MAX_WINDOWS_PER_RUN else due


def next_window(predictions: PredictionLog, monitor: Monitor, now: int) -> dict[str, Any]:
    """The first window not complete by ``now``, and what it waits for.

    By time: ``{"kind": "time", "start", "end", "logged"}``, computed once ``end``
    has passed (``logged``: whether the endpoint logged any prediction of the
    monitor's ``traffic`` yet, since windows begin with the first one). By rows:
    ``{"kind": "rows", "start", "end", "logged"}``, computed once ``end - start``
    rows are logged (``logged``: how many are so far).
    """
    window = monitor.spec.window
    endpoint = monitor.spec.endpoint
    if window.kind == "rows":
        total = predictions.count(endpoint, role=monitor.spec.traffic)
        start = total // window.size * window.size
        return {"kind": "rows", "start": start, "end": start + window.size, "logged": total - start}
    start = now // window.size * window.size
    first = predictions.query(endpoint, role=monitor.spec.traffic, limit=1, with_labels=False)
    return {
        "kind": "time",
        "start": start,
        "end": start + window.size,
        "logged": first.num_rows > 0,
    }


def _finished_starts(db: Database, monitor: Monitor) -> set[int]:
    w = t.monitor_windows.c
    with db.read() as conn:
        rows = conn.execute(
            select(w.start).where(
                w.monitor_id == monitor.id,
                (w.status == "done") | ((w.status == "failed") & (w.attempts >= MAX_ATTEMPTS)),
            )
        ).all()
    return {int(r.start) for r in rows}


def take_turn(db: Database, monitor: Monitor, worker: str, now: int) -> int | None:
    """Take monitor's turn for ``worker`` if it is due at ``now``: None when taken (its
    next run is then a schedule away), else when the monitor is next due (another worker
    ran it). A turn set further off than the monitor's schedule now allows (the schedule
    was shortened) is due at once. Atomic on SQLite and PostgreSQL alike, as ``claim_window``."""
    turns = t.monitor_turns.c
    following = now + monitor.spec.schedule
    with db.write() as conn:
        inserted = conn.execute(
            insert_for(db.dialect, t.monitor_turns)
            .values(monitor_id=monitor.id, next_run=following, taken_by=worker)
            .on_conflict_do_nothing(index_elements=["monitor_id"])
            .returning(turns.monitor_id)
        ).first()
        if inserted is not None:
            return None
        taken = conn.execute(  # due; or set by a longer schedule than the monitor's now
            update(t.monitor_turns)
            .where(
                turns.monitor_id == monitor.id,
                (turns.next_run <= now) | (turns.next_run > following),
            )
            .values(next_run=following, taken_by=worker)
        )
        if taken.rowcount == 1:
            return None
        due = conn.execute(
            select(turns.next_run).where(turns.monitor_id == monitor.id)
        ).scalar_one()
    return int(due)


def claim_window(
    db: Database,
    monitor: Monitor,
    start: int,
    end: int,
    worker: str,
    now: int,
    *,
    lease_ms: int = LEASE_MS,
) -> bool:
    """Take window ``start`` for ``worker`` for ``lease_ms``: atomic on SQLite and
    PostgreSQL alike."""
    w = t.monitor_windows.c
    lease = now_ms() + lease_ms
    with db.write() as conn:
        inserted = conn.execute(
            insert_for(db.dialect, t.monitor_windows)
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


def renew_claim(db: Database, monitor: Monitor, start: int, worker: str, lease_ms: int) -> bool:
    """Extend ``worker``'s lease on running window ``start``; False if it is not its own."""
    w = t.monitor_windows.c
    with db.write() as conn:
        renewed = conn.execute(
            update(t.monitor_windows)
            .where(
                w.monitor_id == monitor.id,
                w.start == start,
                w.status == "running",
                w.claimed_by == worker,
            )
            .values(lease_until=now_ms() + lease_ms)
        )
        return renewed.rowcount == 1


@contextlib.contextmanager
def renewing(
    db: Database, monitor: Monitor, start: int, worker: str, lease_ms: int = LEASE_MS
) -> Iterator[None]:
    """Renew ``worker``'s lease on window ``start`` every third of ``lease_ms`` while
    the block runs (a renewal that fails is logged; the claim check at commit decides)."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease_ms / 3000):
            try:
                if not renew_claim(db, monitor, start, worker, lease_ms):
                    log.warning("monitor %s window %s: the claim was lost", monitor.name, start)
                    return
            except Exception:
                log.exception("monitor %s window %s: could not renew", monitor.name, start)

    renewer = threading.Thread(target=renew, name=f"lease {monitor.name} {start}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


def fail_window(db: Database, monitor: Monitor, start: int, worker: str, error: str) -> None:
    """Mark window ``start``, as claimed by ``worker``, failed with ``error``."""
    w = t.monitor_windows.c
    with db.write() as conn:
        conn.execute(
            update(t.monitor_windows)
            .where(w.monitor_id == monitor.id, w.start == start, w.claimed_by == worker)
            .values(status="failed", error=error[:2000], computed_at=now_ms())
        )


def window_data(predictions: PredictionLog, monitor: Monitor, start: int, end: int) -> WindowData:
    """The predictions of the monitor's ``traffic`` (with their labels) in window ``start``."""
    window = monitor.spec.window
    endpoint = monitor.spec.endpoint
    if window.kind == "rows":
        table = predictions.query(
            endpoint, role=monitor.spec.traffic, limit=window.size, offset=start, with_labels=True
        )
    else:
        table = predictions.query(
            endpoint,
            role=monitor.spec.traffic,
            since=start,
            until=end,
            limit=None,
            with_labels=True,
        )
    return WindowData(table, start, end, window.kind)
