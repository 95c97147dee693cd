"""Explanation benchmark: ``POST /endpoints/E/explain`` against calling shap directly.

Workload, all in one run on this machine:

1. models: RandomForestClassifier(n_estimators=100) and GradientBoostingClassifier
   (n_estimators=100) fitted on make_classification(n_samples=5000, n_features=20) as a
   DataFrame f0..f19, each registered with its training data in an embedded home and
   deployed behind its own endpoint (bench-rf, bench-gb).
2. per-row explain latency, single-row requests back to back, in alternating rounds so
   machine noise hits all three alike:
   - direct: ``shap.TreeExplainer(model).shap_values(row)`` in this process (the
     baseline: shap on the same fitted model, additivity check off as on the endpoint);
   - in-process: modelyard's ``VersionExplainer.explain`` on the version as the serving
     process loads it (what the endpoint computes, without HTTP);
   - endpoint: ``POST /endpoints/bench-KIND/explain`` on ``modelyard serve`` (one
     keep-alive connection, an API key).
   Reported: p50 of each and the endpoint/direct ratio (the aim is within 1.2x).
3. the cost of explanations on predictions: single-row ``predict`` requests back to back
   for SECONDS on bench-rf, alone, then while another process sends explain requests to
   the same serving process back to back (rounds alternate); p50 and p99 of predict.

Run it (``shap`` comes with the ``explain`` extra)::

    .venv/bin/python benchmarks/explain.py                  # about 2 minutes
    .venv/bin/python benchmarks/explain.py --rows 100 --seconds 3

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from processes import free_port, prepare_home, serve  # benchmarks/ is on sys.path when run

BIN = Path(sys.executable).parent
COLUMNS = [f"f{i}" for i in range(20)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def prepare(home: Path) -> tuple[dict[str, Any], Any, str]:
    """Fitted models, the data, and an API key, with both versions deployed in ``home``."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    import modelyard as my

    key = prepare_home(home)
    values, target = make_classification(n_samples=5000, n_features=20, random_state=0)
    frame = pd.DataFrame(values, columns=COLUMNS)
    fitted = {
        "rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(frame, target),
        "gb": GradientBoostingClassifier(n_estimators=100, random_state=0).fit(frame, target),
    }
    yard = my.connect(home=home)
    try:
        for kind, model in fitted.items():
            with yard.start_run("bench-explain") as run:
                run.log_dataset(frame.assign(target=target), name="bench-data", role="training")
                run.log_model(model, name=f"bench-{kind}", input_example=frame.head())
            yard.endpoints.create(f"bench-{kind}", routes=[f"bench-{kind}/1=100"])
    finally:
        yard.close()
    return fitted, frame, key


def timed(call: Callable[[int], Any], count: int, offset: int = 0) -> list[float]:
    out = []
    for index in range(count):
        started = time.perf_counter()
        call(offset + index)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def explain_latency(
    kind: str, model: Any, frame: Any, url: str, key: str, rows: int, rounds: int
) -> dict[str, float]:
    import shap

    from modelyard.packaging import load_package, write_package
    from modelyard.serving.explainers import VersionExplainer
    from modelyard.serving.models import Model

    direct = shap.TreeExplainer(model)
    folder = Path(tempfile.mkdtemp()) / "package"
    write_package(model, folder, input_example=frame.head())
    ours = VersionExplainer(Model(f"bench-{kind}", 1, "-", load_package(folder)))
    values = frame.to_numpy()
    records = frame.to_dict(orient="records")
    client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    path = f"{url}/endpoints/bench-{kind}/explain"

    def endpoint(i: int) -> None:
        answer = client.post(path, json={"records": [records[i % len(records)]]})
        assert answer.status_code == 200, answer.text

    calls: dict[str, Callable[[int], Any]] = {
        "direct": lambda i: direct.shap_values(
            values[i % len(values)][None, :], check_additivity=False
        ),
        "in-process": lambda i: ours.explain([records[i % len(records)]]),
        "endpoint": endpoint,
    }
    for call in calls.values():  # warm up: shap loaded, explainers built, caches hot
        timed(call, 5)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds):
        names = list(calls) if round_ % 2 == 0 else list(reversed(calls))
        for name in names:
            samples[name] += timed(calls[name], rows // rounds, offset=round_ * rows)
    client.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def _explain_load(url: str, key: str, record: dict[str, Any], stop_at: float) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        while time.monotonic() < stop_at:
            client.post(f"{url}/endpoints/bench-rf/explain", json={"records": [record]})


def predict_under_load(
    url: str, key: str, frame: Any, seconds: float, rounds: int
) -> dict[str, dict[str, float]]:
    records = frame.to_dict(orient="records")
    client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    path = f"{url}/endpoints/bench-rf/predict"
    timed(lambda i: client.post(path, json={"records": [records[i]]}), 50)
    samples: dict[str, list[float]] = {"alone": [], "with explain": []}
    context = multiprocessing.get_context("spawn")
    for round_ in range(rounds):
        order = ["alone", "with explain"] if round_ % 2 == 0 else ["with explain", "alone"]
        for name in order:
            loader = None
            stop_at = time.monotonic() + seconds
            if name == "with explain":
                loader = context.Process(
                    target=_explain_load, args=(url, key, records[0], stop_at + 0.5)
                )
                loader.start()
                time.sleep(0.5)  # the explain load is running before predictions are timed
                stop_at = time.monotonic() + seconds
            index = 0
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                answer = client.post(path, json={"records": [records[index % len(records)]]})
                samples[name].append((time.perf_counter() - started) * 1000.0)
                assert answer.status_code == 200, answer.text
                index += 1
            if loader is not None:
                loader.join(timeout=60)
    client.close()
    return {
        name: {"p50": percentile(v, 50), "p99": percentile(v, 99), "requests": len(v)}
        for name, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="explained rows per kind and way")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per predict round")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    home = Path(tempfile.mkdtemp(prefix="bench-explain-")) / "home"
    fitted, frame, key = prepare(home)
    port = free_port()
    process = serve(home, port)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"per-row explain latency, p50 ms over {args.rows} single-row calls each")
        print(f"{'model':<6} {'direct shap':>12} {'in-process':>11} {'endpoint':>9} {'ratio':>6}")
        for kind, model in fitted.items():
            p50 = explain_latency(kind, model, frame, url, key, args.rows, args.rounds)
            ratio = p50["endpoint"] / p50["direct"]
            print(
                f"{kind:<6} {p50['direct']:>12.3f} {p50['in-process']:>11.3f} "
                f"{p50['endpoint']:>9.3f} {ratio:>5.2f}x"
            )
        print(
            f"\npredict latency on bench-rf (ms), {args.rounds} rounds of {args.seconds:g} s each"
        )
        loads = predict_under_load(url, key, frame, args.seconds, args.rounds)
        for name, figures in loads.items():
            print(
                f"{name:<13} p50 {figures['p50']:7.3f}  p99 {figures['p99']:7.3f}  "
                f"({figures['requests']:.0f} requests)"
            )
        alone, loaded = loads["alone"], loads["with explain"]
        print(
            f"explain load costs predict: p50 x{loaded['p50'] / alone['p50']:.2f}, "
            f"p99 x{loaded['p99'] / alone['p99']:.2f}"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
