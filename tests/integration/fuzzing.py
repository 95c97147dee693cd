"""One way to run schemathesis over a live OpenAPI document, for the server's and the
serving process's fuzz tests: the same checks, a fixed seed, one worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def fuzz(
    config: Path,
    document: str,
    key: str,
    examples: int,
    *options: str,
    timeout: float = 900,
) -> tuple[int, int, int]:
    """Run schemathesis with ``config`` over ``document`` (a URL or a file; ``options``
    add e.g. ``--url`` and a selection) as the holder of ``key``; asserts it found
    nothing, and returns (operations tested, selected, in the document)."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        document,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        "1",
        "--no-color",
        "--workers",
        "1",
        *options,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=config.parent, timeout=timeout
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report
    return int(tested.group(1)), int(selected.group(1)), int(selected.group(2))
