"""Tracking benchmark: modelyard (embedded and through its server) against MLflow.

Workload, all in one run on this machine:

1. logging: RUNS runs x 10 params x 5 metrics x STEPS steps, one call per point with
   the natural API (``run.log_metric``), then again with the bulk API (one
   ``log_batch`` per run). Time includes creating and ending every run, so every
   buffered point is durably written.
2. runs created per second: runs with 10 params and no metrics, created and ended.
3. search: SEARCH_RUNS runs (model in rf/lr/gbm, C, metrics auc and loss), then a
   filtered, sorted 100-row page (``metrics.auc > 0.5 and params.model = "rf"``,
   ``metrics.auc desc``), the first 5 pages by cursor, and the whole experiment as
   a DataFrame. The same page at BIG_RUNS runs, embedded only (filled through the
   service layer in bulk, since the SDK would take minutes just to fill it).
4. MLflow's client with a SQLite backend store on the same workload. Its
   one-call-per-point logging is scaled down (it manages ~140 points/s); rates
   are comparable across scales.

Prints every figure, the ratios against MLflow, and the targets of the tracking
issue marked PASS or MISS. Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from processes import free_port, prepare_home  # benchmarks/ is on sys.path when run

import modelyard as my
from modelyard.bootstrap import bootstrap
from modelyard.config import Settings
from modelyard.store import schema as t

PARAMS = {f"p{i}": i * 0.1 for i in range(10)}
METRICS = [f"m{i}" for i in range(5)]
FILTER = 'metrics.auc > 0.5 and params.model = "rf"'
ORDER = "metrics.auc desc"


@dataclass
class Results:
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, metric: str, system: str, value: float) -> None:
        self.rows.setdefault(metric, {})[system] = value
        print(f"  {metric:<38} {system:<20} {value:,.3f}", flush=True)


def median_time(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- modelyard -----------------------------------------------------------------


def natural_logging(yard: my.Yard, experiment: str, runs: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        with yard.start_run(experiment, params=PARAMS) as run:
            for step in range(steps):
                for key in METRICS:
                    run.log_metric(key, step * 0.01, step=step)
    return runs * steps * len(METRICS) / (time.perf_counter() - start)


def bulk_logging(yard: my.Yard, experiment: str, runs: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        with yard.start_run(experiment, params=PARAMS) as run:
            run.log_batch({key: [step * 0.01 for step in range(steps)] for key in METRICS})
    return runs * steps * len(METRICS) / (time.perf_counter() - start)


def runs_created(yard: my.Yard, experiment: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        yard.start_run(experiment, params=PARAMS).end()
    return count / (time.perf_counter() - start)


def fill_search_experiment(yard: my.Yard, experiment: str, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for index in range(count):
        params = {
            "model": rng.choice(["rf", "lr", "gbm"]),
            "C": rng.choice([0.1, 0.5, 1.0]),
            "i": index,
        }
        run = yard.start_run(experiment, params=params, capture_env=False)
        run.log_batch([("auc", rng.random(), 0), ("loss", rng.random(), 0)])
        run.end()


def search_figures(yard: my.Yard, experiment: str, system: str, results: Results) -> None:
    page = median_time(lambda: yard.runs.search(FILTER, experiments=experiment, order_by=ORDER), 20)
    results.put("search: 100-row page (s)", system, page)

    def five_pages() -> None:
        cursor = None
        for _ in range(5):
            found = yard.runs.search(FILTER, experiments=experiment, order_by=ORDER, cursor=cursor)
            cursor = found.next_cursor

    results.put("search: 5 pages by cursor (s)", system, median_time(five_pages, 5))
    frame = median_time(lambda: yard.runs.to_frame(experiments=experiment), 5)
    results.put("search: whole experiment frame (s)", system, frame)


def bench_modelyard(yard: my.Yard, system: str, args: argparse.Namespace, results: Results) -> None:
    print(f"modelyard {system}", flush=True)
    results.put(
        "natural API points/s", system, natural_logging(yard, "natural", args.runs, args.steps)
    )
    results.put("bulk API points/s", system, bulk_logging(yard, "bulk", args.runs, args.steps))
    results.put("runs created/s", system, runs_created(yard, "created", args.created))
    fill_search_experiment(yard, "search", args.search_runs)
    search_figures(yard, "search", system, results)


def fill_big(home: Path, count: int) -> tuple[Any, int]:
    """Insert ``count`` runs straight through the store (the SDK would take minutes)."""
    services = bootstrap(
        Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    )
    experiment = services.tracking.create_experiment("big")
    rng = random.Random(1)
    for start in range(0, count, 20_000):
        runs, params, latest = [], [], []
        for index in range(start, min(start + 20_000, count)):
            run_id = uuid.uuid4().hex
            runs.append(
                {
                    "id": run_id,
                    "experiment_id": experiment.id,
                    "name": f"r{index}",
                    "status": "FINISHED",
                    "start_time": index,
                    "end_time": index + 1,
                    "user": "bench",
                }
            )
            params += [
                {"run_id": run_id, "key": "model", "value": rng.choice(["rf", "lr", "gbm"])},
                {"run_id": run_id, "key": "C", "value": str(rng.choice([0.1, 0.5, 1.0]))},
            ]
            latest += [
                {"run_id": run_id, "key": key, "value": rng.random(), "step": 0, "timestamp": 1}
                for key in ("auc", "loss")
            ]
        with services.db.write() as conn:
            conn.execute(t.runs.insert(), runs)
            conn.execute(t.params.insert(), params)
            conn.execute(t.latest_metrics.insert(), latest)
    with services.db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    return services, experiment.id


def bench_big(args: argparse.Namespace, results: Results, workdir: Path) -> None:
    print(f"modelyard embedded, {args.big_runs:,} runs", flush=True)
    services, experiment_id = fill_big(workdir / "big", args.big_runs)
    page = median_time(lambda: services.queries.search([experiment_id], FILTER, ORDER, 100), 20)
    results.put(f"search: page at {args.big_runs:,} runs (s)", "embedded", page)
    services.close()


# -- the server ----------------------------------------------------------------


@contextlib.contextmanager
def running_server(home: Path) -> Iterator[tuple[str, str]]:
    """A migrated server with an admin; yields (url, admin key)."""
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    command = [sys.executable, "-m", "modelyard.cli.main"]
    key = prepare_home(home)
    port = free_port()
    process = subprocess.Popen(
        [*command, "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url, key
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# -- MLflow --------------------------------------------------------------------


def quiet_mlflow() -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow

    return mlflow


def bench_mlflow(args: argparse.Namespace, results: Results, workdir: Path) -> None:
    try:
        mlflow = quiet_mlflow()
    except ImportError:
        results.notes.append("MLflow is not installed: run `make bench` (installs the bench extra)")
        return
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    print("MLflow (SQLite backend store)", flush=True)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client = MlflowClient()

    def experiment(name: str) -> str:
        return str(mlflow.create_experiment(name, artifact_location=str(workdir / "mlruns" / name)))

    natural_id, runs, steps = experiment("natural"), args.mlflow_natural_runs, args.steps
    start = time.perf_counter()
    for _ in range(runs):
        with mlflow.start_run(experiment_id=natural_id):
            mlflow.log_params(PARAMS)
            for step in range(steps):
                for key in METRICS:
                    mlflow.log_metric(key, step * 0.01, step=step)
    results.put(
        "natural API points/s",
        "MLflow",
        runs * steps * len(METRICS) / (time.perf_counter() - start),
    )
    results.notes.append(f"MLflow natural API measured on {runs} runs x 5 metrics x {steps} steps")

    bulk_id = experiment("bulk")
    start = time.perf_counter()
    for _ in range(args.runs):
        run = client.create_run(bulk_id)
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in PARAMS.items()])
        stamp = int(time.time() * 1000)
        points = [Metric(key, step * 0.01, stamp, step) for key in METRICS for step in range(steps)]
        for chunk in range(0, len(points), 1000):
            client.log_batch(run.info.run_id, metrics=points[chunk : chunk + 1000])
        client.set_terminated(run.info.run_id)
    results.put(
        "bulk API points/s",
        "MLflow",
        args.runs * steps * len(METRICS) / (time.perf_counter() - start),
    )

    created_id = experiment("created")
    count = args.mlflow_created
    start = time.perf_counter()
    for _ in range(count):
        with mlflow.start_run(experiment_id=created_id):
            mlflow.log_params(PARAMS)
    results.put("runs created/s", "MLflow", count / (time.perf_counter() - start))

    search_id = experiment("search")
    rng = random.Random(0)
    print(f"  filling MLflow with {args.search_runs:,} runs ...", flush=True)
    for index in range(args.search_runs):
        run = client.create_run(search_id)
        params = [
            Param("model", rng.choice(["rf", "lr", "gbm"])),
            Param("C", str(rng.choice([0.1, 0.5, 1.0]))),
            Param("i", str(index)),
        ]
        stamp = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            params=params,
            metrics=[Metric("auc", rng.random(), stamp, 0), Metric("loss", rng.random(), stamp, 0)],
        )
        client.set_terminated(run.info.run_id)
    flt = FILTER.replace('"', "'")
    page = median_time(
        lambda: client.search_runs(
            [search_id], flt, order_by=["metrics.auc DESC"], max_results=100
        ),
        5,
    )
    results.put("search: 100-row page (s)", "MLflow", page)

    def five_pages() -> None:
        token = None
        for _ in range(5):
            found = client.search_runs(
                [search_id], flt, order_by=["metrics.auc DESC"], max_results=100, page_token=token
            )
            token = found.token

    results.put("search: 5 pages by cursor (s)", "MLflow", median_time(five_pages, 3))
    frame = median_time(
        lambda: mlflow.search_runs(experiment_ids=[search_id], max_results=100_000), 3
    )
    results.put("search: whole experiment frame (s)", "MLflow", frame)


# -- report --------------------------------------------------------------------

HIGHER_IS_BETTER = ("natural API points/s", "bulk API points/s", "runs created/s")
TARGETS = [
    ("natural API points/s", "ratio", 30.0),
    ("bulk API points/s", "ratio", 10.0),
    ("runs created/s", "ratio", 10.0),
    ("search: 100-row page (s)", "below", 0.05),
    ("search: whole experiment frame (s)", "below", 0.5),
]


def ratio(metric: str, ours: float | None, theirs: float | None) -> float | None:
    if not ours or not theirs:
        return None
    return ours / theirs if metric in HIGHER_IS_BETTER else theirs / ours


def report(results: Results, args: argparse.Namespace) -> None:
    print("\nfigure | embedded | server | MLflow | embedded vs MLflow | server vs MLflow")
    print("(ratios > 1 mean modelyard is better)")
    for metric, values in results.rows.items():
        embedded, remote, peer = values.get("embedded"), values.get("server"), values.get("MLflow")
        cells = [f"{v:,.4g}" if v is not None else "-" for v in (embedded, remote, peer)]
        ratios = [ratio(metric, v, peer) for v in (embedded, remote)]
        cells += [f"{r:,.1f}x" if r is not None else "-" for r in ratios]
        print(f"{metric} | " + " | ".join(cells))
    print("\ntargets:")
    for metric, kind, goal in TARGETS:
        for system in ("embedded", "server"):
            value = results.rows.get(metric, {}).get(system)
            if value is None:
                continue
            if kind == "ratio":
                measured = ratio(metric, value, results.rows[metric].get("MLflow"))
                if measured is None:
                    print(f"  SKIP  {metric} {system}: no MLflow figure to compare with")
                    continue
                ok = measured >= goal
                shown = "-" if measured is None else f"{measured:,.1f}x"
                verdict = "PASS" if ok else "MISS"
                print(f"  {verdict}  {metric} {system}: {shown} MLflow (goal {goal:g}x)")
            else:
                verdict = "PASS" if value < goal else "MISS"
                shown = f"{value * 1000:,.1f} ms"
                print(f"  {verdict}  {metric} {system}: {shown} (goal < {goal * 1000:g} ms)")
    big = results.rows.get(f"search: page at {args.big_runs:,} runs (s)", {}).get("embedded")
    if big is not None:
        print(
            f"  {'PASS' if big < 0.5 else 'MISS'}  page at {args.big_runs:,} runs embedded: "
            f"{big * 1000:,.1f} ms (goal < 500 ms)"
        )
    for note in results.notes:
        print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--created", type=int, default=300)
    parser.add_argument("--search-runs", type=int, default=5_000)
    parser.add_argument("--big-runs", type=int, default=100_000)
    parser.add_argument("--mlflow-natural-runs", type=int, default=2)
    parser.add_argument("--mlflow-created", type=int, default=100)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-remote", action="store_true")
    args = parser.parse_args()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as temp:
        workdir = Path(temp)
        embedded = my.connect(home=workdir / "embedded")
        bench_modelyard(embedded, "embedded", args, results)
        embedded.close()
        if not args.skip_remote:
            with running_server(workdir / "server") as (url, key):
                remote = my.connect(url, api_key=key, home=workdir / "client")
                bench_modelyard(remote, "server", args, results)
                remote.close()
        if args.big_runs:
            bench_big(args, results, workdir)
        if not args.skip_mlflow:
            bench_mlflow(args, results, workdir)
    report(results, args)


if __name__ == "__main__":
    main()
