"""The control plane at scale on PostgreSQL: 1,000 models of 3 versions, 100 endpoints
and their 100 monitors, computed by two ``modelyard worker`` processes.

Timings are measured by ``benchmarks/scale.py``, never here: this test holds the
answers at that scale (every page right, in order, nothing twice, a fixed number of
queries a page) and the workers to computing every window exactly once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings
from modelyard.domain.models import ModelVersion, RegisteredModel
from modelyard.store import schema as t
from tests.integration.fleet import (
    GROUPS,
    WINDOW,
    Fleet,
    model_name,
    seed,
    send_traffic,
    start_workers,
)

MODELS, VERSIONS, ENDPOINTS, PAGE = 1000, 3, 100, 100

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def services(pg_url: str, tmp_path: Path) -> Iterator[Services]:
    built = bootstrap(Settings(tmp_path / "home", pg_url, str(tmp_path / "home" / "artifacts")))
    yield built
    built.close()


@contextmanager
def counted(services: Services) -> Iterator[list[str]]:
    """The statements the metadata store runs inside the block."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)


def model_pages(services: Services) -> tuple[list[list[RegisteredModel]], list[int]]:
    pages: list[list[RegisteredModel]] = []
    queries: list[int] = []
    after = None
    while True:
        with counted(services) as statements:
            page = services.catalog.list_models(limit=PAGE, after=after)
        queries.append(len(statements))
        if not page:
            return pages, queries
        pages.append(page)
        after = page[-1].name


def version_pages(services: Services, **filters: Any) -> tuple[list[ModelVersion], list[int]]:
    found: list[ModelVersion] = []
    queries, after = [], None
    while True:
        with counted(services) as statements:
            page = services.catalog.search_versions(limit=PAGE, after=after, **filters)
        queries.append(len(statements))
        if not page:
            return found, queries
        found += page
        after = page[-1].ref


def test_pages_and_searches_over_a_thousand_models(services: Services) -> None:
    fleet = seed(services, models=MODELS, versions=VERSIONS, endpoints=ENDPOINTS)
    pages, queries = model_pages(services)
    names = [m.name for page in pages for m in page]
    assert names == sorted(fleet.models) and len(pages) == MODELS // PAGE
    assert {m.latest_version for page in pages for m in page} == {VERSIONS}
    assert queries == [3] * len(pages) + [1]  # rows, tags, aliases: never a query per model
    assert pages[3][0].tags == {} and pages[3][0].name == model_name(300)

    grouped, queries = version_pages(services, tag="group=7")
    expected = [f"{model_name(n)}/{v}" for n in range(7, MODELS, GROUPS) for v in (1, 2, 3)]
    assert [v.ref for v in grouped] == expected  # 300 versions in 3 pages, none twice
    assert set(queries) == {3} and len(queries) == len(expected) // PAGE + 1
    assert all(v.tags == {"group": "7"} for v in grouped)

    one = services.catalog.search_versions(model_name(512), limit=PAGE)
    assert [v.version for v in one] == [1, 2, 3]
    contains = services.catalog.list_models("fleet-09", limit=PAGE)
    assert [m.name for m in contains] == [model_name(n) for n in range(900, 1000)]
    every, _ = version_pages(services)
    assert len(every) == MODELS * VERSIONS and len({v.ref for v in every}) == MODELS * VERSIONS

    start_workers_and_check_every_window_once(services, fleet)


def start_workers_and_check_every_window_once(services: Services, fleet: Fleet) -> None:
    workers = start_workers(services, 2)  # both idle before any window is due
    try:
        rows = send_traffic(services, fleet, windows=1)  # one window each: the test's cost
        expected = ENDPOINTS * rows // WINDOW
        deadline = time.monotonic() + 240
        while done_windows(services) < expected and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
            if worker.stderr is not None:
                worker.stderr.close()
    w, r = t.monitor_windows.c, t.monitor_results.c
    with services.db.read() as conn:
        windows = conn.execute(
            select(w.monitor_id, w.start, w.status, w.attempts, w.claimed_by)
        ).all()
        per_window = conn.execute(select(r.window_id, func.count()).group_by(r.window_id)).all()
        repeated = conn.execute(
            select(r.window_id, r.check, r.column, r.metric, r.version)
            .group_by(r.window_id, r.check, r.column, r.metric, r.version)
            .having(func.count() > 1)
        ).all()
    assert len(windows) == expected  # every (monitor, window) once
    assert {(row.status, row.attempts) for row in windows} == {("done", 1)}
    assert len({(row.monitor_id, row.start) for row in windows}) == expected
    monitors = {row.monitor_id for row in windows}
    assert len(monitors) == ENDPOINTS
    assert len({row.claimed_by for row in windows}) == 2  # both workers took windows
    assert len(per_window) == expected and repeated == []  # results once per window
    assert [worker.returncode for worker in workers] == [0, 0]


def done_windows(services: Services) -> int:
    w = t.monitor_windows.c
    with services.db.read() as conn:
        return int(conn.execute(select(func.count()).where(w.status == "done")).scalar_one())
