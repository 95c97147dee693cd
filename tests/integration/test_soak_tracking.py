"""``benchmarks/soak_tracking.py`` (``make soak``) at a small size, so it keeps working.

The script starts ``modelyard server`` on 127.0.0.1, has clients log batches through it
at once, and reads every point back. Its figures at full size are printed by
``make soak``, never asserted here.
"""

from __future__ import annotations

import pytest

from tests.integration.soak import run_script, table

pytestmark = pytest.mark.slow


def test_tracking_soak_reads_back_every_point() -> None:
    output = run_script("soak_tracking.py", "--clients", "2", "--batches", "10", "--points", "50")

    rows = table(output)
    assert "tracking soak passed" in output
    assert rows["failed batch requests"] == ("ok", "0 of 20")
    assert rows["points stored = sent"] == ("ok", "1000 of 1000")
    assert rows["points stored twice"] == ("ok", "0")
    assert rows["params stored = sent"] == ("ok", "20 of 20")
