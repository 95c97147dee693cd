"""A custom monitor metric that holds its window until the test opens a gate.

``modelyard worker`` imports it by name (``"python": "tests.integration.gate:held"`` in
a monitor's checks), as it would a team's own metric: a window whose computation is in
progress for as long as a test needs, with no pause written into modelyard itself.
The folder named by ``MODELYARD_TEST_GATE`` gets one line per call in ``calls`` (the
calling process's id); the call returns once a file ``open`` is there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def held(table: Any) -> float:
    """The window's row count, once the gate is open."""
    gate = Path(os.environ["MODELYARD_TEST_GATE"])
    with (gate / "calls").open("a") as calls:
        calls.write(f"{os.getpid()}\n")
    while not (gate / "open").exists():
        time.sleep(0.05)
    return float(table.num_rows)


def callers(gate: Path) -> list[int]:
    """The process id of each call so far, in order."""
    path = gate / "calls"
    return [int(line) for line in path.read_text().split()] if path.exists() else []
