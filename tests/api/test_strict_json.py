"""No answer of the API holds a bare NaN or Infinity: strict JSON parsers read every one.
Non-finite numbers travel as the strings "NaN", "Infinity" and "-Infinity"."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

from modelyard.client.yard import connect
from tests.api.conftest import new_run
from tests.conftest import ServerProcess


def strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"bare {constant} in a JSON answer")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_metrics_travel_as_strings_and_come_back_as_floats(
    api: httpx.Client, server: ServerProcess, unique: str
) -> None:
    run_id = new_run(api, unique)
    points = {"keys": ["loss", "grad", "drop"], "values": [float("nan"), 1e309, -1e309]}
    body = {"metrics": {**points, "steps": [0, 0, 0], "timestamps": [1, 1, 1]}}
    sent = api.post(
        f"/api/v1/runs/{run_id}/batch",
        content=json.dumps(body),  # Python's encoder writes NaN and Infinity bare
        headers={"content-type": "application/json"},
    )
    assert sent.status_code < 300, sent.text
    run = strict(api.get(f"/api/v1/runs/{run_id}").text)
    assert run["metrics"] == {"loss": "NaN", "grad": "Infinity", "drop": "-Infinity"}
    history = strict(api.get(f"/api/v1/runs/{run_id}/metrics/loss").text)
    assert [point["value"] for point in history] == ["NaN"]
    with connect(server.url, api_key=server.admin_key) as yard:
        metrics = yard.runs.get(run_id).metrics
        assert math.isnan(metrics["loss"]) and metrics["grad"] == math.inf
        assert metrics["drop"] == -math.inf
        assert math.isnan(yard.runs.history(run_id, "loss")[0].value)
