"""Batch scoring benchmark: ``yard.batch.score`` against ``model.predict`` on the same frame.

For a logistic regression and a random forest on N rows of 10 float features (one
Parquet file), in one run:

- baseline: ``model.predict`` on the whole input already in memory as a pandas frame
  (no reading, no writing, one process);
- the floor: reading the file in batches and writing three output columns, no model
  (what any scoring from the file to a file costs beside the model);
- the script a user writes without modelyard: pandas reads the whole file, the model
  predicts, pandas writes the id, the prediction and the scores (no checks, no record;
  memory grows with the input);
- modelyard: ``yard.batch.score`` from the Parquet file to a Parquet output (reading,
  signature checks, predicting, writing, fingerprints, the job record), with 1 worker
  (in this process; a thread writes while it scores) and with 2 worker processes
  (the model, and the processes, are kept between jobs: the first job, which loads the
  model or starts the processes, is shown apart), and without ``workers`` (the engine
  chooses on the first batch: this process, or a worker per core; it prints its choice).

It prints rows/s (median of 3) beside the baseline and the ratio, the CPU seconds this
process spent (threads included: what the figure cost) and the calling thread's alone
(the critical path: raw's CPU over it is the ratio an idle machine would show), the
scaling from 1 to 2 workers, and the load average before and after (the machine may be
shared: a ratio measured under load says little). Then peak memory (VmHWM of a fresh
process, workers included) for reading the whole frame and predicting against batch
scoring, beside the input's size on disk and in memory, at ``--rows`` and at
``--memory-scale`` times as many rows (batch scoring's peak should stay where it is).

With ``--ray`` it also runs the same jobs with ``--engine ray`` (Ray Data on a Ray head
started in this process on 127.0.0.1, one CPU per core, 2 scoring actors, which read the
files themselves) and prints them beside the local engine with 2 workers and the raw
baseline from the same run (the input split in 8 files, so Ray reads them in parallel;
both engines score the same files): the first Ray job apart, then the median of 3 jobs
of each engine, run in turn, each with the seconds to its first rows written. Every Ray
job starts its actors (each loads the package): Ray Data keeps no actor between jobs.
Not a test: timings never go in tests. Run with one BLAS thread per process, as the
workers have:

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batch.py --ray
    .venv/bin/python benchmarks/batch.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FEATURES = [f"f{i}" for i in range(10)]
REPEATS = 3


def make_input(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns = {name: rng.normal(size=rows) for name in FEATURES}
    table = pa.table({"id": np.arange(rows), **columns})
    pq.write_table(table, path, row_group_size=128 * 1024)


def train(kind: str) -> Any:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(20_000, len(FEATURES))), columns=FEATURES)
    target = (frame["f0"] + frame["f1"] * frame["f2"] > 0).astype(int)
    if kind == "lr":
        return LogisticRegression().fit(frame, target)
    return RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0).fit(frame, target)


def median_seconds(call: Callable[[], Any]) -> float:
    return measure(call)[0]


def measure(call: Callable[[], Any]) -> tuple[float, float, float]:
    """Medians over ``REPEATS`` calls: wall seconds, CPU seconds of this process (all its
    threads, not its children) and of the calling thread alone. The last is the critical
    path when the other threads (writing, fingerprinting) have a core of their own, and it
    barely moves when other work shares the machine; wall seconds do."""
    walls, cpus, mains = [], [], []
    for _ in range(REPEATS):
        cpu, main, started = time.process_time(), time.thread_time(), time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        mains.append(time.thread_time() - main)
    return statistics.median(walls), statistics.median(cpus), statistics.median(mains)


def read_and_write(data: Path, out: Path) -> None:
    """The floor under any scoring of this file: read it in batches and write three output
    columns per row (as a classifier's), with no model, no checks and no record."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("prediction", pa.int64()), ("score_0", pa.float64()), ("score_1", pa.float64())]
    )
    with pq.ParquetWriter(out, schema, use_dictionary=["prediction"]) as writer:
        for batch in ds.dataset(data).to_batches(batch_size=65_536):
            score = batch.column("f0").to_numpy()
            label = (score > 0).astype(np.int64)
            writer.write_batch(pa.record_batch([label, 1 - score, score], schema=schema))


def pandas_script(model: Any, data: Path, out: Path) -> None:
    """What a user writes without modelyard: read the whole file with pandas, predict,
    write the predictions and scores beside an id with pandas (no checks, no record)."""
    import pandas as pd

    frame = pd.read_parquet(data)
    proba = model.predict_proba(frame[FEATURES])
    answer = pd.DataFrame({"id": frame["id"], "prediction": model.classes_[proba.argmax(axis=1)]})
    for column in range(proba.shape[1]):
        answer[f"score_{column}"] = proba[:, column]
    answer.to_parquet(out, index=False)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def peak_mb(*args: str) -> tuple[float, float]:
    """Peak RSS (MB) of this script run as a child with ``args``, and of its largest worker
    (a worker's figure is at least what its parent held when it started it)."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return float(figures["peak_mb"]), float(figures["worker_mb"])


def child(mode: str, home: str, data: str, out: str) -> None:
    """Run one thing in a fresh process and print its peak RSS (and its children's)."""
    import modelyard

    yard = modelyard.connect(home=home)
    if mode == "raw":
        import pyarrow.parquet as pq

        frame = pq.read_table(data).to_pandas()[FEATURES]
        yard.models.load("bench-rf@bench").model.predict(frame)
    else:
        workers = int(mode.removeprefix("batch"))
        yard.batch.score("bench-rf@bench", data, out, workers=workers, overwrite=True)
    yard.close()
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"peak_mb": high_water_mb(), "worker_mb": workers_peak}))


def high_water_mb() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would not do: Linux carries the
    parent's peak over an exec, so a child of this big script would report the script's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare_ray(yard: Any, frame: Any, root: Path, rows: int, raw: dict[str, float]) -> None:
    """Ray Data against the local engine on the same job (8 files), 2 workers each: the
    first Ray job apart (the cluster's first), then the median of ``REPEATS`` jobs of each
    engine, run in turn so that the load on the machine weighs on both alike; beside each,
    when the job wrote its first rows (its fixed cost: Ray starts the actors, which load
    the package, before any batch is scored)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    folder = root / "parts"
    folder.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    step = -(-rows // 8)
    for part in range(8):
        pq.write_table(table.slice(part * step, step), folder / f"part-{part}.parquet")
    ray.init(
        num_cpus=os.cpu_count(),
        object_store_memory=512 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    out = root / "ray-out.parquet"
    print(f"\n8 files, 2 workers each (load average {load()})")
    print(
        f"{'model':6} {'engine':22} {'rows/s':>12} {'first rows s':>13} {'local rows/s':>13} "
        f"{'local first s':>14} {'vs local':>9} {'raw rows/s':>12} {'vs raw':>7}"
    )
    try:
        for kind in ("lr", "rf"):

            def score(engine: str, kind: str = kind) -> tuple[float, float]:
                return _job(yard, f"bench-{kind}@bench", folder, out, engine)

            score("local")  # the workers load this model
            runs: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
            first = score("ray")
            for _ in range(REPEATS):
                for engine, timings in runs.items():
                    timings.append(score(engine))
            local, local_first = _medians(runs["local"])
            for label, (wall, to_rows) in (
                ("ray, first job", first),
                (f"ray, median of {REPEATS}", _medians(runs["ray"])),
            ):
                rate, local_rate = rows / wall, rows / local
                print(
                    f"{kind:6} {label:22} {rate:12,.0f} {to_rows:13.2f} {local_rate:13,.0f} "
                    f"{local_first:14.2f} {rate / local_rate:9.2f} {raw[kind]:12,.0f} "
                    f"{rate / raw[kind]:7.2f}"
                )
    finally:
        ray.shutdown()
    print(f"load average after: {load()}")


def _job(yard: Any, ref: str, folder: Path, out: Path, engine: str) -> tuple[float, float]:
    """Wall seconds of one job on 2 workers, and the seconds to its first rows written."""
    started = time.perf_counter()
    first: list[float] = []

    def progress(_rows: int, _total: int | None) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    yard.batch.score(ref, folder, out, workers=2, engine=engine, overwrite=True, progress=progress)
    return time.perf_counter() - started, first[0]


def _medians(timings: list[tuple[float, float]]) -> tuple[float, float]:
    walls, firsts = zip(*timings, strict=True)
    return statistics.median(walls), statistics.median(firsts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ray", action="store_true", help="Also Ray Data against local.")
    parser.add_argument(
        "--memory-scale",
        type=int,
        default=4,
        help="Peak memory also at this many times the rows (1: only at --rows).",
    )
    args = parser.parse_args()

    import pyarrow.parquet as pq

    import modelyard

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-batch-") as temp:
        root = Path(temp)
        data, out, home = root / "input.parquet", root / "out.parquet", root / "home"
        make_input(data, args.rows)
        frame = pq.read_table(data).to_pandas()[FEATURES]
        yard = modelyard.connect(home=home)
        print(f"{args.rows:,} rows x {len(FEATURES)} float features, {os.cpu_count()} cores")
        print(f"load average before (1, 5, 15 min): {load()}")
        print(
            f"{'model':6} {'scoring':24} {'rows/s':>12} {'baseline rows/s':>16} {'ratio':>6} "
            f"{'cpu s':>6} {'main-thread cpu s':>18} {'baseline cpu s':>15} {'cpu ratio':>10}"
        )
        raw: dict[str, float] = {}
        for kind in ("lr", "rf"):
            model = train(kind)
            version = yard.models.register(model, name=f"bench-{kind}", input_example=frame.head())
            yard.models.set_alias(version.model, "bench", version.version)
            model.predict(frame)  # warm: the first call allocates what later calls reuse
            raw_seconds, raw_cpu, _ = measure(lambda m=model: m.predict(frame))
            raw[kind] = args.rows / raw_seconds
            print(
                f"{kind:6} {'model.predict (raw)':24} {raw[kind]:12,.0f} {raw[kind]:16,.0f} "
                f"{1:6.2f} {raw_cpu:6.2f} {raw_cpu:18.2f} {raw_cpu:15.2f} {1:10.2f}"
            )
            floor = args.rows / median_seconds(lambda: read_and_write(data, out))
            print(
                f"{kind:6} {'read + write, no model':24} {floor:12,.0f} {raw[kind]:16,.0f} "
                f"{floor / raw[kind]:6.2f}"
            )

            def by_hand(model: Any = model) -> None:
                pandas_script(model, data, out)

            script = args.rows / median_seconds(by_hand)
            print(
                f"{kind:6} {'pandas read+predict+write':24} {script:12,.0f} {raw[kind]:16,.0f} "
                f"{script / raw[kind]:6.2f}"
            )
            rates: dict[int, float] = {}
            for workers in (1, 2):

                def score(kind: str = kind, workers: int = workers) -> None:
                    yard.batch.score(
                        f"bench-{kind}@bench", data, out, workers=workers, overwrite=True
                    )

                first = _timed(score)  # 2 workers: starts them; 1: loads the model here
                seconds, cpu, main = measure(score)
                rates[workers] = args.rows / seconds
                label = f"batch, {workers} worker{'s' if workers > 1 else ''}"
                cpu_text = (
                    f"{cpu:6.2f} {main:18.2f} {raw_cpu:15.2f} {raw_cpu / main:10.2f}"
                    if workers == 1
                    else ""  # the scoring CPU is the workers'
                )
                print(
                    f"{kind:6} {label:24} {rates[workers]:12,.0f} {raw[kind]:16,.0f} "
                    f"{rates[workers] / raw[kind]:6.2f} {cpu_text}"
                )
                cold = args.rows / first
                what = "  first job (starts them)" if workers > 1 else "  first job (loads it)"
                print(
                    f"{kind:6} {what:24} {cold:12,.0f} {raw[kind]:16,.0f} {cold / raw[kind]:6.2f}"
                )
            print(
                f"{kind:6} {'scaling, 2 vs 1 worker':24} {rates[2]:12,.0f} {rates[1]:16,.0f} "
                f"{rates[2] / rates[1]:6.2f}"
            )
            print(
                f"{kind:6} {'batch 1 worker vs pandas':24} {rates[1]:12,.0f} {script:16,.0f} "
                f"{rates[1] / script:6.2f}"
            )
            chosen: list[int] = []

            def choose(kind: str = kind, chosen: list[int] = chosen) -> None:
                job = yard.batch.score(f"bench-{kind}@bench", data, out, overwrite=True)
                chosen.append(job.workers)

            rate = args.rows / median_seconds(choose)
            print(
                f"{kind:6} {'batch, workers chosen':24} {rate:12,.0f} {raw[kind]:16,.0f} "
                f"{rate / raw[kind]:6.2f} (it chose {', '.join(map(str, chosen))})"
            )
        print(f"load average after: {load()}")
        if args.ray:
            compare_ray(yard, frame, root, args.rows, raw)
        yard.close()
        report_memory(data, out, home, args.rows, args.memory_scale)


def report_memory(data: Path, out: Path, home: Path, rows: int, scale: int) -> None:
    """Peak RSS of the random forest's job beside reading the whole frame and predicting,
    at ``rows`` and at ``scale`` times as many: batch scoring's peak should not grow with
    the input, the whole frame's does."""
    import pyarrow.parquet as pq

    inputs = [(rows, data)]
    if scale > 1:
        bigger = data.with_name("input-bigger.parquet")
        make_input(bigger, rows * scale)
        inputs.append((rows * scale, bigger))
    for count, path in inputs:
        size, in_memory = path.stat().st_size / 2**20, pq.read_table(path).nbytes / 2**20
        print(
            f"\npeak RSS, random forest, {count:,} rows "
            f"(input: {size:.0f} MB on disk, {in_memory:.0f} MB in RAM)"
        )
        baseline, _ = peak_mb("--child", "raw", str(home), str(path), str(out))
        print(f"  read whole frame + model.predict    {baseline:6.0f} MB   (baseline)")
        for workers in (1, 2):
            peak, worker = peak_mb("--child", f"batch{workers}", str(home), str(path), str(out))
            ratio = peak / baseline
            line = f"  batch score, {workers} worker(s)           {peak:6.0f} MB   ({ratio:.2f}x)"
            if workers > 1:
                line += f"; each worker at most {worker:.0f} MB"
            print(line)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:6])
    else:
        main()
