"""Serving soak: many single-row predictions against ``modelyard serve`` with a canary and
a shadow, then the prediction log is checked against what the clients were told.

1. A fresh home: three versions of a LogisticRegression fitted on scikit-learn's iris
   data (C = 1, 0.5, 0.1), the endpoint ``soak`` routing 90/10 between versions 1 and 2
   with version 3 as its shadow, an API key.
2. ``modelyard serve`` as a process on 127.0.0.1 (the shadow process is its child).
3. Warm-up: one request every half second until the shadow process (started at the
   lowest CPU priority) has loaded its version and computed a copy.
4. Load: ``--predictions`` single-row requests at ``--concurrency`` from
   ``--client-processes`` load processes (uvloop, one keep-alive HTTP/1.1 connection per
   worker, answers parsed by httptools); every status code, latency and acknowledged
   prediction id is kept. A failed request is counted, never sent again.
5. Drain: ``/metrics`` is read until every copy handed to the shadow is computed or
   dropped (``modelyard_predictions_requests{role="shadow"}`` plus
   ``modelyard_shadow_dropped`` reach the 200 answers; bounded by ``--drain-timeout``);
   then the serving process gets SIGTERM, and it and the shadow process must exit by
   themselves.
6. The prediction log, read through the SDK: one primary row per 200 answer (the ids are
   the acknowledged ids, one to one), one shadow row per computed copy, no duplicates.

Exits 1 when a check fails. Run it::

    .venv/bin/python benchmarks/soak_serving.py                       # 100,000 at 64
    .venv/bin/python benchmarks/soak_serving.py --predictions 500 --concurrency 8

``make soak`` runs it with ``tracking`` (``benchmarks/soak_tracking.py``). The sizes may
also come from the environment: ``SOAK_PREDICTIONS``, ``SOAK_CONCURRENCY``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import loadgen  # benchmarks/ is on sys.path when run
import orjson
from loadgen import Outcome, http_request, merge
from processes import free_port, serve, step
from prometheus_client.parser import text_string_to_metric_families

ENDPOINT = "soak"
MODEL = "soak-iris"
SHADOW = f"{MODEL}/3"
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
PERCENTILES = (0.5, 0.95, 0.99)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- load --------------------------------------------------------------------


def run_load(
    port: int, headers: dict[str, str], bodies: list[bytes], args: argparse.Namespace
) -> tuple[Outcome, float]:
    """``--predictions`` requests at ``--concurrency`` from ``--client-processes``
    processes; (outcome, seconds from the first request sent to the last answer)."""
    path = f"/endpoints/{ENDPOINT}/predict"
    requests = [http_request(port, path, headers, body) for body in bodies]
    return loadgen.run(
        port, requests, args.predictions, args.concurrency, args.client_processes, args.rate
    )


def warm_up(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """One request every half second until the shadow process has computed a copy (it
    starts with the lowest CPU priority, so on a busy machine loading takes a while): the
    load then measures the steady state, not the shadow's start."""
    out = Outcome(started=time.time())
    base = url.split("/endpoints/")[0]
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        while time.time() - out.started < timeout and not scrape(base, headers)["shadow"]:
            response = client.post(url, content=body, headers=headers)
            out.statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                out.acknowledge(response.content, response.headers["x-modelyard-version"])
            time.sleep(0.5)
    out.finished = time.time()
    return out


# -- the yard ------------------------------------------------------------------


def prepare(home: Path) -> tuple[str, list[bytes]]:
    """Three versions, the endpoint with its canary and shadow, an admin key; returns the
    key and one request body per iris row."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import modelyard as my
    from modelyard.bootstrap import bootstrap
    from modelyard.config import Settings

    services = bootstrap(Settings.from_env(home))  # a new store, at the newest schema
    try:
        services.identity.create_user("soak", "admin")
        _, key = services.identity.create_key("soak")
    finally:
        services.close()
    frame, target = load_iris(return_X_y=True, as_frame=True)
    with my.connect(home=home) as yard:
        for strength in (1.0, 0.5, 0.1):
            model = LogisticRegression(C=strength, max_iter=1000).fit(frame, target)
            yard.models.register(model, name=MODEL, input_example=frame.head())
        yard.endpoints.create(ENDPOINT, routes=[f"{MODEL}/1=90", f"{MODEL}/2=10"], shadows=[SHADOW])
    bodies = [orjson.dumps({"records": [row]}) for row in frame.to_dict("records")]
    return key, bodies


def scrape(base: str, headers: dict[str, str]) -> dict[str, float]:
    """The serving process's counters for ``soak``: primary and shadow requests, shadow
    copies dropped and waiting (summed over versions)."""
    text = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
    figures: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("endpoint") != ENDPOINT:
                continue
            if sample.name == "modelyard_predictions_requests_total":
                figures[labels["role"]] += sample.value
            elif sample.name == "modelyard_shadow_dropped_total":
                figures["dropped"] += sample.value
            elif sample.name == "modelyard_queue_depth" and labels.get("role") == "shadow":
                figures["waiting"] += sample.value
    return {key: figures[key] for key in ("primary", "shadow", "dropped", "waiting")}


def drain(
    base: str, headers: dict[str, str], copies: int, timeout: float
) -> tuple[dict[str, float], float, bool]:
    """Wait until the shadow has computed or dropped ``copies`` copies; returns the last
    counters, the seconds waited, and whether it drained."""
    started = time.monotonic()
    while True:
        figures = scrape(base, headers)
        done = figures["shadow"] + figures["dropped"] >= copies and not figures["waiting"]
        waited = time.monotonic() - started
        if done or waited >= timeout:
            return figures, waited, done
        time.sleep(0.5)


def stop(process: subprocess.Popen[bytes]) -> bool:
    """SIGTERM to the serving process only; True when it and its children (the shadow
    process) exited by themselves within STOP_TIMEOUT. Anything left is killed."""
    children = child_pids(process.pid)
    deadline = time.monotonic() + STOP_TIMEOUT
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.1)
    left = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return process.returncode != -signal.SIGKILL and not left


def cpu_seconds(pid: int) -> tuple[float, float]:
    """utime + stime of process ``pid``, and of its children (the shadow process)."""
    return _cpu(pid), sum(_cpu(child) for child in child_pids(pid))


def _cpu(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == parent:
                pids.append(int(stat.parent.name))
    return pids


@dataclass
class Log:
    """The endpoint's prediction log: (id, model/version) of each primary and shadow row."""

    primary: list[tuple[str, str]]
    shadow: list[tuple[str, str]]
    shadow_errors: int


def read_log(home: Path) -> Log:
    import modelyard as my

    with my.connect(home=home) as yard:
        primary = yard.endpoints.predictions(ENDPOINT, role="primary", limit=None)
        shadow = yard.endpoints.predictions(ENDPOINT, role="shadow", limit=None)

    def rows(frame: Any) -> list[tuple[str, str]]:
        refs = frame["model"] + "/" + frame["version"].astype(str)
        return list(zip(frame["id"], refs, strict=True))

    return Log(rows(primary), rows(shadow), int(shadow["error"].notna().sum()))


# -- report --------------------------------------------------------------------


def percentile_ms(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


@dataclass
class Check:
    name: str
    figure: str
    passed: bool | None  # None: reported, not checked


def checks(
    answers: Outcome, counters: dict[str, float], drained: bool, stopped: bool, log: Log
) -> list[Check]:
    """What the run must show (warm-up included): every answer a 200, the log's primary rows
    exactly the acknowledged ids with the version that answered, its shadow rows exactly
    the copies computed, by the shadow version."""
    primary_ids = [row_id for row_id, _ in log.primary]
    shadow_ids = [row_id for row_id, _ in log.shadow]
    sent = sum(answers.statuses.values())
    answered = answers.statuses["200"]
    acknowledged, logged = set(answers.ids), set(primary_ids)
    answered_by = dict(zip(answers.ids, answers.refs, strict=True))
    misattributed = sum(1 for row_id, ref in log.primary if answered_by.get(row_id) != ref)
    not_shadow = sum(1 for _, ref in log.shadow if ref != SHADOW)
    computed, dropped = int(counters["shadow"]), int(counters["dropped"])
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(answers.statuses.items()))
    return [
        Check("non-200 answers", f"{sent - answered} of {sent} ({statuses})", sent == answered),
        Check(
            "ids answered twice",
            str(len(answers.ids) - len(acknowledged)),
            len(answers.ids) == len(acknowledged),
        ),
        Check(
            "primary rows = 200 answers",
            f"{len(primary_ids)} rows, {answered} answers",
            len(primary_ids) == answered,
        ),
        Check(
            "primary ids = acknowledged ids",
            f"{len(acknowledged - logged)} missing, {len(logged - acknowledged)} unknown",
            logged == acknowledged,
        ),
        Check(
            "primary rows logged twice",
            str(len(primary_ids) - len(logged)),
            len(primary_ids) == len(logged),
        ),
        Check("primary rows naming another version", str(misattributed), misattributed == 0),
        Check(
            "primary requests in /metrics",
            f"{int(counters['primary'])}",
            counters["primary"] == answered,
        ),
        Check("shadow drained", "yes" if drained else "no (timed out)", drained),
        Check(
            "shadow rows = computed copies",
            f"{len(shadow_ids)} rows, {computed} computed",
            len(shadow_ids) == computed,
        ),
        Check(
            "shadow rows of acknowledged ids, once",
            f"{len(set(shadow_ids) - acknowledged)} unknown, "
            f"{len(shadow_ids) - len(set(shadow_ids))} twice",
            set(shadow_ids) <= acknowledged and len(shadow_ids) == len(set(shadow_ids)),
        ),
        Check(f"shadow rows not by {SHADOW}", str(not_shadow), not_shadow == 0),
        Check("shadow copies dropped", f"{dropped} of {answered}", None),
        Check("shadow rows with an error", str(log.shadow_errors), None),
        Check(
            "server and shadow process exit on SIGTERM",
            "yes" if stopped else "no, killed",
            stopped,
        ),
    ]


def report(
    args: argparse.Namespace,
    warm: Outcome,
    load: Outcome,
    seconds: float,
    drained_in: float,
    used: list[float],
    counters: dict[str, float],
    found: list[Check],
) -> None:
    ordered = sorted(load.latencies)
    split = ", ".join(f"{ref} {count}" for ref, count in sorted(load.versions.items()))
    latency = "  ".join(f"p{round(q * 100)} {percentile_ms(ordered, q):.1f}" for q in PERCENTILES)
    print(
        f"\nserving soak: {args.predictions:,} single-row predictions at concurrency "
        f"{args.concurrency} ({args.client_processes} load process(es)"
        + (f", at most {args.rate:,.0f}/s" if args.rate else "")
        + "), canary 90/10, one shadow"
    )
    print(
        f"  warm-up      {sum(warm.statuses.values())} requests, "
        f"{warm.finished - warm.started:.1f} s until the shadow computed its first copy"
    )
    print(f"  throughput   {args.predictions / seconds:,.0f} req/s over {seconds:.1f} s")
    print(f"  latency ms   {latency}  max {percentile_ms(ordered, 1.0):.1f} (of the 200s)")
    print(f"  answered by  {split}")
    print(f"  load CPU     {load.cpu_seconds / seconds * 100:.0f}% of one core")
    print(f"  drain        {drained_in:.1f} s after the load")
    serving, shadow = used
    computed = counters["shadow"] or math.nan
    print(
        f"  CPU          serving process {serving * 1000 / args.predictions:.2f} ms a request, "
        f"shadow process {shadow * 1000 / computed:.2f} ms a computed copy "
        f"({shadow / seconds * 100:.0f}% of one core over the load)"
    )
    width = max(len(check.name) for check in found)
    print(f"\n  {'check':<{width}}  {'result':<6}  figure")
    for check in found:
        verdict = {True: "ok", False: "FAIL", None: "-"}[check.passed]
        print(f"  {check.name:<{width}}  {verdict:<6}  {check.figure}")


def main() -> None:
    for name in [name for name in os.environ if name.startswith("MODELYARD_")]:
        del os.environ[name]  # this soak's store only, for the SDK and the server alike
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--predictions", type=int, default=int(os.environ.get("SOAK_PREDICTIONS", 100_000))
    )
    parser.add_argument(
        "--concurrency", type=int, default=int(os.environ.get("SOAK_CONCURRENCY", 64))
    )
    parser.add_argument(
        "--client-processes", type=int, default=1, help="load processes sharing the workers"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=float(os.environ.get("SOAK_RATE", 0)),
        help="requests a second at most, all load processes together (default: no limit, "
        "each worker sends its next request when its answer comes)",
    )
    parser.add_argument(
        "--warmup-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the shadow process's first computed copy",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        help="seconds to wait after the load for the shadow to compute or drop every copy",
    )
    parser.add_argument("--keep", action="store_true", help="keep the home and print its path")
    args = parser.parse_args()

    sys.exit(soak(args))


def soak(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="modelyard-soak-serving-"))
    home = workdir / "home"
    try:
        step("a fresh home: three versions, the endpoint with its canary and shadow")
        key, bodies = prepare(home)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        url = f"{base}/endpoints/{ENDPOINT}/predict"
        step("starting modelyard serve")
        process = serve(home, port)
        try:
            step("warm-up: until the shadow process computes a copy")
            warm = warm_up(url, headers, bodies[0], args.warmup_timeout)
            step(f"load: {args.predictions:,} predictions at concurrency {args.concurrency}")
            before = cpu_seconds(process.pid)
            load, seconds = run_load(port, headers, bodies, args)
            answers = merge([warm, load])
            step("waiting for the shadow to compute or drop every copy")
            counters, waited, drained = drain(
                base, headers, answers.statuses["200"], args.drain_timeout
            )
            after = cpu_seconds(process.pid)
            used = [end - begin for end, begin in zip(after, before, strict=True)]
        finally:
            step("stopping the server (SIGTERM)")
            stopped = stop(process)
        step("reading the prediction log")
        found = checks(answers, counters, drained, stopped, read_log(home))
        report(args, warm, load, seconds, waited, used, counters, found)
    finally:
        if args.keep:
            print(f"\nhome kept: {home} (serve.log beside it)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if any(check.passed is False for check in found):
        print("\nserving soak FAILED")
        return 1
    print("\nserving soak passed")
    return 0


if __name__ == "__main__":
    main()
