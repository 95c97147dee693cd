"""ONNX benchmark: a version's ONNX twin (onnxruntime) against its native flavor, as served.

Workload, all in one run on this machine:

1. models fitted on make_classification(n_samples=5000, n_features=20) as a DataFrame
   f0..f19: LogisticRegression(max_iter=1000), RandomForestClassifier(n_estimators=100,
   max_depth=10), and when installed XGBClassifier and LGBMClassifier (100 trees, depth 6).
2. each is written as a package, loaded verified, and converted with
   ``packaging.onnx.convert``; the twin is written as an ``onnx`` package and loaded too.
3. both go through the data plane's own ``serving.models.Model``: ``prepare`` (request
   rows as JSON-decoded dicts -> a float array, the signature enforced) then ``predict``
   (the label and, for a classifier served by its scores, the class scores), exactly what
   a batcher does per batch. HTTP, auth and logging are the same for both and left out.
4. per model and runtime: the median time of one call at 1 row (``--calls`` calls) and at
   a 64-row batch (``--calls`` / 4 calls), after a warm-up; the ratio native / onnx
   (above 1: the twin is faster). Both runtimes run one thread (onnxruntime's session
   is set to one intra-op thread; BLAS is pinned to one below).

Run it::

    .venv/bin/python benchmarks/onnx.py              # about 20 seconds
    .venv/bin/python benchmarks/onnx.py --calls 500

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# run as a script, this file's folder comes first on sys.path, and this file is named like
# the onnx package the converters import: leave the folder out
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from modelyard.packaging import load_package, write_package
from modelyard.packaging.onnx import compare, convert
from modelyard.serving.models import Model


def models() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {
        "logistic": lambda: LogisticRegression(max_iter=1000),
        "forest": lambda: RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0),
    }
    try:
        import xgboost

        found["xgboost"] = lambda: xgboost.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1)
    except ImportError:
        print("xgboost is not installed: skipped")
    try:
        import lightgbm

        found["lightgbm"] = lambda: lightgbm.LGBMClassifier(
            n_estimators=100, max_depth=6, n_jobs=1, verbose=-1
        )
    except ImportError:
        print("lightgbm is not installed: skipped")
    return found


def served(directory: Path) -> Model:
    loaded = load_package(directory)
    return Model("bench", 1, "digest", loaded)


def median_us(model: Model, rows: list[dict[str, Any]], calls: int) -> float:
    for _ in range(max(5, calls // 10)):  # warm-up
        model.predict([model.prepare(rows)])
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        [answer] = model.predict([model.prepare(rows)])
        times.append(time.perf_counter() - start)
        if isinstance(answer, Exception):
            raise answer
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per 1-row point")
    args = parser.parse_args()
    features, labels = make_classification(n_samples=5000, n_features=20, random_state=0)
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(20)])
    records: list[dict[str, Any]] = frame.to_dict(orient="records")  # type: ignore[assignment]
    header = f"{'model':<10} {'rows':>4} {'native µs':>10} {'onnx µs':>9} {'native/onnx':>11}"
    print(header)
    with tempfile.TemporaryDirectory(prefix="modelyard-onnx-bench-") as temp:
        for name, make in models().items():
            estimator = make().fit(frame, labels)
            native_dir, twin_dir = Path(temp) / name, Path(temp) / f"{name}-onnx"
            write_package(estimator, native_dir, input_example=frame.head())
            native = load_package(native_dir)
            twin = convert(native)
            largest = compare(native, twin, frame).largest
            write_package(twin, twin_dir, signature=native.signature, flavor="onnx")
            pair = served(native_dir), served(twin_dir)
            for rows, calls in ((1, args.calls), (64, max(50, args.calls // 4))):
                batch = records[100 : 100 + rows]
                native_us, onnx_us = (median_us(model, batch, calls) for model in pair)
                print(
                    f"{name:<10} {rows:>4} {native_us:>10.1f} {onnx_us:>9.1f} "
                    f"{native_us / onnx_us:>11.2f}"
                )
            print(f"{'':<10} largest difference on 5,000 rows: {largest:.2g}")


if __name__ == "__main__":
    main()
