"""Run routes over HTTP: search by body or query string, the columnar metric batch,
and the runs DataFrame as an Arrow stream (types kept, 5,000 runs well under 0.5 s)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
from sqlalchemy import insert

from modelyard.bootstrap import bootstrap
from modelyard.client.yard import connect
from modelyard.store import schema as t
from tests.api.conftest import new_run
from tests.conftest import ServerProcess, sqlite_settings


def _log(api: httpx.Client, run_id: str, **body: object) -> httpx.Response:
    return api.post(f"/api/v1/runs/{run_id}/batch", json=body)


def test_search_by_query_string_matches_search_by_body(api: httpx.Client, unique: str) -> None:
    for index in range(5):
        run_id = new_run(api, unique, name=f"r{index}", params={"C": index})
        metrics = {"keys": ["auc"], "values": [index / 10], "steps": [0], "timestamps": [1]}
        assert _log(api, run_id, metrics=metrics).status_code == 204
    body = {"experiments": [unique], "filter": "params.C >= 1", "order_by": ["metrics.auc desc"]}
    by_body = api.post("/api/v1/runs/search", json={**body, "max_results": 2}).json()
    query: dict[str, Any] = {
        "experiments": [unique],
        "filter": "params.C >= 1",
        "order_by": "metrics.auc desc",
        "max_results": 2,
    }
    by_query = api.get("/api/v1/runs/search", params=query).json()
    assert [r["name"] for r in by_query["runs"]] == [r["name"] for r in by_body["runs"]]
    assert [r["name"] for r in by_query["runs"]] == ["r4", "r3"]
    rest = api.get("/api/v1/runs/search", params={**query, "cursor": by_query["next_cursor"]})
    assert [r["name"] for r in rest.json()["runs"]] == ["r2", "r1"]
    assert rest.json()["next_cursor"] is None


def test_metric_batches_travel_as_parallel_arrays(api: httpx.Client, unique: str) -> None:
    run_id = new_run(api, unique)
    count = 20_000
    metrics = {
        "keys": ["loss"] * count,
        "values": [step / count for step in range(count)],
        "steps": list(range(count)),
        "timestamps": [1_700_000_000_000 + step for step in range(count)],
    }
    logged = _log(api, run_id, metrics=metrics, params={"lr": 0.1}, tags={"stage": "a"})
    assert logged.status_code == 204, logged.text
    history = api.get(f"/api/v1/runs/{run_id}/metrics/loss").json()
    assert [p["step"] for p in history] == list(range(count))
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["params"] == {"lr": "0.1"} and run["tags"] == {"stage": "a"}
    nan = {"keys": ["gap"], "values": [None], "steps": [3], "timestamps": [1]}  # null is NaN
    assert _log(api, run_id, metrics=nan).status_code == 204
    assert api.get(f"/api/v1/runs/{run_id}/metrics/gap").json()[0]["value"] == "NaN"


def test_a_ragged_batch_is_refused(api: httpx.Client, unique: str) -> None:
    run_id = new_run(api, unique)
    ragged = _log(api, run_id, metrics={"keys": ["a", "b"], "values": [1.0], "steps": [0, 1]})
    assert ragged.status_code == 422
    assert "must have the same length" in ragged.json()["error"]["message"]
    finish = api.post(f"/api/v1/runs/{run_id}/finish", json={"status": "DONE"})
    assert finish.status_code == 422 and "unknown run status 'DONE'" in finish.text


def test_the_frame_is_an_arrow_stream_that_keeps_types(api: httpx.Client, unique: str) -> None:
    run_id = new_run(api, unique, name="only", params={"C": 1})
    metrics = {"keys": ["auc"], "values": [0.5], "steps": [0], "timestamps": [1]}
    _log(api, run_id, metrics=metrics)
    api.post(f"/api/v1/runs/{run_id}/finish", json={"status": "FINISHED"})
    answer = api.post("/api/v1/runs/frame", json={"experiments": [unique]})
    assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
    with pa.ipc.open_stream(answer.content) as reader:
        frame = reader.read_all().to_pandas()
    assert list(frame["run_id"]) == [run_id]
    assert str(frame["start_time"].dt.tz) == "UTC" and str(frame["end_time"].dt.tz) == "UTC"
    assert frame["metrics.auc"].dtype == "float64" and frame["params.C"].iloc[0] == "1"
    empty = api.post("/api/v1/runs/frame", json={"filter": f"name = '{uuid.uuid4().hex}'"})
    with pa.ipc.open_stream(empty.content) as reader:
        assert reader.read_all().num_rows == 0


def _insert_runs(home: Path, experiment: str, count: int) -> None:
    """Write ``count`` finished runs straight into the store (the API is not under test)."""
    services = bootstrap(sqlite_settings(home), create_if_empty=False)
    experiment_id = services.tracking.create_experiment(experiment).id
    ids = [uuid.uuid4().hex for _ in range(count)]
    now = 1_700_000_000_000
    with services.db.write() as conn:
        conn.execute(
            insert(t.runs),
            [
                {
                    "id": run_id,
                    "experiment_id": experiment_id,
                    "name": f"run-{index}",
                    "status": "FINISHED",
                    "start_time": now + index,
                    "end_time": now + index + 1000,
                    "user": "bench",
                }
                for index, run_id in enumerate(ids)
            ],
        )
        conn.execute(
            insert(t.params),
            [
                {"run_id": i, "key": k, "value": v}
                for i in ids
                for k, v in (("C", "0.5"), ("m", "lr"))
            ],
        )
        conn.execute(
            insert(t.latest_metrics),
            [
                {"run_id": i, "key": key, "value": n / count, "step": 0, "timestamp": now}
                for n, i in enumerate(ids)
                for key in ("auc", "loss")
            ],
        )
    services.close()


def test_five_thousand_runs_come_back_as_one_arrow_frame(
    server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    """Arrow in, Arrow out: dtypes and order survive the trip (speed is the benchmark's job)."""
    _insert_runs(server.home, unique, 5_000)
    yard = connect(server.url, api_key=server.admin_key, home=tmp_path)
    try:
        frame = yard.runs.to_frame(experiments=unique, order_by="metrics.auc desc")
    finally:
        yard.close()
    assert len(frame) == 5_000 and frame["metrics.auc"].is_monotonic_decreasing
    assert isinstance(frame["start_time"].dtype, pd.DatetimeTZDtype)
