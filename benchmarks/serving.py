"""Serving benchmark: ``modelyard serve`` against a bare FastAPI app and ``mlflow models serve``.

Workload, all in one run on this machine:

1. models: LogisticRegression(max_iter=1000) and RandomForestClassifier(n_estimators=100)
   fitted on make_classification(n_samples=5000, n_features=20) as a DataFrame f0..f19.
   Two versions of each (LR with C=1 and C=0.5; RF with random_state 0 and 1).
2. servers, each a subprocess on 127.0.0.1 with a free port and one worker:
   - modelyard: ``modelyard serve bench-KIND`` in an embedded home, the endpoint a 90/10
     canary over the two versions, with an API key; prediction log and metrics are on.
   - bare: a FastAPI app (written by this script) that loads version 1 with joblib and
     answers ``model.predict(pd.DataFrame(records))``, run by uvicorn (uvloop, httptools).
   - mlflow: ``mlflow models serve --env-manager local`` over ``mlflow.sklearn.save_model``
     of version 1. If it cannot start, the script says why and goes on without it.
3. load: a closed loop in a separate process (asyncio + httpx on uvloop, one client with
   one keep-alive connection per worker): N workers send single-row requests back to back for
   SECONDS after a warm-up, at every concurrency. Requests/s, p50 and p99 latency and
   non-200 answers are counted. Points are interleaved (every server at one
   concurrency, then the next), so machine noise hits all servers alike.
4. per server: seconds from process start to the first 200 on its readiness route,
   idle RSS (VmRSS of the process and all its descendants) once ready, and server CPU
   per request (utime+stime of the process tree, read from /proc around each point).
5. shadow: a second modelyard server hosts ``bench-KIND-solo`` (version 1 only) and
   ``bench-KIND-shadow`` (version 1, version 2 as shadow); their p50 are measured in
   alternating rounds (the order flips every round) to show what a shadow adds to
   the primary's latency.

Run it (the ``bench`` extra provides MLflow)::

    .venv/bin/pip install -c constraints.txt -e '.[bench]'
    .venv/bin/python benchmarks/serving.py                      # about 5 minutes
    .venv/bin/python benchmarks/serving.py --seconds 2 --models lr --skip-mlflow

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

COLUMNS = [f"f{i}" for i in range(20)]
BODIES = 1000  # distinct rows cycled through by the load generator
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
KINDS = {"lr": "LogisticRegression(max_iter=1000)", "rf": "RandomForestClassifier(100 trees)"}
SERVERS = ("modelyard", "bare", "mlflow")
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its live descendants."""
    ticks = 0
    for pid in process_tree(root):
        if fields := _stat_fields(pid):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def tree_rss_mb(root: int) -> float:
    total_kb = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


# -- load generator (runs in its own process) ----------------------------------


@dataclass
class Load:
    url: str
    headers: dict[str, str]
    bodies: list[bytes]
    concurrency: int
    seconds: float
    warmup: float
    server_pid: int


@dataclass
class Point:
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu * 1000 / self.requests if self.requests else math.nan


async def _worker(
    client: httpx.AsyncClient, load: Load, first: int, stop_at: float, point: Point | None
) -> None:
    index = first
    while (started := time.perf_counter()) < stop_at:
        body = load.bodies[index % len(load.bodies)]
        index += load.concurrency
        try:
            response = await client.post(load.url, content=body, headers=load.headers)
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        if point is None:
            continue
        point.requests += 1
        if outcome == "200":
            point.latencies.append(time.perf_counter() - started)
        else:
            point.failures[outcome] += 1


async def _phase(
    clients: list[httpx.AsyncClient], load: Load, seconds: float, point: Point | None
) -> None:
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(_worker(c, load, i, stop_at, point) for i, c in enumerate(clients)))


async def _drive(load: Load) -> Point:
    """One client (one keep-alive connection) per worker.

    A single pool of N connections costs the client O(N) work per request in httpcore;
    at 64 it saturated a core by itself and became the bottleneck.
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT)
            )
            for _ in range(load.concurrency)
        ]
        await _phase(clients, load, load.warmup, None)
        point = Point()
        cpu, own, start = (
            tree_cpu_seconds(load.server_pid),
            time.process_time(),
            time.perf_counter(),
        )
        await _phase(clients, load, load.seconds, point)
        point.elapsed = time.perf_counter() - start
        point.client_cpu = time.process_time() - own
        point.server_cpu = tree_cpu_seconds(load.server_pid) - cpu
    return point


def run_load(load: Load) -> Point:
    """Entry point of the load process: warm up, then one measured closed-loop window."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_drive(load))
    return uvloop.run(_drive(load))


# -- data and models -----------------------------------------------------------


def dataset() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=5000, n_features=20, random_state=0)
    return pd.DataFrame(features.astype(float), columns=COLUMNS), labels


def fit_versions(kind: str, frame: Any, labels: Any) -> list[Any]:
    """Two fitted versions of ``kind``: the primary and the canary (or shadow)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "lr":
        models = [LogisticRegression(max_iter=1000, C=c) for c in (1.0, 0.5)]
    else:
        models = [RandomForestClassifier(n_estimators=100, random_state=s) for s in (0, 1)]
    return [model.fit(frame, labels) for model in models]


def request_bodies(frame: Any, wrap: Callable[[list[dict[str, float]]], Any]) -> list[bytes]:
    records = frame.head(BODIES).to_dict("records")
    return [json.dumps(wrap([row])).encode() for row in records]


# -- servers -------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    headers: dict[str, str]
    bodies: list[bytes]
    ready_s: float = 0.0
    idle_mb: float = 0.0


class ServerFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after STOP_TIMEOUT."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, started: float) -> float:
    deadline = started + READY_TIMEOUT
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"exited with {process.returncode}: {tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise ServerFailed(f"not ready after {READY_TIMEOUT:.0f} s: {tail(log)}")


def tail(log: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        kept = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(kept[-lines:]) or "(no output)"
    return "(no log)"


@contextlib.contextmanager
def running(
    name: str, command: list[str], env: dict[str, str], ready: str, predict: str, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, float, float]]:
    """Start ``command`` (it gets ``{port}`` filled in); yields (process, url, ready s, idle MB)."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    base = f"http://127.0.0.1:{port}"
    print(f"  starting {name}: {' '.join(argv)}", flush=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        ready_s = wait_ready(process, base + ready, log, started)
        time.sleep(1.0)
        yield process, base + predict, ready_s, tree_rss_mb(process.pid)
    finally:
        stop(process)


def check_predicts(server: Server) -> None:
    """One request before the load: a server that cannot predict is reported, not measured."""
    try:
        response = httpx.post(
            server.url, content=server.bodies[0], headers=server.headers, timeout=30
        )
    except httpx.HTTPError as exc:
        raise ServerFailed(f"predict failed: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise ServerFailed(f"predict answered {response.status_code}: {response.text[:300]}")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- modelyard -----------------------------------------------------------------


def setup_modelyard(home: Path, versions: dict[str, list[Any]], example: Any) -> str:
    """Register both versions of every kind, create the endpoints; returns an API key."""
    import modelyard
    from modelyard.bootstrap import bootstrap

    for key in [k for k in os.environ if k.startswith("MODELYARD_")]:
        del os.environ[key]
    os.environ["MODELYARD_HOME"] = str(home)
    with modelyard.connect() as yard:
        for kind, models in versions.items():
            name = f"bench-{kind}"
            for model in models:
                yard.models.register(model, name=name, input_example=example)
            yard.endpoints.create(name, routes=[f"{name}/1=90", f"{name}/2=10"])
            yard.endpoints.create(f"{name}-solo", routes=[f"{name}/1=100"])
            yard.endpoints.create(f"{name}-shadow", routes=[f"{name}/1=100"], shadows=[f"{name}/2"])
    services = bootstrap()
    services.identity.create_user("bench", "maintainer")
    _, key = services.identity.create_key("bench")
    services.close()
    return key


def modelyard_command(endpoints: list[str]) -> list[str]:
    return [str(BIN / "modelyard"), "serve", *endpoints, "--port", "{port}"]


# -- bare FastAPI --------------------------------------------------------------

BARE_APP = textwrap.dedent(
    """
    import os

    import joblib
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel

    model = joblib.load(os.environ["BENCH_MODEL"])
    app = FastAPI()


    class Body(BaseModel):
        records: list[dict[str, float]]


    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}


    @app.post("/predict")
    def predict(body: Body) -> dict[str, list[int]]:
        return {"predictions": model.predict(pd.DataFrame(body.records)).tolist()}
    """
)


def bare_command(app_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_app:app",
        "--app-dir",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


# -- MLflow --------------------------------------------------------------------


def mlflow_flags() -> list[str]:
    """The extra flags of ``mlflow models serve`` besides ``--env-manager local``."""
    help_text = subprocess.run(
        [str(BIN / "mlflow"), "models", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(),
    ).stdout
    if "--env-manager" not in help_text:
        raise RuntimeError("this mlflow has no `models serve --env-manager`")
    return ["--no-conda"] if "--no-conda" in help_text else []


def save_mlflow_model(path: Path, model: Any, example: Any) -> None:
    """``mlflow.sklearn.save_model`` in MLflow's default (skops) format.

    skops refuses tree node storage unless told to trust it; these models are our own.
    """
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow.sklearn

    trusted = ["sklearn.tree._tree.Tree"] if hasattr(model, "estimators_") else None
    mlflow.sklearn.save_model(model, str(path), input_example=example, skops_trusted_types=trusted)


def mlflow_command(model: Path, flags: list[str]) -> list[str]:
    return [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model),
        "-h",
        "127.0.0.1",
        "-p",
        "{port}",
        "--env-manager",
        "local",
        *flags,
    ]


# -- one model kind ------------------------------------------------------------


@dataclass
class Setup:
    workdir: Path
    key: str
    frame: Any
    mlflow_flags: list[str] | None
    mlflow_kinds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class KindResults:
    servers: dict[str, Server] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    points: dict[tuple[str, int], Point] = field(default_factory=dict)
    shadow: dict[tuple[str, int], list[Point]] = field(default_factory=dict)
    shadow_copies: dict[str, float] = field(default_factory=dict)


def server_specs(kind: str, setup: Setup) -> dict[str, tuple[list[str], dict[str, str], str, str]]:
    """name -> (command, env, readiness path, predict path) for the servers of ``kind``."""
    yard_env = {**base_env(), "MODELYARD_HOME": str(setup.workdir / "yard")}
    bare_env = {**base_env(), "BENCH_MODEL": str(setup.workdir / f"{kind}.joblib")}
    specs = {
        "modelyard": (
            modelyard_command([f"bench-{kind}"]),
            yard_env,
            "/readyz",
            f"/endpoints/bench-{kind}/predict",
        ),
        "bare": (bare_command(setup.workdir), bare_env, "/healthz", "/predict"),
        "shadow": (
            modelyard_command([f"bench-{kind}-solo", f"bench-{kind}-shadow"]),
            yard_env,
            "/readyz",
            f"/endpoints/bench-{kind}-solo/predict",
        ),
    }
    if setup.mlflow_flags is not None and kind in setup.mlflow_kinds:
        mlflow_env = {**base_env(), "GIT_PYTHON_REFRESH": "quiet"}
        command = mlflow_command(setup.workdir / f"mlflow-{kind}", setup.mlflow_flags)
        specs["mlflow"] = (command, mlflow_env, "/ping", "/invocations")
    return specs


def wire_format(name: str, setup: Setup) -> tuple[dict[str, str], list[bytes]]:
    headers = {"content-type": "application/json"}
    if name in ("modelyard", "shadow"):
        headers["authorization"] = f"Bearer {setup.key}"
    key = "dataframe_records" if name == "mlflow" else "records"
    return headers, request_bodies(setup.frame, lambda rows: {key: rows})


def start_servers(
    kind: str, setup: Setup, stack: contextlib.ExitStack, results: KindResults
) -> None:
    for name, (command, env, ready, predict) in server_specs(kind, setup).items():
        log = setup.workdir / f"{name}-{kind}.log"
        try:
            process, url, ready_s, idle_mb = stack.enter_context(
                running(name, command, env, ready, predict, log)
            )
            headers, bodies = wire_format(name, setup)
            server = Server(name, process, url, headers, bodies, ready_s, idle_mb)
            check_predicts(server)
        except ServerFailed as exc:
            results.errors[name] = str(exc)
            print(f"  {name} did not work, going on without it: {exc}", flush=True)
            continue
        results.servers[name] = server
        print(f"  {name} ready in {ready_s:.2f} s, idle {idle_mb:,.0f} MB", flush=True)


def measure(
    loader: Executor, server: Server, concurrency: int, args: argparse.Namespace, label: str = ""
) -> Point:
    load = Load(
        server.url,
        server.headers,
        server.bodies,
        concurrency,
        args.seconds,
        args.warmup,
        server.process.pid,
    )
    point = loader.submit(run_load, load).result(timeout=args.seconds + args.warmup + 120)
    failures = f", {sum(point.failures.values())} failed {dict(point.failures)}"
    print(
        f"    {label or server.name:<10} c={concurrency:<3} {point.rate:8,.0f} req/s "
        f"p50 {point.percentile_ms(0.5):7.2f} ms p99 {point.percentile_ms(0.99):8.2f} ms"
        f"{failures if point.failures else ''}",
        flush=True,
    )
    return point


def shadow_points(loader: Executor, kind: str, results: KindResults, args: Any) -> None:
    """Alternate solo and shadow endpoints on the same server, round after round (ABBA)."""
    server = results.servers.get("shadow")
    if server is None:
        return
    for round_ in range(args.shadow_rounds):
        for concurrency in args.shadow_concurrency:
            # ABBA: the order flips every round, so a drift of the machine does not
            # always land on the same side
            for variant in ("solo", "shadow") if round_ % 2 == 0 else ("shadow", "solo"):
                url = server.url.replace(f"bench-{kind}-solo", f"bench-{kind}-{variant}")
                target = dataclasses.replace(server, url=url)
                point = measure(loader, target, concurrency, args, label=variant)
                results.shadow.setdefault((variant, concurrency), []).append(point)
    time.sleep(2.0)  # the shadow's last batches (held open up to 1 s) are computed
    results.shadow_copies = shadow_counts(server, f"bench-{kind}-shadow")


def shadow_counts(server: Server, endpoint: str) -> dict[str, float]:
    """From the server's /metrics: primary answers, shadow copies computed and dropped."""
    base = server.url.split("/endpoints/", 1)[0]
    try:
        text = httpx.get(f"{base}/metrics", headers=server.headers, timeout=30).text
    except httpx.HTTPError:
        return {}
    counts = {"answered": 0.0, "computed": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        if f'endpoint="{endpoint}"' not in line:
            continue
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith("modelyard_shadow_dropped_total"):
            counts["dropped"] += value
        elif line.startswith("modelyard_predictions_requests_total"):
            counts["computed" if 'role="shadow"' in line else "answered"] += value
    return counts


def bench_kind(kind: str, setup: Setup, loader: Executor, args: Any) -> KindResults:
    print(f"\n{kind}: {KINDS[kind]}", flush=True)
    results = KindResults()
    with contextlib.ExitStack() as stack:
        start_servers(kind, setup, stack, results)
        for concurrency in args.concurrency:
            for name in SERVERS:
                if name in results.servers:
                    point = measure(loader, results.servers[name], concurrency, args)
                    results.points[name, concurrency] = point
        shadow_points(loader, kind, results, args)
    return results


# -- report --------------------------------------------------------------------


def ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "-"
    return f"{ours / theirs:,.2f}x"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_points(kind: str, results: KindResults, args: Any) -> None:
    print(f"\n== {kind}: {KINDS[kind]}, single-row requests, {args.seconds:g} s per point ==")
    print(
        f"{'server':<10} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'failures':>8} {'CPU ms/req':>10} {'loadgen CPU %':>13}"
    )
    for concurrency in args.concurrency:
        for name in SERVERS:
            point = results.points.get((name, concurrency))
            if point is None:
                continue
            print(
                f"{name:<10} {concurrency:>4} {point.rate:>9,.0f} {point.percentile_ms(0.5):>8.2f} "
                f"{point.percentile_ms(0.99):>8.2f} {sum(point.failures.values()):>8} "
                f"{point.cpu_ms_per_request:>10.3f} "
                f"{100 * point.client_cpu / point.elapsed:>13.0f}"
            )
    print(f"\n{'server':<10} {'ready s':>8} {'idle MB':>8}")
    for name in (*SERVERS, "shadow"):
        if name in results.servers:
            server = results.servers[name]
            print(f"{name:<10} {server.ready_s:>8.2f} {server.idle_mb:>8,.0f}")
    for name, error in results.errors.items():
        print(f"{name:<10} did not work: {error}")


def print_ratios(results: KindResults, args: Any) -> None:
    print("\nratios, modelyard / peer (req/s: above 1 is better; CPU/req: below 1 is better)")
    for peer in ("bare", "mlflow"):
        for concurrency in args.concurrency:
            ours = results.points.get(("modelyard", concurrency))
            theirs = results.points.get((peer, concurrency))
            if ours is None or theirs is None:
                continue
            print(
                f"  vs {peer:<6} c={concurrency:<3} req/s {ratio(ours.rate, theirs.rate):>8}   "
                f"CPU/req {ratio(ours.cpu_ms_per_request, theirs.cpu_ms_per_request):>8}"
            )


def shadow_overhead(results: KindResults, concurrency: int) -> tuple[float, float] | None:
    solo = results.shadow.get(("solo", concurrency))
    shadow = results.shadow.get(("shadow", concurrency))
    if not solo or not shadow:
        return None
    return (
        median([p.percentile_ms(0.5) for p in solo]),
        median([p.percentile_ms(0.5) for p in shadow]),
    )


def paired_change(results: KindResults, concurrency: int) -> float:
    """The median over rounds of each round's shadow p50 against the solo p50 just before
    it: steadier than the ratio of medians when the machine's speed drifts during a run."""
    pairs = zip(
        results.shadow[("solo", concurrency)], results.shadow[("shadow", concurrency)], strict=True
    )
    return median([100 * (s.percentile_ms(0.5) / p.percentile_ms(0.5) - 1) for p, s in pairs])


def print_shadow(kind: str, results: KindResults, args: Any) -> None:
    if not results.shadow:
        return
    print(
        f"\nshadow: bench-{kind}-shadow (v1 + shadow v2) vs bench-{kind}-solo (v1), same server, "
        f"median of {args.shadow_rounds} alternating rounds"
    )
    for concurrency in args.shadow_concurrency:
        found = shadow_overhead(results, concurrency)
        if found is not None:
            solo, shadow = found
            print(
                f"  c={concurrency:<3} p50 solo {solo:.2f} ms, with shadow {shadow:.2f} ms: "
                f"{100 * (shadow / solo - 1):+.1f}% (round by round: median "
                f"{paired_change(results, concurrency):+.1f}%)"
            )
    copies = results.shadow_copies
    if copies:
        print(
            f"  shadow copies: {copies['answered']:,.0f} primary answers, "
            f"{copies['computed']:,.0f} computed by the shadow, {copies['dropped']:,.0f} dropped"
        )


def rejected(results: KindResults) -> int:
    points = [p for (name, _), p in results.points.items() if name == "modelyard"]
    points += [p for found in results.shadow.values() for p in found]
    return sum(sum(p.failures.values()) for p in points)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_targets(all_results: dict[str, KindResults], args: Any) -> None:
    print("\ntargets:")
    top = max(args.concurrency)
    lr = all_results.get("lr")
    for concurrency in args.concurrency if lr else []:
        ours, bare = lr.points.get(("modelyard", concurrency)), lr.points.get(("bare", concurrency))
        if ours is None or bare is None:
            continue
        rate, cpu = ours.rate / bare.rate, ours.cpu_ms_per_request / bare.cpu_ms_per_request
        at = f"lr at c={concurrency}:"
        print(f"  {verdict(rate >= 0.7)}  {at} req/s {rate:.2f}x bare (goal >= 0.7x)")
        print(f"  {verdict(cpu <= 1.5)}  {at} CPU/req {cpu:.2f}x bare (goal <= 1.5x)")
    for kind, results in all_results.items():
        server = results.servers.get("modelyard")
        if server is None:
            continue
        ready, idle = server.ready_s, server.idle_mb
        print(f"  {verdict(ready < 2)}  {kind} ready in {ready:.2f} s (goal < 2 s)")
        print(f"  {verdict(idle < 200)}  {kind} idle {idle:.0f} MB (goal < 200 MB)")
    rf = all_results.get("rf")
    if rf and ("modelyard", top) in rf.points and ("bare", top) in rf.points:
        gain = rf.points["modelyard", top].rate / rf.points["bare", top].rate
        print(f"  {verdict(gain >= 4)}  modelyard RF at c={top}: {gain:.2f}x bare req/s (goal 4x)")
    for kind, results in all_results.items():
        for concurrency in args.shadow_concurrency:
            found = shadow_overhead(results, concurrency)
            if found is not None:
                change = 100 * (found[1] / found[0] - 1)
                print(
                    f"  {verdict(change < 5)}  {kind} shadow p50 overhead at c={concurrency}: "
                    f"{change:+.1f}% (goal < 5%)"
                )
        count = rejected(results)
        print(f"  {verdict(count == 0)}  {kind} modelyard non-200 answers: {count} (goal 0)")
    for kind, results in all_results.items():
        others = {
            name: sum(sum(p.failures.values()) for (n, _), p in results.points.items() if n == name)
            for name in ("bare", "mlflow")
            if any(n == name for n, _ in results.points)
        }
        print(f"  {kind} peers' non-200 answers: {others}")


# -- main ----------------------------------------------------------------------


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point")
    parser.add_argument("--concurrency", type=integers, default=[1, 16, 64])
    parser.add_argument("--models", default="lr,rf", help="comma-separated: lr, rf")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--shadow-concurrency", type=integers, default=[1, 16])
    parser.add_argument("--shadow-rounds", type=int, default=4)
    args = parser.parse_args()
    args.models = [kind.strip() for kind in args.models.split(",") if kind.strip()]
    unknown = set(args.models) - set(KINDS)
    if unknown:
        parser.error(f"unknown model kind(s): {', '.join(sorted(unknown))}")
    return args


def prepare(workdir: Path, args: argparse.Namespace) -> Setup:
    import joblib

    print("fitting models and setting up the servers ...", flush=True)
    frame, labels = dataset()
    versions = {kind: fit_versions(kind, frame, labels) for kind in args.models}
    for kind, models in versions.items():
        joblib.dump(models[0], workdir / f"{kind}.joblib")
    (workdir / "bare_app.py").write_text(BARE_APP)
    key = setup_modelyard(workdir / "yard", versions, frame.head())
    setup = Setup(workdir, key, frame, None)
    if not args.skip_mlflow:
        prepare_mlflow(setup, versions)
    return setup


def prepare_mlflow(setup: Setup, versions: dict[str, list[Any]]) -> None:
    """Save every primary for MLflow; a failure skips MLflow for that kind, with the reason."""
    try:
        setup.mlflow_flags = mlflow_flags()
    except Exception as exc:
        setup.notes.append(f"MLflow serving skipped: {type(exc).__name__}: {exc}")
        print(f"  {setup.notes[-1]}", flush=True)
        return
    for kind, models in versions.items():
        try:
            save_mlflow_model(setup.workdir / f"mlflow-{kind}", models[0], setup.frame.head())
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            setup.notes.append(f"MLflow {kind} skipped: {type(exc).__name__}: {first_line}")
            print(f"  {setup.notes[-1]}", flush=True)
            continue
        setup.mlflow_kinds.append(kind)


def main() -> None:
    args = parse_args()
    all_results: dict[str, KindResults] = {}
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="modelyard-serving-bench-") as temp,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as loader,
    ):
        setup = prepare(Path(temp), args)
        for kind in args.models:
            all_results[kind] = bench_kind(kind, setup, loader, args)
    for kind, results in all_results.items():
        print_points(kind, results, args)
        print_ratios(results, args)
        print_shadow(kind, results, args)
    print_targets(all_results, args)
    for note in setup.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
