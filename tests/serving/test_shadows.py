"""Shadows in their own process: a niced child, restarted when it dies, never in the way."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from modelyard.serving.metrics import ServingMetrics
from modelyard.serving.shadows import ShadowProcess, encode_frame, read_frames
from tests.conftest import prepare_store, sqlite_settings
from tests.serving.models import cancer, classifier
from tests.serving.process import ServeProcess, shadow_child, unidle

pytestmark = pytest.mark.slow  # every test here starts a process


def dropped(metrics: ServingMetrics, endpoint: str, version: str) -> float:
    value = metrics.registry.get_sample_value(
        "modelyard_shadow_dropped_total", {"endpoint": endpoint, "version": version}
    )
    return value or 0.0


def test_frames_carry_copies_through_a_pipe() -> None:
    read_end, write_end = os.pipe()
    copies = [["main", 3, [["m", 2, "abc"]], ["id-1"], [{"x": 1.5}]]]
    os.write(write_end, encode_frame(copies) + encode_frame(copies[:0]))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        assert list(read_frames(stream)) == [copies, []]


def test_a_full_queue_drops_and_counts_and_never_blocks(tmp_path: Path) -> None:
    metrics = ServingMetrics()
    # a child that never reads: the pipe fills, then the queue, then copies are dropped
    hung = [sys.executable, "-c", "import time; time.sleep(60)"]
    shadows = ShadowProcess(sqlite_settings(tmp_path), metrics, command=hung, max_queue=16)
    shadows.start()
    row = {f"column {i}": float(i) for i in range(100)}
    outcomes: list[bool] = []

    def offer_all() -> None:
        for index in range(3000):
            outcomes.append(shadows.offer("main", 1, [("m", 2, "digest")], [f"id-{index}"], [row]))

    offering = threading.Thread(target=offer_all, daemon=True)
    offering.start()
    offering.join(timeout=60)  # an offer that waited for the hung child would never end
    assert not offering.is_alive() and len(outcomes) == 3000
    accepted, refused = outcomes.count(True), outcomes.count(False)
    assert refused > 0 and accepted > 0
    assert shadows.depth("main", "m/2") > 0
    assert dropped(metrics, "main", "m/2") >= refused
    started = time.perf_counter()
    shadows.stop(timeout=1)
    assert time.perf_counter() - started < 10
    assert shadows.pid is None  # killed: it never read what it was sent
    assert not shadows.offer("main", 1, [("m", 2, "digest")], ["late"], [row])


def test_a_child_that_exits_is_started_again_and_its_copies_are_counted(tmp_path: Path) -> None:
    metrics = ServingMetrics()
    quitter = [sys.executable, "-c", "import sys; sys.stdin.buffer.read(8)"]
    shadows = ShadowProcess(sqlite_settings(tmp_path), metrics, command=quitter)
    shadows.start()
    try:
        deadline = time.monotonic() + 20
        while shadows.restarts < 2 and time.monotonic() < deadline:
            shadows.offer("main", 1, [("m", 2, "digest")], ["id"], [{"x": 1.0}])
            time.sleep(0.05)
        assert shadows.restarts >= 2
        assert dropped(metrics, "main", "m/2") > 0
    finally:
        shadows.stop(timeout=2)


# -- a real ``modelyard serve`` and its shadow process ---------------------------


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Services, ServeProcess, str]]:
    home = tmp_path / "home"
    prepare_store(home)
    services = bootstrap(Settings.from_env(home), create_if_empty=False)
    yard = Yard(LocalBackend(services))
    features, _ = cancer()
    yard.models.register(classifier(1.0), name="cancer", input_example=features.head())
    yard.models.register(classifier(0.01), name="cancer", input_example=features.head())
    services.endpoints.create(
        "mirrored",
        routes=[TargetRequest.parse("cancer/1=100")],
        shadows=[TargetRequest.parse("cancer/2", shadow=True)],
    )
    services.identity.create_user("caller", "maintainer")
    key = services.identity.create_key("caller")[1]
    serve = ServeProcess(home, "mirrored").start()
    try:
        yield services, serve, key
    finally:
        serve.stop()
        services.close()


def nice_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def niced(pid: int) -> bool:
    """Nice 19 and the SCHED_IDLE policy (both set right after the child is started)."""
    deadline = time.monotonic() + 5
    while nice_of(pid) != 19 and time.monotonic() < deadline:
        time.sleep(0.05)
    return nice_of(pid) == 19 and os.sched_getscheduler(pid) == os.SCHED_IDLE


def send(http: httpx.Client, count: int) -> list[str]:
    rows = cancer()[0].head(3).to_dict(orient="records")
    ids: list[str] = []
    for _ in range(count):
        answer = http.post("/endpoints/mirrored/predict", json={"records": rows})
        assert answer.status_code == 200, answer.text
        ids += answer.json()["ids"]
    return ids


def wait_for_shadow_rows(services: Services, ids: list[str], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = services.predictions.query("mirrored", ids=ids, role="shadow", limit=None)
        if logged.num_rows == len(ids):
            return logged
        time.sleep(0.2)
    raise AssertionError("the shadow rows were not logged in time")


@pytest.mark.slow
def test_shadows_run_in_a_niced_child_that_comes_back_after_kill_9(
    serving: tuple[Services, ServeProcess, str],
) -> None:
    services, serve, key = serving
    assert serve.process is not None
    with httpx.Client(
        base_url=serve.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        first = shadow_child(serve)
        assert first != serve.process.pid
        assert niced(first) and nice_of(serve.process.pid) == 0
        unidle(first)
        ids = send(http, 5)
        logged = wait_for_shadow_rows(services, ids)
        assert set(logged.column("version").to_pylist()) == {2}
        assert set(logged.column("revision").to_pylist()) == {1}
        assert all(e is None for e in logged.column("error").to_pylist())
        primary = services.predictions.query("mirrored", ids=ids, role="primary", limit=None)
        assert sorted(primary.column("id").to_pylist()) == sorted(ids)

        os.kill(first, signal.SIGKILL)
        during = send(http, 20)  # the primary keeps answering while the child is gone
        second = shadow_child(serve, other_than=first)
        assert niced(second)
        unidle(second)
        time.sleep(0.5)
        later = send(http, 5)
        wait_for_shadow_rows(services, later)
        assert len(during) == 60

        metrics = http.get("/metrics").text
    shadow_requests = [
        line
        for line in metrics.splitlines()
        if line.startswith("modelyard_predictions_requests_total")
        and 'version="cancer/2"' in line
        and 'role="shadow"' in line
    ]
    assert shadow_requests and float(shadow_requests[0].rsplit(" ", 1)[1]) >= 10
    assert 'modelyard_queue_depth{endpoint="mirrored",role="shadow",version="cancer/2"}' in metrics
    assert 'modelyard_batch_rows_count{endpoint="mirrored",role="shadow"' in metrics
    assert "shadow process" in serve.output() and "exited with -9" in serve.output()


def heavy_libraries(pid: int) -> set[str]:
    """Which of pyarrow, DuckDB and pandas process ``pid`` has loaded (its mapped files)."""
    mapped = Path(f"/proc/{pid}/maps").read_text()
    found = {"pyarrow": "libarrow", "duckdb": "/_duckdb.", "pandas": "/pandas/_libs/"}
    return {name for name, marker in found.items() if marker in mapped}


@pytest.mark.slow
def test_the_serving_and_shadow_processes_never_load_pyarrow_duckdb_or_pandas(
    serving: tuple[Services, ServeProcess, str],
) -> None:
    """The data plane only appends JSON lines; readers of the log seal and query them."""
    services, serve, key = serving
    assert serve.process is not None
    with httpx.Client(
        base_url=serve.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        unidle(shadow_child(serve))
        ids = send(http, 20)
        wait_for_shadow_rows(services, ids)  # the reader here seals what was closed
        assert http.get("/metrics").status_code == 200
    assert heavy_libraries(serve.process.pid) == set()
    assert heavy_libraries(shadow_child(serve)) == set()
    assert heavy_libraries(os.getpid()) == {"pyarrow", "duckdb", "pandas"}  # markers work
