"""The serving process authenticates with the API's bearer parsing, without FastAPI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IMPORT_SERVING = """
import json, sys
import modelyard.cli.main, modelyard.serving.server
print(json.dumps(sorted(name for name in ("fastapi", "pydantic") if name in sys.modules)))
"""


@pytest.mark.slow  # starts a process
def test_the_serving_process_loads_neither_fastapi_nor_pydantic() -> None:
    found = subprocess.run(
        [sys.executable, "-c", IMPORT_SERVING], capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == []
