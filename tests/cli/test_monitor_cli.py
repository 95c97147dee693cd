"""``modelyard monitor ...`` and ``modelyard worker`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from modelyard.cli.output import when
from tests.conftest import modelyard_command
from tests.monitoring.traffic import deploy, inputs
from tests.stores import services_on

pytestmark = pytest.mark.slow  # every test here starts a process

T0 = 1_790_000_000_000


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_HOME": str(home), "COLUMNS": "200"}
    env.pop("MODELYARD_URL", None)
    return subprocess.run(
        modelyard_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def test_monitor_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with services_on("sqlite", home) as services:
        deployed = deploy(services, "churn")
        deployed.send(inputs(400, 1), start_ts=T0)
        deployed.send(inputs(200, 2, shift={"tenure": 2.0}), start_ts=T0 + 10_000)

    spec = json.dumps({"window": "200 rows", "alerts": {"channels": [{"type": "log"}]}})
    done = cli(home, "monitor", "update", "churn", "--spec", "-", stdin=spec)
    assert done.returncode == 0, done.stderr
    assert "200 rows" in done.stdout

    done = cli(home, "monitor", "run", "churn", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [w["drifted"] for w in report["computed"]] == [[], [], ["tenure"]]

    done = cli(home, "monitor", "results", "churn", "--check", "drift", "--column", "tenure")
    assert done.returncode == 0 and done.stdout.count("tenure") == 3

    out = tmp_path / "results.csv"
    done = cli(home, "monitor", "results", "churn", "--output", str(out))
    assert done.returncode == 0 and out.read_text().startswith("window_start,")

    done = cli(home, "monitor", "alerts", "churn", "--json")
    alerts = json.loads(done.stdout)
    assert any(a["check"] == "drift" and a["status"] == "firing" for a in alerts)

    done = cli(home, "monitor", "requests", "churn", "--json")
    (request,) = json.loads(done.stdout)
    done = cli(home, "monitor", "close-request", request["id"], "--comment", "retrained")
    assert done.returncode == 0 and "closed" in done.stdout

    report_path = tmp_path / "report.html"
    done = cli(home, "monitor", "report", "churn", "--output", str(report_path))
    assert done.returncode == 0 and "tenure" in report_path.read_text()

    done = cli(home, "monitor", "reference", "churn/1")
    assert done.returncode == 0 and "classification" in done.stdout and "tenure" in done.stdout

    done = cli(home, "worker", "--once")
    assert done.returncode == 0 and "ran 1 monitors: 0 windows" in done.stdout


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with services_on("sqlite", home) as services:
        deploy(services, "churn")
    cases = [
        (("monitor", "show", "nope"), "monitor 'nope' does not exist"),
        (("monitor", "create", "x", "--endpoint", "nope"), "endpoint 'nope' does not exist"),
        (("monitor", "update", "churn", "--window", "soon"), "window"),
        (("monitor", "update", "churn", "--spec", "-"), "is not JSON"),
        (("monitor", "update", "churn"), "nothing to change"),
        (("monitor", "close-request", "0" * 32), "does not exist"),
    ]
    for args, message in cases:
        done = cli(home, *args, stdin="{oops")
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)


def test_a_run_before_the_first_window_closes_says_which_window_is_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    now = int(time.time() * 1000)
    with services_on("sqlite", home) as services:
        deploy(services, "churn").send(inputs(50, 1), start_ts=now - 1000, step_ms=1)
    hour = 3_600_000
    start = now // hour * hour

    done = cli(home, "monitor", "run", "churn")
    assert done.returncode == 0, done.stderr
    assert "monitor churn: no window was due" in done.stdout
    assert "windows computed" not in done.stdout  # no empty table
    start_text = when(start)
    if not done.stdout.count(start_text):  # the hour turned between the two clocks
        start_text = when(start + hour)
    assert f"next window: {start_text} to " in done.stdout
    assert "computed once it has closed" in done.stdout

    report = tmp_path / "report.html"
    done = cli(home, "monitor", "report", "churn", "--output", str(report))
    assert done.returncode == 0, done.stderr
    header = report.read_text().split("</header>")[0]
    assert "<th>References</th><td>none" not in header
    assert "<th>References</th><td><code>churn/1</code> (training data" in header


def test_a_rows_monitor_says_how_many_rows_the_next_window_lacks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with services_on("sqlite", home) as services:
        deploy(services, "churn").send(inputs(250, 1), start_ts=T0)
    done = cli(home, "monitor", "update", "churn", "--window", "200 rows")
    assert done.returncode == 0, done.stderr

    done = cli(home, "monitor", "run", "churn")
    assert done.returncode == 0, done.stderr
    assert "windows computed" in done.stdout
    assert (
        "next window: rows 200 to 399, computed once full (50 of 200 rows logged, 150 to go)"
        in (done.stdout.replace("\n", " "))
    )
    done = cli(home, "monitor", "run", "churn", "--json")
    assert json.loads(done.stdout)["next_window"] == {
        "kind": "rows",
        "start": 200,
        "end": 400,
        "logged": 50,
    }
