"""Running a soak script (``benchmarks/soak_*.py``) from a test, and reading its table."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TIMEOUT = 600
ROW = re.compile(r"^  (\S.*?)  +(ok|FAIL|-)  +(.*)$", re.MULTILINE)


def run_script(name: str, *flags: str) -> str:
    """Run ``benchmarks/NAME`` in a session of its own (killed as a group if it overruns);
    its output, once it exited 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    process = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / name), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{name} did not finish in {TIMEOUT} s:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    return output


def table(output: str) -> dict[str, tuple[str, str]]:
    """The summary table a script prints: check -> (verdict, figure)."""
    return {name: (verdict, figure) for name, verdict, figure in ROW.findall(output)}
