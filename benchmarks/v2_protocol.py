"""Open Inference Protocol (V2) benchmark: the same rows through three doors of one server.

Workload, all in one run on this machine:

1. model: LogisticRegression(max_iter=1000) fitted on make_classification(n_samples=2000,
   n_features=20) as a DataFrame f0..f19, served by ``modelyard serve`` on 127.0.0.1 as the
   endpoint ``bench-v2`` (one route, an API key, the prediction log on).
2. doors, interleaved request by request so machine noise hits them alike, ROWS rows per
   request, REQUESTS requests each, one client each, sequential:
   - predict (the baseline): ``POST /endpoints/bench-v2/predict`` with ``records``;
   - v2-json: ``POST /v2/models/bench-v2/infer``, one FP64 tensor per column, JSON answers;
   - v2-binary: Triton's HTTP client (``tritonclient.http``), one [ROWS, 20] FP32 tensor and
     both outputs as binary tensor data (what that client sends by default).
3. per door: sent, failed (any answer other than 200, or an answer whose predictions differ
   from the model's own), lost (an answered prediction id the prediction log does not hold
   once the run ends), and the median and p99 latency in ms with its ratio to predict.

Run it::

    .venv/bin/python benchmarks/v2_protocol.py                  # about a minute
    .venv/bin/python benchmarks/v2_protocol.py --requests 100 --rows 1

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from processes import free_port, prepare_home, serve  # benchmarks/ is on sys.path when run

COLUMNS = [f"f{i}" for i in range(20)]
BIN = Path(sys.executable).parent
ENDPOINT = "bench-v2"
DOORS = ("predict", "v2-json", "v2-binary")


def prepare(home: Path) -> tuple[Any, Any, str]:
    """The fitted model, its data and an API key, deployed as ``bench-v2`` in ``home``."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import modelyard as my

    key = prepare_home(home)
    values, target = make_classification(n_samples=2000, n_features=20, random_state=0)
    frame = pd.DataFrame(values, columns=COLUMNS)
    model = LogisticRegression(max_iter=1000).fit(frame, target)
    yard = my.connect(home=home)
    try:
        yard.models.register(model, name=ENDPOINT, input_example=frame.head())
        yard.endpoints.create(ENDPOINT, routes=[f"{ENDPOINT}/1=100"])
    finally:
        yard.close()
    return model, frame, key


Door = Callable[[np.ndarray[Any, Any]], tuple[list[Any], list[str]]]


def doors(port: int, key: str) -> tuple[dict[str, Door], Callable[[], None]]:
    """Each door as a call: rows in, (predictions, prediction ids) out; raises on failure."""
    import tritonclient.http as triton

    auth = {"Authorization": f"Bearer {key}"}
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=60)
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")

    def predict(rows: np.ndarray[Any, Any]) -> tuple[list[Any], list[str]]:
        records = [dict(zip(COLUMNS, row.tolist(), strict=True)) for row in rows]
        answer = http.post(f"/endpoints/{ENDPOINT}/predict", json={"records": records})
        answer.raise_for_status()
        body = answer.json()
        return body["predictions"], body["ids"]

    def v2_json(rows: np.ndarray[Any, Any]) -> tuple[list[Any], list[str]]:
        inputs = [
            {"name": name, "datatype": "FP64", "shape": [len(rows)], "data": rows[:, i].tolist()}
            for i, name in enumerate(COLUMNS)
        ]
        answer = http.post(f"/v2/models/{ENDPOINT}/infer", json={"inputs": inputs})
        answer.raise_for_status()
        body = answer.json()
        return body["outputs"][0]["data"], body["parameters"]["prediction_ids"].split(",")

    def v2_binary(rows: np.ndarray[Any, Any]) -> tuple[list[Any], list[str]]:
        tensor = triton.InferInput("input-0", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows.astype(np.float32))
        result = client.infer(ENDPOINT, [tensor], headers=auth)
        ids = result.get_response()["parameters"]["prediction_ids"].split(",")
        return result.as_numpy("predict").tolist(), ids

    def close() -> None:
        http.close()
        client.close()

    return {"predict": predict, "v2-json": v2_json, "v2-binary": v2_binary}, close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per door")
    parser.add_argument("--rows", type=int, default=8, help="rows per request")
    args = parser.parse_args()

    import modelyard as my

    home = Path(tempfile.mkdtemp(prefix="bench-v2-")) / "home"
    model, frame, key = prepare(home)
    port = free_port()
    process = serve(home, port)
    calls, close = doors(port, key)
    latencies: dict[str, list[float]] = {door: [] for door in DOORS}
    failed = dict.fromkeys(DOORS, 0)
    answered: dict[str, list[str]] = {door: [] for door in DOORS}
    values = frame.to_numpy()
    try:
        for index in range(args.requests):
            start = (index * args.rows) % (len(values) - args.rows)
            rows = values[start : start + args.rows]
            expected = model.predict(frame.iloc[start : start + args.rows]).tolist()
            for door in DOORS:
                began = time.perf_counter()
                try:
                    predictions, ids = calls[door](rows)
                except Exception:
                    failed[door] += 1
                    continue
                latencies[door].append((time.perf_counter() - began) * 1000.0)
                answered[door] += ids
                if predictions != expected:
                    failed[door] += 1
    finally:
        close()
        process.terminate()
        process.wait(timeout=20)
    yard = my.connect(home=home)
    try:
        logged = set(yard.endpoints.predictions(ENDPOINT, limit=None)["id"])
    finally:
        yard.close()

    baseline = statistics.median(latencies["predict"]) if latencies["predict"] else float("nan")
    print(f"{args.requests} requests per door, {args.rows} rows each, interleaved")
    print(
        f"{'door':<10} {'sent':>6} {'failed':>7} {'lost':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50/predict':>12}"
    )
    for door in DOORS:
        times = sorted(latencies[door])
        p50 = statistics.median(times) if times else float("nan")
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else float("nan")
        lost = len(set(answered[door]) - logged)
        print(
            f"{door:<10} {args.requests:>6} {failed[door]:>7} {lost:>6} "
            f"{p50:>8.2f} {p99:>8.2f} {p50 / baseline:>12.2f}"
        )


if __name__ == "__main__":
    main()
