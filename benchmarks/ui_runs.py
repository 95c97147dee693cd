"""Web UI benchmark: the first page of an experiment's runs table at 5,000 runs.

Workload, all in one run on this machine:

1. a temporary SQLite store filled with RUNS finished runs in one experiment
   (written through the store in bulk), each with 6 params (``model``, ``C``,
   ``depth``, ``seed``, ``i``, ``optimizer``) and 4 metrics (``auc``, ``loss``,
   ``accuracy``, ``f1``) logged over 5 steps;
2. a real ``modelyard server`` on 127.0.0.1 over that store, signed in through the
   sign-in form (the session cookie a browser gets);
3. for each page below, the median of REPEATS GETs of the page's HTML with the
   cookie, beside the median of the API's own run search for the same page
   (``GET /api/v1/runs/search`` with a bearer key): the baseline the page is built
   on. The page also reads the experiment's summary (its columns) and ``whoami``,
   and renders the table;
4. with ``--browser`` (Playwright and /usr/bin/chromium installed), the median time
   from navigation to the ``load`` event in headless chromium: the page rendered.

Pages: the default first page (50 runs, newest first), the same sorted by a metric
with a filter (``metrics.auc > 0.5 and params.model = "rf"``, ``metrics.auc desc``),
and a 200-run page. The target: the first page rendered under 1 s.

    .venv/bin/python benchmarks/ui_runs.py                  # 5,000 runs
    .venv/bin/python benchmarks/ui_runs.py --runs 500 --repeats 10 --browser

Not a test: timings never go in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from processes import free_port  # benchmarks/ is on sys.path when run

from modelyard.bootstrap import bootstrap
from modelyard.config import Settings
from modelyard.store import schema as t

EXPERIMENT = "bench-ui"
FILTER = 'metrics.auc > 0.5 and params.model = "rf"'
ORDER = "metrics.auc desc"
TARGET_SECONDS = 1.0
STEPS = 5
# (label, the page's query, the API search's query)
PAGES = (
    ("first page, 50 runs", {}, {"max_results": 50}),
    (
        "filtered, sorted by a metric",
        {"filter": FILTER, "order": ORDER},
        {"max_results": 50, "filter": FILTER, "order_by": ORDER},
    ),
    ("first page, 200 runs", {"size": 200}, {"max_results": 200}),
)


def fill(home: Path, count: int) -> float:
    """``count`` runs with params and metric histories, written through the store in
    bulk (the SDK takes ~30 ms a run here: minutes for 5,000); answers the seconds."""
    start = time.perf_counter()
    services = bootstrap(
        Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    )
    experiment = services.tracking.create_experiment(EXPERIMENT)
    rng = random.Random(0)
    runs, params, metrics, latest = [], [], [], []
    began = 1_790_000_000_000
    for index in range(count):
        run_id = uuid.uuid4().hex
        runs.append(
            {
                "id": run_id,
                "experiment_id": experiment.id,
                "name": f"run-{index}",
                "status": "FINISHED",
                "start_time": began + index * 1000,
                "end_time": began + index * 1000 + rng.randint(100, 900),
                "user": "bench",
            }
        )
        values = {
            "model": rng.choice(["rf", "lr", "gbm"]),
            "C": rng.choice([0.01, 0.1, 1.0, 10.0]),
            "depth": rng.randint(2, 12),
            "seed": rng.randint(0, 9),
            "i": index,
            "optimizer": rng.choice(["adam", "sgd"]),
        }
        params += [{"run_id": run_id, "key": k, "value": str(v)} for k, v in values.items()]
        auc = rng.random()
        history = {
            "auc": [auc * (step + 1) / STEPS for step in range(STEPS)],
            "loss": [1 - auc * (step + 1) / STEPS for step in range(STEPS)],
            "accuracy": [rng.random() for _ in range(STEPS)],
            "f1": [rng.random() for _ in range(STEPS)],
        }
        for key, points in history.items():
            rows = [
                {"run_id": run_id, "key": key, "value": v, "step": step, "timestamp": began}
                for step, v in enumerate(points)
            ]
            metrics += rows
            latest.append(rows[-1])
    with services.db.write() as conn:
        conn.execute(t.runs.insert(), runs)
        conn.execute(t.params.insert(), params)
        conn.execute(t.metrics.insert(), metrics)
        conn.execute(t.latest_metrics.insert(), latest)
    services.close()
    return time.perf_counter() - start


def cli(home: Path, *args: str) -> str:
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    command = [sys.executable, "-m", "modelyard.cli.main", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def running_server(home: Path) -> Iterator[str]:
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    port = free_port()
    command = [sys.executable, "-m", "modelyard.cli.main", "server", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start in 30 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def signed_in(url: str, key: str) -> httpx.Client:
    """A client holding the session cookie, got through the sign-in form as a browser does."""
    client = httpx.Client(base_url=url, timeout=30)
    client.get("/signin")
    token = client.cookies.get("modelyard_signin", path="/signin")
    answer = client.post("/signin", data={"csrf": token, "key": key, "next": "/"})
    if answer.status_code != 303 or "modelyard_session" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:200]}")
    return client


def median_seconds(action: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def get_ok(client: httpx.Client, path: str, params: dict[str, Any], expect: str) -> None:
    answer = client.get(path, params=params)
    if answer.status_code != 200 or expect not in answer.text:
        raise RuntimeError(f"GET {path} {params}: {answer.status_code} {answer.text[:300]}")


def measure(
    page_client: httpx.Client,
    api: httpx.Client,
    page: tuple[str, dict[str, Any], dict[str, Any]],
    repeats: int,
) -> tuple[str, float, float]:
    """(label, median seconds of the page, median seconds of the API's search for it)."""
    label, query, search = page
    path = f"/experiments/{EXPERIMENT}"
    seconds = median_seconds(lambda: get_ok(page_client, path, query, 'class="runs"'), repeats)
    search_query = {"experiments": EXPERIMENT, **search}
    baseline = median_seconds(
        lambda: get_ok(api, "/api/v1/runs/search", search_query, '"runs"'), repeats
    )
    return label, seconds, baseline


def browser_times(url: str, key: str, repeats: int) -> dict[str, float] | None:
    """Median seconds from navigation to ``load`` in headless chromium, per page."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("  --browser: Playwright is not installed (make install-test)")
        return None
    if not Path("/usr/bin/chromium").exists():
        print("  --browser: /usr/bin/chromium is missing")
        return None
    found: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "modelyard_session", "value": key, "url": url}])
        page = context.new_page()
        for label, query, _ in PAGES:
            target = f"{url}/experiments/{EXPERIMENT}?" + httpx.QueryParams(query).__str__()

            def load(target: str = target) -> None:
                page.goto(target, wait_until="load")
                page.wait_for_selector("table.runs tbody tr")

            found[label] = median_seconds(load, repeats, warmup=1)
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--browser", action="store_true", help="also time chromium to load")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-ui-") as folder:
        home = Path(folder) / "home"
        print(f"filling an embedded store with {args.runs:,} runs ...", flush=True)
        seconds = fill(home, args.runs)
        print(f"  filled in {seconds:.1f} s")
        key = cli(home, "admin", "init", "--name", "bench").strip().splitlines()[-1]
        with running_server(home) as url:
            headers = {"authorization": f"Bearer {key}"}
            with (
                contextlib.closing(signed_in(url, key)) as page_client,
                httpx.Client(base_url=url, timeout=30, headers=headers) as api,
            ):
                rows = [measure(page_client, api, page, args.repeats) for page in PAGES]
                rendered = (
                    browser_times(url, key, max(5, args.repeats // 3)) if args.browser else None
                )
    report(args, rows, rendered)


def report(
    args: argparse.Namespace,
    rows: list[tuple[str, float, float]],
    rendered: dict[str, float] | None,
) -> None:
    print()
    print(f"runs table of an experiment with {args.runs:,} runs (medians of {args.repeats})")
    header = f"{'page':<30} {'UI page ms':>11} {'API search ms':>14} {'page/search':>12}"
    if rendered:
        header += f" {'chromium load ms':>17}"
    print(header)
    for label, page, baseline in rows:
        line = (
            f"{label:<30} {page * 1000:>11.1f} {baseline * 1000:>14.1f} {page / baseline:>11.2f}x"
        )
        if rendered:
            line += f" {rendered[label] * 1000:>17.1f}"
        print(line)
    first = rendered["first page, 50 runs"] if rendered else rows[0][1]
    verdict = "PASS" if first < TARGET_SECONDS else "MISS"
    measured = "chromium load" if rendered else "HTML GET"
    print(
        f"target: first page rendered under {TARGET_SECONDS:.0f} s ({measured}): "
        f"{first * 1000:.0f} ms {verdict}"
    )


if __name__ == "__main__":
    main()
