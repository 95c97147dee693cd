"""Ray Serve benchmark: the RF endpoint on Ray Serve against the local data plane and
against a plain Ray Serve deployment of the same model written by hand.

Workload, all in one run on this machine:

1. model: RandomForestClassifier(n_estimators=100) fitted on make_classification
   (5000 rows, 20 features f0..f19), registered once; endpoint ``rf`` routes 100% to it,
   with an API key; the prediction log (files) and metrics are on.
2. servers on 127.0.0.1:
   - local: ``modelyard serve rf`` in a subprocess (one process);
   - modelyard on Ray Serve with 1, then 2 replicas (``serving/rayserve.py``: each
     replica is the local data plane: auth, routing, signature checks, batching, log,
     metrics);
   - hand-written on Ray Serve with the same replicas, deployed beside it at ``/hand``:
     a deployment that holds the model and answers
     ``model.predict(pd.DataFrame(records))`` (no key, no log, no checks);
   - with 1 replica, also the hand-written deployment with Ray Serve's micro-batching
     (``@serve.batch``, up to 64 requests) at ``/batched``: modelyard batches requests
     too, so this is the like-for-like baseline.
   The Ray head runs in this process (one CPU per core); every replica reserves half a
   CPU, so the deployments compared run side by side, with the local server (idle
   while the others are measured).
3. load: the closed loop of ``benchmarks/serving.py`` in a separate process: N clients
   send single-row requests back to back for SECONDS after a warm-up (the request count
   is bounded by the window); requests/s, p50 and p99 of the 200s, non-200 answers.
   The servers that run side by side are measured in turn, REPEATS rounds, so slow
   moments of a shared machine fall on all of them; each figure is the median over the
   rounds (the local data plane's over the rounds of both replica counts), the cost the
   median of the rounds' paired costs.

It prints every figure side by side, and the cost of modelyard's routing, logging and
auth on Ray Serve against the hand-written deployment with the same replicas:
1 - modelyard/hand-written throughput (the aim: under 30%).

    .venv/bin/python benchmarks/ray_serving.py                       # about 5 minutes
    .venv/bin/python benchmarks/ray_serving.py --seconds 3 --repeats 1

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serving import (
    Load,
    Point,
    base_env,
    dataset,
    fit_versions,
    free_port,
    request_bodies,
    run_load,
    running,
)

ENDPOINT = "rf"


def measure(url: str, headers: dict[str, str], bodies: list[bytes], args: Any) -> Point:
    check = httpx.post(url, content=bodies[0], headers=headers, timeout=60)
    if check.status_code != 200:
        raise SystemExit(f"{url} answered {check.status_code}: {check.text[:300]}")
    load = Load(url, headers, bodies, args.concurrency, args.seconds, args.warmup, os.getpid())
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_load, (load,))


class HandWritten:
    """The plain Ray Serve deployment: the model, JSON in, JSON out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    async def __call__(self, request: Any) -> dict[str, Any]:
        import pandas as pd

        body = await request.json()
        frame = pd.DataFrame(body["records"])
        return {"predictions": self.model.predict(frame).tolist()}


def batched_class() -> type:
    """The hand-written deployment with Ray Serve's own micro-batching (``serve.batch``)."""
    from ray import serve

    class HandWrittenBatched:
        def __init__(self, model: Any) -> None:
            self.model = model

        @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)  # type: ignore[misc]
        async def predict(self, bodies: list[Any]) -> list[list[Any]]:
            import pandas as pd

            frames = [pd.DataFrame(body["records"]) for body in bodies]
            outputs = self.model.predict(pd.concat(frames, ignore_index=True)).tolist()
            answers, start = [], 0
            for frame in frames:
                answers.append(outputs[start : start + len(frame)])
                start += len(frame)
            return answers

        async def __call__(self, request: Any) -> dict[str, Any]:
            return {"predictions": await self.predict(await request.json())}

    return HandWrittenBatched


def wait_replicas(app: str, count: int, timeout: float = 120) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = serve.status().applications.get(app)
        if status is not None and str(status.status).endswith("RUNNING"):
            running_now = sum(
                d.replica_states.get("RUNNING", 0) for d in status.deployments.values()
            )
            if running_now >= count:
                return
        time.sleep(0.5)
    raise SystemExit(f"{app} did not reach {count} running replicas")


LOCAL = "local data plane"
BATCHED = "hand-written + serve.batch, 1 replica"


def mine(replicas: int) -> str:
    return f"modelyard on Ray Serve, {replicas} replica(s)"


def hand(replicas: int) -> str:
    return f"hand-written Ray Serve, {replicas} replica(s)"


def rounds(
    targets: dict[str, tuple[str, dict[str, str]]], bodies: list[bytes], args: Any
) -> dict[str, list[Point]]:
    """Every target measured once per round, in turn, ``args.repeats`` rounds."""
    points: dict[str, list[Point]] = {name: [] for name in targets}
    for number in range(args.repeats):
        for name, (url, headers) in targets.items():
            points[name].append(measure(url, headers, bodies, args))
            print(f"  round {number + 1}: {name}: {points[name][-1].rate:.0f} req/s", flush=True)
    return points


def measure_on_ray(
    services: Any,
    model: Any,
    local: tuple[str, dict[str, str]],
    bodies: list[bytes],
    args: Any,
    results: dict[str, list[Point]],
) -> None:
    """Start a Ray head here and measure, for 1 then 2 replicas, modelyard on Ray Serve,
    the hand-written deployment(s) beside it and the local data plane, in rounds."""
    import ray
    from ray import serve

    from modelyard.serving.rayserve import APPLICATION, deploy

    auth = local[1]
    plain = {"Content-Type": "application/json"}
    path = f"/endpoints/{ENDPOINT}/predict"
    port = free_port()
    ray.init(
        num_cpus=os.cpu_count() or 2,
        object_store_memory=200 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        base = f"http://127.0.0.1:{port}"
        half = {"num_cpus": 0.5}
        for replicas in (1, 2):
            current = services.endpoints.get(ENDPOINT).spec.batching
            if current.max_replicas != replicas:  # the first point runs on the defaults
                scaling = {"min_replicas": replicas, "max_replicas": replicas}
                services.endpoints.update(ENDPOINT, batching=scaling)
            deploy(services, [ENDPOINT], replica_cpus=0.5)
            handwritten = serve.deployment(
                HandWritten, num_replicas=replicas, max_ongoing_requests=32, ray_actor_options=half
            ).bind(model)
            serve.run(handwritten, name="hand", route_prefix="/hand", blocking=False)
            targets = {
                LOCAL: local,
                mine(replicas): (base + path, auth),
                hand(replicas): (base + "/hand", plain),
            }
            if replicas == 1:
                batched = serve.deployment(
                    batched_class(), num_replicas=1, max_ongoing_requests=32, ray_actor_options=half
                ).bind(model)
                serve.run(batched, name="batched", route_prefix="/batched", blocking=False)
                targets[BATCHED] = (base + "/batched", plain)
            wait_replicas(APPLICATION, replicas)
            wait_replicas("hand", replicas)
            for name, points in rounds(targets, bodies, args).items():
                results.setdefault(name, []).extend(points)
            if replicas == 1:
                serve.delete("batched")
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import modelyard
    from modelyard.bootstrap import bootstrap

    frame, labels = dataset()
    [model, _] = fit_versions("rf", frame, labels)
    bodies = request_bodies(frame, lambda rows: {"records": rows})
    results: dict[str, list[Point]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        for key in [k for k in os.environ if k.startswith("MODELYARD_")]:
            del os.environ[key]
        os.environ["MODELYARD_HOME"] = str(home)
        with modelyard.connect() as yard:
            yard.models.register(model, name="rf", input_example=frame.head())
            yard.endpoints.create(ENDPOINT, routes=["rf/1=100"])
        services = bootstrap()
        services.identity.create_user("bench", "maintainer")
        _, api_key = services.identity.create_key("bench")
        auth = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        path = f"/endpoints/{ENDPOINT}/predict"

        env = {**base_env(), "MODELYARD_HOME": str(home)}
        command = [str(Path(sys.executable).parent / "modelyard"), "serve", ENDPOINT]
        command += ["--port", "{port}"]
        local_log = Path(tmp) / "local.log"
        with running("local", command, env, "/readyz", path, local_log) as (_, url, _r, _m):
            try:
                measure_on_ray(services, model, (url, auth), bodies, args, results)
            finally:
                services.close()
    report(results, args)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict[str, list[Point]], args: Any) -> None:
    print(
        f"\nRF endpoint, {args.concurrency} clients, {args.seconds:g} s per point, "
        f"1-row requests, median of {args.repeats} round(s)"
    )
    print(
        f"{'server':<38} {'req/s':>7} {'(min-max)':>11} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>8}"
    )
    rate: dict[str, float] = {}
    for name, points in results.items():
        rates = [p.rate for p in points]
        rate[name] = median(rates)
        failed = sum(sum(p.failures.values()) for p in points)
        spread = f"({min(rates):.0f}-{max(rates):.0f})"
        print(
            f"{name:<38} {rate[name]:>7.0f} {spread:>11} "
            f"{median([p.percentile_ms(0.5) for p in points]):>7.1f} "
            f"{median([p.percentile_ms(0.99) for p in points]):>7.1f} {failed:>8}"
        )
    print()
    summary: dict[str, float] = {}
    for replicas in (1, 2):
        paired = [
            1 - m.rate / h.rate
            for m, h in zip(results[mine(replicas)], results[hand(replicas)], strict=True)
            if h.rate
        ]
        cost = summary[f"cost_{replicas}"] = median(paired)
        verdict = "under the 30% aim" if cost < 0.30 else "OVER the 30% aim"
        print(
            f"{replicas} replica(s): modelyard {rate[mine(replicas)]:.0f} req/s, hand-written "
            f"{rate[hand(replicas)]:.0f} req/s: routing, logging and auth cost {cost:.0%} of "
            f"the hand-written throughput ({verdict}; negative: modelyard is faster)"
        )
    paired = [
        1 - m.rate / b.rate
        for m, b in zip(results[mine(1)], results[BATCHED], strict=True)
        if b.rate
    ]
    summary["cost_batched_1"] = median(paired)
    print(
        f"1 replica: modelyard {rate[mine(1)]:.0f} req/s vs hand-written with serve.batch "
        f"{rate[BATCHED]:.0f} req/s: cost {summary['cost_batched_1']:.0%}"
    )
    for replicas in (1, 2):
        ratio = summary[f"vs_local_{replicas}"] = rate[mine(replicas)] / rate[LOCAL]
        print(
            f"modelyard on Ray Serve, {replicas} replica(s) vs the local data plane: "
            f"{ratio:.2f}x its throughput"
        )
    print(json.dumps({name: round(value, 1) for name, value in rate.items()} | summary))


if __name__ == "__main__":
    main()
