"""Dataset routes: the Parquet content first (when the yard keeps it), then the
description as JSON, which may name thousands of columns."""

from __future__ import annotations

import hashlib
import io

import httpx
import pandas as pd

from tests.api.conftest import new_run
from tests.conftest import ServerProcess


def _description(name: str, columns: list[str], fingerprint: str) -> dict[str, object]:
    return {
        "name": name,
        "role": "training",
        "fingerprint": fingerprint,
        "row_count": 2,
        "columns": [{"name": c, "type": "float"} for c in columns],
    }


def test_a_referenced_dataset_is_its_description(api: httpx.Client, unique: str) -> None:
    run_id = new_run(api, unique)
    body = {**_description("holdout", ["x"], "a" * 64), "uri": "s3://bucket/holdout.parquet"}
    answer = api.post(f"/api/v1/runs/{run_id}/datasets", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["stored"] is False
    assert answer.json()["uri"] == "s3://bucket/holdout.parquet"
    uses = api.get(f"/api/v1/runs/{run_id}/datasets").json()
    assert [(u["role"], u["dataset"]["name"]) for u in uses] == [("training", "holdout")]


def test_a_stored_dataset_uploads_its_content_first(
    api: httpx.Client, server: ServerProcess, unique: str
) -> None:
    columns = [f"feature_{index:05d}" for index in range(3_000)]  # too wide for a query string
    frame = pd.DataFrame([[0.0] * len(columns)] * 2, columns=columns)
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    fingerprint = hashlib.sha256(parquet.getvalue() + unique.encode()).hexdigest()
    run_id = new_run(api, unique)
    description = {**_description("wide", columns, fingerprint), "stored": True}
    too_early = api.post(f"/api/v1/runs/{run_id}/datasets", json=description)
    assert too_early.status_code == 422 and "was not uploaded first" in too_early.text

    uploaded = api.put(f"/api/v1/datasets/{fingerprint}/content", content=parquet.getvalue())
    assert uploaded.status_code == 201, uploaded.text
    answer = api.post(f"/api/v1/runs/{run_id}/datasets", json=description)
    assert answer.status_code == 201, answer.text
    stored = answer.json()
    assert stored["stored"] is True and stored["uri"] == uploaded.json()["uri"]
    assert len(stored["columns"]) == 3_000
    on_disk = server.home / "artifacts" / stored["uri"]
    pd.testing.assert_frame_equal(pd.read_parquet(on_disk), frame)


def test_bad_descriptions_and_fingerprints(api: httpx.Client, unique: str) -> None:
    run_id = new_run(api, unique)
    no_rows = {k: v for k, v in _description("d", ["x"], "a" * 64).items() if k != "row_count"}
    answer = api.post(f"/api/v1/runs/{run_id}/datasets", json=no_rows)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "row_count: Field required"
    bad_column = {**_description("d", ["x"], "a" * 64), "columns": [{"name": "x"}]}
    answer = api.post(f"/api/v1/runs/{run_id}/datasets", json=bad_column)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "columns.0.type: Field required"
    bad_role = {**_description("d", ["x"], "a" * 64), "role": "sideways"}
    answer = api.post(f"/api/v1/runs/{run_id}/datasets", json=bad_role)
    assert answer.status_code == 422 and "dataset role 'sideways'" in answer.text
    for fingerprint in ("not-a-digest", "..%2F..%2Fescape"):
        answer = api.put(f"/api/v1/datasets/{fingerprint}/content", content=b"PAR1")
        assert answer.status_code in (404, 422), fingerprint
    unknown_run = api.post("/api/v1/runs/feedbeef/datasets", json=_description("d", [], "a" * 64))
    assert unknown_run.status_code == 404
