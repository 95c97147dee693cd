"""Drift benchmark: modelyard's drift detection against Evidently and a NumPy/SciPy floor.

Workload, all in one run on this machine:

1. data, generated from ``--seed`` in every process alike (NumPy's PCG64 streams): 20
   numeric columns (normals of varied location and scale, lognormals, exponentials) and
   5 categorical columns (3 to 6 string categories each), ``--rows`` rows per side, as
   in-memory pandas DataFrames; strings use pandas 3's default ``str`` dtype (Arrow
   backed, which pandas 2.3 also has) unless ``--string-dtype object``. Three frames:
   the reference; a shifted current that differs in exactly ``SHIFTED`` (two numeric
   columns moved by 0.5 std, one categorical column re-weighted); an unshifted current,
   the same distributions as the reference drawn from another seed.
2. contenders, each given the reference and the shifted current as pandas DataFrames:
   - modelyard: ``drift(profile_table(reference), current)``, flagged columns are
     ``report.drifted``; the time covers profiling the reference and the drift pass.
   - floor: the same decision rule written directly with NumPy/SciPy on the raw
     columns: numeric ``wasserstein_distance(ref, cur) / std(ref) >= 0.1`` (KS p < 0.05
     below 1000 rows), categorical Jensen-Shannon distance (base 2) of the category
     shares ``>= 0.1`` (chi-square p < 0.05 below 1000 rows). That is modelyard's default.
   - evidently: ``Report([DataDriftPreset()]).run(current, reference)`` with Evidently
     0.7 in its own virtualenv (``.venv-evidently``, made on first use: Evidently needs
     pandas < 3), told which columns are numeric and categorical; the time covers
     wrapping both frames in ``Dataset.from_pandas`` and the run. Its defaults at these
     sizes are the same tests, except that its Jensen-Shannon uses the natural log.
3. per contender and size, one fresh process: generate the data, then reset the
   kernel's peak-RSS mark (``/proc/self/clear_refs``), take ``ru_maxrss`` as the
   baseline, run the shifted current ``--repeat`` times (fewer once ``--budget`` seconds
   are spent), and report ``ru_maxrss`` minus the baseline as the peak: resident
   memory, so Arrow's and NumPy's buffers count alike. Data size is the reference plus
   the shifted current, ``DataFrame.memory_usage(deep=True)``. Then one run on the
   unshifted current, which should flag nothing (skipped where one run takes longer
   than ``--budget``: Evidently at 1M rows).

Run it::

    .venv/bin/python benchmarks/monitoring.py                      # 100k and 1M rows
    .venv/bin/python benchmarks/monitoring.py --rows 100000 --skip-evidently

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_VENV = ROOT / ".venv-evidently"
# Evidently 0.7 needs pandas < 3; numpy is pinned to the project's so both sides draw
# the same data with the same code.
EVIDENTLY_PINS = ("evidently==0.7.23", "pandas==2.3.3", "numpy==2.4.6")
EVIDENTLY_MARKER = EVIDENTLY_VENV / ".installed-bench"
INSTALL_TIMEOUT = 900
CHILD_TIMEOUT = 3600
RESULT_PREFIX = "RESULT "
PROGRESS_PREFIX = "PROGRESS "

CONTENDERS = ("floor", "modelyard", "evidently")
NUMERIC = [f"num_{index:02d}" for index in range(20)]
CATEGORICAL = [f"cat_{index}" for index in range(5)]
SHIFTED = ("num_03", "num_14", "cat_2")
MEAN_SHIFT_STD = 0.5
THRESHOLD = 0.1
P_VALUE = 0.05
SMALL_SAMPLE = 1000

# (distribution, first parameter, second parameter) per numeric column
NUMERIC_SPECS = [
    ("normal", 0.0, 1.0),
    ("normal", 10.0, 2.0),
    ("normal", -5.0, 0.1),
    ("normal", 100.0, 15.0),
    ("lognormal", 0.0, 0.5),
    ("normal", 0.5, 3.0),
    ("exponential", 2.0, 0.0),
    ("normal", 1000.0, 250.0),
    ("lognormal", 3.0, 1.0),
    ("normal", -40.0, 8.0),
    ("normal", 0.0, 0.01),
    ("lognormal", 1.0, 0.25),
    ("normal", 7.0, 1.5),
    ("exponential", 0.3, 0.0),
    ("lognormal", 2.0, 0.8),
    ("normal", 50.0, 5.0),
    ("normal", -1.0, 0.5),
    ("normal", 3.0, 4.0),
    ("lognormal", 0.5, 1.2),
    ("normal", 20.0, 0.7),
]
CATEGORY_SPECS = [
    (["red", "green", "blue"], [0.5, 0.3, 0.2]),
    (["basic", "plus", "pro", "enterprise"], [0.4, 0.3, 0.2, 0.1]),
    (["web", "ios", "android", "desktop"], [0.4, 0.3, 0.2, 0.1]),
    (["US", "DE", "FR", "GB", "JP"], [0.3, 0.25, 0.2, 0.15, 0.1]),
    (["a", "b", "c", "d", "e", "f"], [0.25, 0.2, 0.2, 0.15, 0.1, 0.1]),
]
SHIFTED_WEIGHTS = {"cat_2": [0.2, 0.3, 0.3, 0.2]}  # JS distance 0.21 (base 2), 0.17 (ln)


# -- data (runs in every child, modelyard's venv and Evidently's alike) ---------------


@dataclass
class Data:
    reference: Any
    current: Any
    unshifted: Any

    @property
    def bytes(self) -> int:
        return sum(int(f.memory_usage(index=False, deep=True).sum()) for f in self.frames)

    @property
    def frames(self) -> tuple[Any, Any]:
        return self.reference, self.current


def draw_numeric(rng: Any, spec: tuple[str, float, float], rows: int) -> Any:
    kind, first, second = spec
    if kind == "normal":
        return rng.normal(first, second, rows)
    if kind == "lognormal":
        return rng.lognormal(first, second, rows)
    return rng.exponential(first, rows)


def draw_codes(rng: Any, weights: list[float], rows: int) -> Any:
    return rng.choice(len(weights), size=rows, p=weights)


def string_column(categories: list[str], codes: Any, string_dtype: str) -> Any:
    import numpy as np
    import pandas as pd

    values = np.asarray(categories, dtype=object)[codes]
    if string_dtype == "object":
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def draw_side(seed: int, side: int, rows: int) -> dict[str, Any]:
    """Every column of one side as NumPy arrays (categorical ones as codes)."""
    import numpy as np

    rng = np.random.default_rng([seed, side])
    columns = {n: draw_numeric(rng, s, rows) for n, s in zip(NUMERIC, NUMERIC_SPECS, strict=True)}
    for name, (_, weights) in zip(CATEGORICAL, CATEGORY_SPECS, strict=True):
        columns[name] = draw_codes(rng, weights, rows)
    return columns


def shift(columns: dict[str, Any], seed: int, rows: int) -> dict[str, Any]:
    """A copy of ``columns`` in which exactly ``SHIFTED`` have moved."""
    import numpy as np

    rng = np.random.default_rng([seed, 2])
    shifted = dict(columns)
    for name in SHIFTED:
        if name in SHIFTED_WEIGHTS:
            shifted[name] = draw_codes(rng, SHIFTED_WEIGHTS[name], rows)
        else:
            shifted[name] = columns[name] + MEAN_SHIFT_STD * columns[name].std()
    return shifted


def frame(columns: dict[str, Any], string_dtype: str) -> Any:
    import pandas as pd

    data = {name: columns[name] for name in NUMERIC}
    for name, (categories, _) in zip(CATEGORICAL, CATEGORY_SPECS, strict=True):
        data[name] = string_column(categories, columns[name], string_dtype)
    return pd.DataFrame(data)


def generate(seed: int, rows: int, string_dtype: str) -> Data:
    current = draw_side(seed, 1, rows)
    return Data(
        reference=frame(draw_side(seed, 0, rows), string_dtype),
        current=frame(shift(current, seed, rows), string_dtype),
        unshifted=frame(current, string_dtype),
    )


# -- contenders ------------------------------------------------------------------------


def run_modelyard(reference: Any, current: Any) -> list[str]:
    from modelyard.monitoring.drift import drift
    from modelyard.monitoring.profile import profile_table

    report = drift(profile_table(reference), current)
    return [c.column for c in report.drifted]


def numeric_drifted(reference: Any, current: Any) -> bool:
    import numpy as np
    from scipy import stats

    if len(current) < SMALL_SAMPLE:
        return bool(stats.ks_2samp(reference, current).pvalue < P_VALUE)
    scale = float(np.std(reference))
    distance = float(stats.wasserstein_distance(reference, current))
    return (distance / scale if scale > 0 else float(distance > 0)) >= THRESHOLD


def categorical_drifted(reference: Any, current: Any) -> bool:
    import pandas as pd
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    counts = pd.concat(
        [reference.value_counts(), current.value_counts()], axis=1, keys=["r", "c"]
    ).fillna(0)
    if len(current) < SMALL_SAMPLE:
        table = counts.to_numpy().T
        return bool(stats.chi2_contingency(table).pvalue < P_VALUE) if table.shape[1] > 1 else False
    expected, actual = counts["r"].to_numpy(), counts["c"].to_numpy()
    distance = float(jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2))
    return distance >= THRESHOLD


def run_floor(reference: Any, current: Any) -> list[str]:
    flagged = [
        name
        for name in NUMERIC
        if numeric_drifted(reference[name].to_numpy(), current[name].to_numpy())
    ]
    return flagged + [n for n in CATEGORICAL if categorical_drifted(reference[n], current[n])]


def run_evidently(reference: Any, current: Any) -> list[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    flagged = []
    for test in snapshot.dict()["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith("ValueDrift") and test.get("status") == "FAIL":
            flagged.append(params["column"])
    return flagged


Runner = Callable[[Any, Any], list[str]]
RUNNERS: dict[str, Runner] = {
    "floor": run_floor,
    "modelyard": run_modelyard,
    "evidently": run_evidently,
}


def versions(contender: str) -> dict[str, str]:
    from importlib.metadata import version

    names = ["numpy", "pandas", "pyarrow", "scipy"]
    names += ["evidently"] if contender == "evidently" else []
    found = {"python": sys.version.split()[0]}
    for name in names:
        with contextlib.suppress(Exception):
            found[name] = version(name)
    return found


# -- one contender at one size (the child process) ---------------------------------------


def reset_peak_rss() -> bool:
    """Make the kernel's peak-RSS mark (``ru_maxrss``) the current RSS; False if it can't."""
    import ctypes

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed generator temporaries back
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def progress(message: str) -> None:
    print(PROGRESS_PREFIX + message, flush=True)


def timed_runs(
    runner: Runner, data: Data, args: argparse.Namespace
) -> tuple[list[float], list[str]]:
    """Run the shifted current ``--repeat`` times, or fewer once ``--budget`` s are spent."""
    times: list[float] = []
    flagged: list[str] = []
    deadline = time.perf_counter() + args.budget
    while len(times) < args.repeat and (not times or time.perf_counter() < deadline):
        started = time.perf_counter()
        flagged = runner(data.reference, data.current)
        times.append(time.perf_counter() - started)
        progress(f"run {len(times)}: {times[-1]:.2f} s")
    return times, flagged


def child(args: argparse.Namespace) -> dict[str, Any]:
    runner = RUNNERS[args.child]
    started = time.perf_counter()
    data = generate(args.seed, args.rows[0], args.string_dtype)
    result: dict[str, Any] = {"data_bytes": data.bytes, "versions": versions(args.child)}
    progress(f"data: {megabytes(data.bytes)} MB in {time.perf_counter() - started:.1f} s")
    runner(data.reference.head(2000), data.current.head(2000))  # imports and first-call setup
    result["peak_reset"] = reset_peak_rss()
    baseline = max_rss_bytes()
    result["times"], result["flagged"] = timed_runs(runner, data, args)
    result["peak_bytes"] = max_rss_bytes() - baseline
    result["unshifted_flagged"] = None
    if min(result["times"]) <= args.budget:
        result["unshifted_flagged"] = runner(data.reference, data.unshifted)
        progress(f"unshifted current: {len(result['unshifted_flagged'])} flagged")
    return result


# -- Evidently's virtualenv ----------------------------------------------------------------


class Unavailable(Exception):
    pass


def evidently_python() -> Path:
    """The interpreter of ``.venv-evidently``, made and filled on first use."""
    python = EVIDENTLY_VENV / "bin" / "python"
    wanted = "\n".join(EVIDENTLY_PINS)
    with contextlib.suppress(OSError):
        if python.exists() and EVIDENTLY_MARKER.read_text() == wanted:
            return python
    print(f"creating {EVIDENTLY_VENV.name} with {', '.join(EVIDENTLY_PINS)} ...", flush=True)
    pins = list(EVIDENTLY_PINS)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(EVIDENTLY_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unavailable(f"{' '.join(step[:4])} ...: {error}") from None
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(step[:4])} ... failed: {last_lines(done.stderr)}")
    EVIDENTLY_MARKER.write_text(wanted)
    return python


def last_lines(text: str, count: int = 2, width: int = 200) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    shortened = [line if len(line) <= width else line[:width] + " ..." for line in kept]
    return " | ".join(shortened[-count:]) or "(no output)"


# -- the parent --------------------------------------------------------------------------


@dataclass
class Outcome:
    contender: str
    rows: int
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def time(self) -> float | None:
        times = self.result.get("times")
        return statistics.median(times) if times else None

    @property
    def peak_ratio(self) -> float | None:
        if self.error or not self.result.get("data_bytes"):
            return None
        return float(self.result["peak_bytes"]) / float(self.result["data_bytes"])


def child_command(python: Path, contender: str, rows: int, args: argparse.Namespace) -> list[str]:
    flags = {
        "--child": contender,
        "--rows": str(rows),
        "--repeat": str(args.repeat),
        "--budget": str(args.budget),
        "--seed": str(args.seed),
        "--string-dtype": args.string_dtype,
    }
    return [str(python), str(Path(__file__).resolve()), *(p for f in flags.items() for p in f)]


def run_child(python: Path, contender: str, rows: int, args: argparse.Namespace) -> Outcome:
    """Run one child, echo its progress lines, read its result line; killed after
    ``CHILD_TIMEOUT`` s."""
    outcome = Outcome(contender, rows)
    env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONWARNINGS": "ignore"}
    command = child_command(python, contender, rows, args)
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=ROOT
        )
        timer = threading.Timer(CHILD_TIMEOUT, process.kill)
        timer.start()
        try:
            for line in process.stdout or ():
                if line.startswith(PROGRESS_PREFIX):
                    print(f"    {line[len(PROGRESS_PREFIX) :].rstrip()}", flush=True)
                elif line.startswith(RESULT_PREFIX):
                    outcome.result = json.loads(line[len(RESULT_PREFIX) :])
        finally:
            timer.cancel()
            code = process.wait()
        if code != 0 or not outcome.result:
            errors.seek(0)
            outcome.error = f"exited with {code}: {last_lines(errors.read())}"
            if code == -signal.SIGKILL:
                outcome.error = f"killed after {CHILD_TIMEOUT} s"
    return outcome


def measure(contender: str, rows: int, args: argparse.Namespace, notes: list[str]) -> Outcome:
    python = Path(sys.executable)
    if contender == "evidently":
        try:
            python = evidently_python()
        except Unavailable as error:
            notes.append(f"Evidently could not be installed, so it was not measured: {error}")
            print(f"  {notes[-1]}", flush=True)
            args.skip_evidently = True
            return Outcome(contender, rows, error="not installed")
    print(f"  {contender}, {rows:,} rows per side", flush=True)
    started = time.perf_counter()
    outcome = run_child(python, contender, rows, args)
    took = time.perf_counter() - started
    print(
        f"    {'failed: ' + outcome.error if outcome.error else 'done'} ({took:.0f} s)", flush=True
    )
    return outcome


def megabytes(count: float) -> str:
    size = count / 2**20
    return f"{size:,.0f}" if abs(size) >= 10 else f"{size:.1f}"


def ratio(top: float | None, bottom: float | None) -> str:
    return f"{top / bottom:,.2f}x" if top is not None and bottom else "-"


def flagged_text(flagged: list[str] | None) -> str:
    if flagged is None:
        return "not run (one run > --budget)"
    return ", ".join(flagged) if flagged else "none"


def exact(flagged: list[str]) -> str:
    return "yes" if sorted(flagged) == sorted(SHIFTED) else "NO"


def print_size(rows: int, outcomes: dict[str, Outcome], args: argparse.Namespace) -> None:
    sizes = {o.result["data_bytes"] for o in outcomes.values() if not o.error}
    data = " / ".join(f"{megabytes(s)} MB" for s in sorted(sizes)) or "?"
    print(
        f"\n== {rows:,} rows per side, {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical "
        f"columns ({args.string_dtype} strings), data {data} (reference + current) =="
    )
    print(
        f"{'contender':<10} {'runs':>4} {'median s':>9} {'peak MB':>8} {'peak/data':>9}  "
        f"{'exact 3':>7}  {'flagged (shifted current)':<28} {'flagged (unshifted)'}"
    )
    for name, outcome in outcomes.items():
        if outcome.error:
            print(f"{name:<10} did not run: {outcome.error}")
            continue
        result = outcome.result
        peak = ratio(result["peak_bytes"], result["data_bytes"])
        print(
            f"{name:<10} {len(result['times']):>4} {outcome.time:>9.3f} "
            f"{megabytes(result['peak_bytes']):>8} {peak:>9}  "
            f"{exact(result['flagged']):>7}  {flagged_text(result['flagged']):<28} "
            f"{flagged_text(result['unshifted_flagged'])}"
        )
    floor, ours, theirs = (outcomes.get(n, Outcome(n, rows)) for n in CONTENDERS)
    memory = f"{ours.peak_ratio:.2f}x" if ours.peak_ratio is not None else "-"
    print(
        f"ratios: evidently / modelyard time {ratio(theirs.time, ours.time)} (aim >= 20x at 1M); "
        f"modelyard / floor time {ratio(ours.time, floor.time)} (aim <= 2x); "
        f"modelyard peak / data {memory} (aim <= 1.25x)"
    )


def print_versions(all_outcomes: dict[int, dict[str, Outcome]]) -> None:
    seen: dict[str, dict[str, str]] = {}
    for outcomes in all_outcomes.values():
        for name, outcome in outcomes.items():
            if not outcome.error:
                seen.setdefault(name, outcome.result["versions"])
    for name, found in seen.items():
        print(f"{name} ran with " + ", ".join(f"{k} {v}" for k, v in found.items()))


def parent(args: argparse.Namespace) -> None:
    notes: list[str] = []
    contenders = [c for c in CONTENDERS if not (c == "evidently" and args.skip_evidently)]
    all_outcomes: dict[int, dict[str, Outcome]] = {}
    print(
        f"drift benchmark: {', '.join(contenders)}; rows {args.rows}; repeat {args.repeat} "
        f"(budget {args.budget:g} s per contender and size); seed {args.seed}",
        flush=True,
    )
    for rows in args.rows:
        print(f"\n{rows:,} rows per side", flush=True)
        outcomes = all_outcomes[rows] = {}
        for contender in contenders:
            if contender == "evidently" and args.skip_evidently:
                continue
            outcomes[contender] = measure(contender, rows, args, notes)
    for rows, outcomes in all_outcomes.items():
        print_size(rows, outcomes, args)
    print(
        f"\nshifted: {', '.join(SHIFTED)}; memory: peak RSS (ru_maxrss, mark reset after data "
        "generation) minus RSS before the runs, one fresh process per contender and size"
    )
    print_versions(all_outcomes)
    if any(not o.result.get("peak_reset", True) for r in all_outcomes.values() for o in r.values()):
        notes.append("the peak-RSS mark could not be reset: peaks are lower bounds")
    for note in notes:
        print(f"note: {note}")


# -- main --------------------------------------------------------------------------------


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=integers, default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median is shown)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="no further runs once this many s are spent"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--string-dtype", choices=("str", "object"), default="str")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        print(RESULT_PREFIX + json.dumps(child(args)), flush=True)
        return
    parent(args)


if __name__ == "__main__":
    main()
