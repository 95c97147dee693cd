"""Several processes writing to one store at once leave it consistent."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.dummy import DummyClassifier

from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings

WORKERS = 4
POINTS = 2_000


def _yard(home: str, db_url: str) -> Yard:
    return Yard(LocalBackend(bootstrap(Settings(Path(home), db_url, f"{home}/artifacts"))))


def log_to_run(home: str, db_url: str, run_id: str, worker: int) -> None:
    yard = _yard(home, db_url)
    for step in range(POINTS):
        yard._buffer.add(run_id, _point(f"w{worker}", step))
        yard._buffer.add(run_id, _point("shared", worker * POINTS + step))
    yard.backend.log_batch(run_id, params={f"p{worker}": worker, "same": "value"})
    yard.close()


def _point(key: str, step: int) -> Any:
    from modelyard.domain.runs import MetricPoint

    return MetricPoint(key, float(step), step, 1)


def move_alias(home: str, db_url: str, name: str, worker: int) -> None:
    yard = _yard(home, db_url)
    for round_ in range(50):
        version = 1 + (worker + round_) % 3
        yard.models.set_alias(name, "champion", version)
        assert yard.models.version(f"{name}@champion").version in (1, 2, 3)
    yard.close()


def register_versions(home: str, db_url: str, name: str, worker: int) -> None:
    yard = _yard(home, db_url)
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    for _ in range(5):
        yard.models.register(model, name=name, input_example={"x": [0]})
    yard.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    home = tmp_path / "home"
    if request.param == "sqlite":
        yield str(home), f"sqlite:///{home / 'modelyard.db'}"
    else:
        yield str(home), request.getfixturevalue("pg_url")


def run_workers(target: Callable[..., None], *args: Any) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(*args, worker)) for worker in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
    assert codes == [0] * WORKERS


def test_many_processes_log_to_one_run(store: tuple[str, str]) -> None:
    home, db_url = store
    yard = _yard(home, db_url)
    run = yard.start_run("concurrent")
    run_workers(log_to_run, home, db_url, run.id)
    stored = yard.runs.get(run.id)
    assert stored.params == {**{f"p{w}": str(w) for w in range(WORKERS)}, "same": "value"}
    for worker in range(WORKERS):
        steps = [p.step for p in yard.runs.history(run.id, f"w{worker}")]
        assert steps == list(range(POINTS))
    shared = yard.runs.history(run.id, "shared")
    assert sorted(p.step for p in shared) == list(range(WORKERS * POINTS))
    assert stored.metrics["shared"] == float(WORKERS * POINTS - 1)  # the highest step wins
    run.end()
    yard.close()


def test_alias_moves_from_many_processes(store: tuple[str, str]) -> None:
    home, db_url = store
    yard = _yard(home, db_url)
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    for _ in range(3):
        yard.models.register(model, name="raced", input_example={"x": [0]})
    run_workers(move_alias, home, db_url, "raced")
    assert yard.models.get("raced").aliases["champion"] in (1, 2, 3)
    yard.close()


def test_concurrent_registrations_get_distinct_numbers(store: tuple[str, str]) -> None:
    home, db_url = store
    run_workers(register_versions, home, db_url, "numbered")
    yard = _yard(home, db_url)
    numbers = [v.version for v in yard.models.versions("numbered")]
    assert numbers == list(range(1, WORKERS * 5 + 1))
    yard.close()
