"""``benchmarks/soak_serving.py`` (``make soak``) at a small size, so it keeps working.

The script starts ``modelyard serve`` on 127.0.0.1, sends single-row predictions to an
endpoint with a canary and a shadow, and checks the prediction log against the answers.
Its figures at full size are printed by ``make soak``, never asserted here.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.soak import run_script, table

pytestmark = pytest.mark.slow


def test_serving_soak_checks_every_answer_against_the_log() -> None:
    output = run_script("soak_serving.py", "--predictions", "500", "--concurrency", "8")

    rows = table(output)
    assert "serving soak passed" in output
    assert not [name for name, (verdict, _) in rows.items() if verdict == "FAIL"]
    verdict, figure = rows["primary rows = 200 answers"]
    assert verdict == "ok"
    logged, answered = map(int, re.findall(r"\d+", figure))
    assert logged == answered >= 500  # the warm-up's answers come on top
    assert rows["non-200 answers"][1].startswith("0 of ")
    assert rows["primary ids = acknowledged ids"] == ("ok", "0 missing, 0 unknown")
    assert rows["shadow rows = computed copies"][0] == "ok"
    assert rows["shadow copies dropped"][0] == "-"
