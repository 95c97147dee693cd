"""Control plane at scale on PostgreSQL: 1,000 models x 3 versions, 100 endpoints, 100 monitors.

In one run, on a throwaway PostgreSQL database (127.0.0.1:5432):

- seeding through the services (``tests/integration/fleet.py``): registrations per second;
- listing and searching, a page of 100 at a time (median of every page, 5 passes):
  ``list_models`` pages, ``search_versions`` pages by tag and over all versions, a name
  search; beside each, the baseline: the same rows read by one bare SQL statement on
  the same database (what a page costs at least), and the ratio;
- monitors: the 200 windows (2 per monitor) of traffic already in the log, computed by
  one ``modelyard worker`` and by two sharing the database, in turns (1, 2, 1, 2, ...;
  ``--rounds``, after one warm-up round that builds the reference profiles): seconds
  from the workers' start to the last window done, the median of each, and the ratio.
  Between rounds the monitors' state (windows, results, alerts, turns) is deleted, so
  every round computes the same windows from the same log on the same database.

Not a test: timings never go in tests.

    .venv/bin/python benchmarks/scale.py                   # 1,000 models
    .venv/bin/python benchmarks/scale.py --models 200 --endpoints 20
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fleet seeding is shared with the test

PAGE = 100
PASSES = 5


def median_ms(call: Callable[[], Any]) -> float:
    times = []
    for _ in range(PASSES):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def pages(fetch: Callable[[str | None], list[Any]], key: Callable[[Any], str]) -> list[float]:
    """Milliseconds for each page, paging through everything once."""
    times, after = [], None
    while True:
        started = time.perf_counter()
        page = fetch(after)
        times.append((time.perf_counter() - started) * 1000)
        if not page:
            return times
        after = key(page[-1])


def paged_median(fetch: Callable[[str | None], list[Any]], key: Callable[[Any], str]) -> float:
    return statistics.median(t for _ in range(PASSES) for t in pages(fetch, key))


def bare_ms(engine: Any, sql: str) -> float:
    from sqlalchemy import text

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(text(sql)).all()

    return median_ms(run)


MONITOR_STATE = ("alert_deliveries", "alerts", "retraining_requests", "monitor_results")
"""Deleted between rounds with ``monitor_windows`` and ``monitor_turns``: what running
the monitors wrote (children before the tables they point to)."""


def forget_runs(services: Any) -> None:
    """Delete what the monitors' runs wrote, so the next round computes every window again."""
    from sqlalchemy import delete

    from modelyard.store import schema as t

    with services.db.write() as conn:
        for name in (*MONITOR_STATE, "monitor_windows", "monitor_turns"):
            conn.execute(delete(t.metadata.tables[name]))


def run_workers(services: Any, count: int, expected: int) -> float:
    """Seconds from starting ``count`` workers to ``expected`` windows done."""
    from sqlalchemy import func, select
    from tests.integration.fleet import start_workers

    from modelyard.store import schema as t

    forget_runs(services)
    started = time.perf_counter()
    workers = start_workers(services, count)
    try:
        w = t.monitor_windows.c
        while True:
            with services.db.read() as conn:
                done = conn.execute(select(func.count()).where(w.status == "done")).scalar_one()
            if done >= expected:
                return time.perf_counter() - started
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
            if worker.stderr is not None:
                worker.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.integration.fleet import GROUPS, WINDOW, model_name, seed, send_traffic
    from tests.stores import throwaway_postgres

    from modelyard.bootstrap import bootstrap
    from modelyard.config import Settings

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-scale-") as temp:
        home = Path(temp) / "home"
        with throwaway_postgres() as url:
            services = bootstrap(Settings(home, url, str(home / "artifacts")))
            try:
                fleet = seed(services, models=args.models, endpoints=args.endpoints)
                report_catalog(services, fleet, args.models, GROUPS, model_name)
                expected = len(fleet.endpoints) * send_traffic(services, fleet) // WINDOW
                run_workers(services, 1, expected)  # warm-up: builds the reference profiles
                seconds: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.rounds):
                    for count in (1, 2):
                        seconds[count].append(run_workers(services, count, expected))
            finally:
                services.close()
        one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
        print(
            f"\nmonitors: {args.endpoints} monitors, {expected} windows, {os.cpu_count()} cores, "
            f"median of {args.rounds} rounds (from starting the workers to the last window)"
        )
        print(f"  1 worker   {one:7.1f} s   ({expected / one:5.1f} windows/s)   (baseline)")
        print(f"  2 workers  {two:7.1f} s   ({expected / two:5.1f} windows/s)   ({one / two:.2f}x)")
        print(f"  rounds: 1 worker {_seconds(seconds[1])}; 2 workers {_seconds(seconds[2])}")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def report_catalog(
    services: Any, fleet: Any, models: int, groups: int, model_name: Callable[[int], str]
) -> None:
    catalog, engine = services.catalog, services.db.engine
    versions = models * 3
    seconds = fleet.seconds
    print(f"PostgreSQL, {models:,} models x 3 versions, {len(fleet.endpoints)} endpoints")
    print(
        f"seeding: {versions:,} registrations in {seconds['register']:.1f} s "
        f"({versions / seconds['register']:.0f}/s, 6 threads); "
        f"{len(fleet.endpoints)} endpoints + monitors in {seconds['deploy']:.1f} s"
    )
    print(f"\n{'page of 100':34} {'median ms':>10} {'bare SQL ms':>12} {'ratio':>7}")
    rows = [
        (
            "list_models",
            paged_median(lambda a: catalog.list_models(limit=PAGE, after=a), lambda m: m.name),
            "SELECT * FROM models ORDER BY name LIMIT 100 OFFSET 500",
        ),
        (
            "list_models name contains",
            median_ms(lambda: catalog.list_models("fleet-09", limit=PAGE)),
            "SELECT * FROM models WHERE name LIKE '%fleet-09%' ORDER BY name LIMIT 100",
        ),
        (
            "search_versions tag=group=7",
            paged_median(
                lambda a: catalog.search_versions(tag="group=7", limit=PAGE, after=a),
                lambda v: v.ref,
            ),
            "SELECT v.*, m.name FROM model_versions v JOIN models m ON m.id = v.model_id "
            "WHERE v.id IN (SELECT version_id FROM version_tags WHERE key = 'group' "
            "AND value = '7') ORDER BY m.name, v.version LIMIT 100 OFFSET 100",
        ),
        (
            "search_versions, all",
            paged_median(lambda a: catalog.search_versions(limit=PAGE, after=a), lambda v: v.ref),
            "SELECT v.*, m.name FROM model_versions v JOIN models m ON m.id = v.model_id "
            "ORDER BY m.name, v.version LIMIT 100 OFFSET 1500",
        ),
        (
            "search_versions of one model",
            median_ms(lambda: catalog.search_versions(model_name(models // 2), limit=PAGE)),
            "SELECT v.*, m.name FROM model_versions v JOIN models m ON m.id = v.model_id "
            f"WHERE m.name = '{model_name(models // 2)}' ORDER BY v.version LIMIT 100",
        ),
    ]
    for label, ours, sql in rows:
        bare = bare_ms(engine, sql)
        print(f"{label:34} {ours:10.1f} {bare:12.1f} {ours / bare:7.1f}")


if __name__ == "__main__":
    main()
