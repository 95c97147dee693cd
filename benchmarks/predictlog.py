"""Prediction-log benchmark: queries over many small segments, compacted or not.

A serving process closes its journal every minute, and readers seal each closed
journal into a segment, so a busy endpoint gains about 1,440 segments a day per
serving process. Readers also merge small segments (``serving/segments.py``).
This script writes N closed journals of R rows each into two identical logs, then
times the same queries on both, in one run:

- baseline: compaction off (every journal stays its own segment);
- modelyard: compaction on, after the merged segments' sources were removed.

It prints the time of the first read (sealing, plus merging where on) and the
median of 3 runs of each query, with the ratio. Not a test: timings never go in tests.

    .venv/bin/python benchmarks/predictlog.py                 # 2,000 x 50 rows
    .venv/bin/python benchmarks/predictlog.py --segments 5000 --rows 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from modelyard.serving import segments
from modelyard.serving.journal import record_line
from modelyard.serving.predictlog import PredictionLog

START_MS = 1_790_000_000_000


def fill(log: PredictionLog, count: int, rows: int) -> None:
    """``count`` closed journals of ``rows`` predictions, a minute apart."""
    for number in range(count):
        journal = log.journal("bench")
        journal.append(
            b"".join(
                record_line(
                    id=f"{number}-{row}",
                    endpoint="bench",
                    revision=1,
                    model="m",
                    version=1 + row % 2,
                    role="primary" if row % 4 else "shadow",
                    ts=START_MS + number * 60_000 + row,
                    latency_ms=1.0,
                    input=orjson.dumps({f"f{k}": float(row + k) for k in range(20)}),
                    output=b"1" if row % 3 else b"0",
                    scores=b"[0.25,0.75]",
                )
                for row in range(rows)
            )
        )
        journal.close()


def queries(count: int) -> dict[str, Callable[[PredictionLog], Any]]:
    middle = START_MS + 60_000 * (count // 2)
    return {
        "count": lambda log: log.count("bench"),
        "query v1, 5 minutes": lambda log: log.query(
            "bench", version=1, since=middle, until=middle + 300_000, limit=100
        ),
        "accuracy": lambda log: log.accuracy("bench"),
        "compare": lambda log: log.compare("bench"),
    }


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def median_of_3(query: Callable[[PredictionLog], Any], log: PredictionLog) -> float:
    return statistics.median(timed(lambda: query(log)) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--segments", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-predictlog-bench-") as temp:
        logs = {
            "baseline": PredictionLog(Path(temp) / "off"),
            "modelyard": PredictionLog(Path(temp) / "on"),
        }
        print(f"writing {args.segments:,} closed journals of {args.rows} rows, twice ...")
        for log in logs.values():
            fill(log, args.segments, args.rows)
        first: dict[str, float] = {}
        merge_after = segments.COMPACT_AFTER
        segments.COMPACT_AFTER = 10**9  # the baseline: seal only
        first["baseline"] = timed(lambda: logs["baseline"].count("bench"))
        segments.COMPACT_AFTER = merge_after
        first["modelyard"] = timed(lambda: logs["modelyard"].count("bench"))
        segments.drop_replaced(logs["modelyard"].root / "bench", grace=0)
        files = {
            name: len(list((log.root / "bench").glob("segment-*.parquet")))
            for name, log in logs.items()
        }
        print(f"\n{'':<22} {'baseline':>10} {'modelyard':>10} {'ratio':>8}")
        print(f"{'segment files':<22} {files['baseline']:>10,} {files['modelyard']:>10,}")
        print(
            f"{'first read s':<22} {first['baseline']:>10.2f} {first['modelyard']:>10.2f} "
            f"{first['baseline'] / first['modelyard']:>7.2f}x"
        )
        segments.COMPACT_AFTER = 10**9  # the baseline stays as it is while it is queried
        for name, query in queries(args.segments).items():
            medians = {which: median_of_3(query, log) for which, log in logs.items()}
            print(
                f"{name + ' s':<22} {medians['baseline']:>10.3f} {medians['modelyard']:>10.3f} "
                f"{medians['baseline'] / medians['modelyard']:>7.2f}x"
            )
        answers = {which: logs[which].count("bench") for which in logs}
        print(f"\nsame answers: {answers['baseline'] == answers['modelyard']} ({answers})")


if __name__ == "__main__":
    main()
