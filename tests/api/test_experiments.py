"""``GET /experiments/{name}/summary``: what a runs table can show for an experiment."""

from __future__ import annotations

import httpx

from tests.api.conftest import new_run


def test_the_summary_counts_runs_and_lists_their_keys(api: httpx.Client, unique: str) -> None:
    first = new_run(api, unique, params={"C": 1, "model": "rf"}, tags={"team": "a"})
    metrics = {
        "keys": ["auc", "val loss"],
        "values": [0.9, 0.2],
        "steps": [0, 0],
        "timestamps": [1, 1],
    }
    assert api.post(f"/api/v1/runs/{first}/batch", json={"metrics": metrics}).status_code == 204
    second = new_run(api, unique, params={"depth": 3})
    latest = api.get(f"/api/v1/runs/{second}").json()["start_time"]

    summary = api.get(f"/api/v1/experiments/{unique}/summary")

    assert summary.status_code == 200, summary.text
    assert summary.json() == {
        "experiment": unique,
        "runs": 2,
        "last_run_at": latest,
        "params": ["C", "depth", "model"],
        "metrics": ["auc", "val loss"],
        "tags": ["team"],
    }


def test_an_empty_experiment_and_an_unknown_one(api: httpx.Client, unique: str) -> None:
    assert api.post("/api/v1/experiments", json={"name": unique}).status_code == 201
    empty = api.get(f"/api/v1/experiments/{unique}/summary").json()
    assert (empty["runs"], empty["last_run_at"], empty["params"]) == (0, None, [])
    missing = api.get(f"/api/v1/experiments/{unique}-nope/summary")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"experiment '{unique}-nope' does not exist"
