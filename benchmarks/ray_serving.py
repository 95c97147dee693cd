"""Ray Serve benchmark: the RF endpoint on Ray Serve against the local data plane and
against a plain Ray Serve deployment of the same model written by hand.

Workload, all in one run on this machine:

1. model: RandomForestClassifier(n_estimators=100) fitted on make_classification
   (5000 rows, 20 features f0..f19), registered once; endpoint ``rf`` routes 100% to it,
   with an API key; the prediction log (files) and metrics are on.
2. servers, one after the other on 127.0.0.1 (each measured alone):
   - local: ``modelyard serve rf`` in a subprocess (one process);
   - modelyard on Ray Serve, 1 and 2 replicas (``serving/rayserve.py``: each replica is
     the local data plane: auth, routing, signature checks, batching, log, metrics);
   - hand-written on Ray Serve, 1 and 2 replicas: a deployment that holds the model and
     answers ``model.predict(pd.DataFrame(records))`` (no key, no log, no checks);
   - the same with Ray Serve's micro-batching (``@serve.batch``, up to 64 requests), 1
     replica: modelyard batches requests too, so this is the like-for-like baseline.
   The Ray head runs in this process (one CPU per core); replicas reserve one CPU each.
3. load: the closed loop of ``benchmarks/serving.py`` in a separate process: N clients
   send single-row requests back to back for SECONDS after a warm-up (the request count
   is bounded by the window); requests/s, p50 and p99 of the 200s, non-200 answers.

It prints every figure side by side, and the overhead of modelyard on Ray Serve against
the hand-written deployment with the same replicas: 1 - modelyard/hand-written
throughput (the aim: under 30%).

    .venv/bin/python benchmarks/ray_serving.py                       # about 2 minutes
    .venv/bin/python benchmarks/ray_serving.py --seconds 3 --concurrency 8

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    import ray
    from ray import serve

    import modelyard
    from modelyard.bootstrap import bootstrap
    from modelyard.serving.rayserve import APPLICATION, deploy

    frame, labels = dataset()
    [model, _] = fit_versions("rf", frame, labels)
    bodies = request_bodies(frame, lambda rows: {"records": rows})
    results: dict[str, Point] = {}
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
        with running("local", command, env, "/readyz", path, Path(tmp) / "local.log") as (
            _,
            url,
            _ready,
            _rss,
        ):
            results["local data plane"] = measure(url, auth, bodies, args)

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
            for replicas in (1, 2):
                current = services.endpoints.get(ENDPOINT).spec.batching
                if current.max_replicas != replicas:  # the first point runs on the defaults
                    scaling = {"min_replicas": replicas, "max_replicas": replicas}
                    services.endpoints.update(ENDPOINT, batching=scaling)
                deploy(services, [ENDPOINT], replica_cpus=1.0)
                wait_replicas(APPLICATION, replicas)
                name = f"modelyard on Ray Serve, {replicas} replica(s)"
                results[name] = measure(base + path, auth, bodies, args)
            serve.delete(APPLICATION)
            for replicas in (1, 2):
                hand = serve.deployment(
                    HandWritten, num_replicas=replicas, max_ongoing_requests=32
                ).bind(model)
                serve.run(hand, name="hand", route_prefix="/hand", blocking=False)
                wait_replicas("hand", replicas)
                name = f"hand-written Ray Serve, {replicas} replica(s)"
                plain = {"Content-Type": "application/json"}
                results[name] = measure(base + "/hand", plain, bodies, args)
            batched = serve.deployment(
                batched_class(), num_replicas=1, max_ongoing_requests=32
            ).bind(model)
            serve.run(batched, name="hand", route_prefix="/hand", blocking=False)
            wait_replicas("hand", 1)
            name = "hand-written + serve.batch, 1 replica"
            results[name] = measure(base + "/hand", plain, bodies, args)
        finally:
            serve.shutdown()
            ray.shutdown()
            services.close()

    print(
        f"\nRF endpoint, {args.concurrency} clients, {args.seconds:g} s per point, 1-row requests"
    )
    print(f"{'server':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    for name, point in results.items():
        failed = sum(point.failures.values())
        print(
            f"{name:<36} {point.rate:>8.0f} {point.percentile_ms(0.5):>8.1f} "
            f"{point.percentile_ms(0.99):>8.1f} {failed:>8}"
        )
    print()
    summary: dict[str, float] = {}
    for replicas in (1, 2):
        mine = results[f"modelyard on Ray Serve, {replicas} replica(s)"].rate
        plain_rate = results[f"hand-written Ray Serve, {replicas} replica(s)"].rate
        overhead = 1 - mine / plain_rate if plain_rate else float("nan")
        summary[f"overhead_{replicas}"] = overhead
        verdict = "under" if overhead < 0.30 else "OVER"
        print(
            f"{replicas} replica(s): modelyard {mine:.0f} req/s vs hand-written "
            f"{plain_rate:.0f} req/s: overhead {overhead:.0%} ({verdict} the 30% aim)"
        )
    batched_rate = results["hand-written + serve.batch, 1 replica"].rate
    mine = results["modelyard on Ray Serve, 1 replica(s)"].rate
    summary["overhead_batched_1"] = 1 - mine / batched_rate if batched_rate else float("nan")
    print(
        f"1 replica: modelyard {mine:.0f} req/s vs hand-written with serve.batch "
        f"{batched_rate:.0f} req/s: overhead {summary['overhead_batched_1']:.0%}"
    )
    local = results["local data plane"].rate
    one = results["modelyard on Ray Serve, 1 replica(s)"].rate
    print(f"Ray Serve 1 replica vs local data plane: {one / local:.2f}x the throughput")
    print(json.dumps({name: round(p.rate, 1) for name, p in results.items()} | summary))


if __name__ == "__main__":
    main()
