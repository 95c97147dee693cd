"""``yard.batch.score`` embedded: the output, the record, a failure half-way, the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from modelyard.client.yard import Yard
from modelyard.domain.batch import JobStatus
from modelyard.errors import Conflict, InvalidInput, NotFound, SignatureError, StorageUnavailable
from tests.batch.data import FEATURES, break_row, frame, mend, model, write_parts
from tests.conftest import embedded_yard
from tests.disk import small_disk

NULL = "null value but the column is not nullable"


@pytest.fixture
def yard(home: Path) -> Yard:
    opened = embedded_yard(home)
    version = opened.models.register(model(), name="churn", input_example=frame(5)[FEATURES])
    opened.models.set_alias("churn", "champion", version.version)
    return opened


def test_scoring_a_folder_writes_outputs_beside_kept_columns(yard: Yard, tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=200)
    seen: list[tuple[int, int | None]] = []
    job = yard.batch.score(
        "churn@champion",
        folder,
        tmp_path / "out" / "scores.parquet",
        workers=1,
        keep=["id", "customer"],
        batch_rows=64,
        progress=lambda rows, total: seen.append((rows, total)),
    )
    table = pq.read_table(tmp_path / "out" / "scores.parquet")
    assert table.schema.names == ["id", "customer", "prediction", "score_0", "score_1"]
    assert table.column("id").to_pylist() == list(range(600))
    data = frame(200, start=400)
    expected = yard.models.load("churn/1").model.predict(data[FEATURES]).tolist()
    assert table.column("prediction").to_pylist()[400:] == expected
    assert sum(rows for rows, _ in seen) == 600 and {total for _, total in seen} == {600}
    assert (job.status, job.rows_in, job.rows_out, job.version) == (
        JobStatus.SUCCEEDED,
        600,
        600,
        1,
    )
    assert job.input_uri == folder.absolute().as_uri() and yard.batch.job(job.id) == job
    graph = yard.lineage(f"job:{job.id}")
    assert {n.ref for n in graph.upstream()} >= {"version:churn/1", f"dataset:{job.input_dataset}"}
    assert [n.label for n in graph.downstream()] == ["scores.parquet"]
    assert f"job:{job.id}" in {n.ref for n in yard.lineage("version:churn/1").downstream()}


def test_csv_out_and_an_existing_output(yard: Yard, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    frame(50).to_csv(data, index=False)
    target = tmp_path / "out.csv"
    job = yard.batch.score("churn/1", data, target, workers=1, keep=["id"])
    assert job.output_format == "csv" and target.read_text().splitlines()[0].startswith('"id"')
    with pytest.raises(Conflict, match="exists already"):
        yard.batch.score("churn/1", data, target, workers=1)
    again = yard.batch.score("churn/1", data, target, workers=1, keep=["id"], overwrite=True)
    assert again.output_fingerprint == job.output_fingerprint  # same input, same bytes


def test_a_job_failing_half_way_leaves_no_output_and_can_be_run_again(
    yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=100)
    break_row(folder / "part-2.parquet", 42)
    target = tmp_path / "out" / "scores.parquet"
    with pytest.raises(SignatureError) as failed:
        yard.batch.score("churn@champion", folder, target, workers=1, batch_rows=32)
    message = f"'{folder / 'part-2.parquet'}', row 42: column 'b': " + NULL
    assert str(failed.value) == message
    assert list((tmp_path / "out").iterdir()) == []  # nothing final, nothing partial
    record = yard.batch.jobs(status="failed")[0]
    assert (record.status, record.error, record.output_dataset) == (JobStatus.FAILED, message, None)
    mend(folder / "part-2.parquet")
    job = yard.batch.score("churn@champion", folder, target, workers=1, batch_rows=32)
    assert job.status is JobStatus.SUCCEEDED and pq.read_table(target).num_rows == 300


def test_bad_requests_are_refused_before_any_record(yard: Yard, tmp_path: Path) -> None:
    folder = write_parts(tmp_path / "in", parts=1, rows=10)
    out = tmp_path / "out.parquet"
    with pytest.raises(NotFound, match="does not exist"):
        yard.batch.score("churn/1", tmp_path / "missing", out, workers=1)
    with pytest.raises(NotFound, match="model 'nothing' does not exist"):
        yard.batch.score("nothing/1", folder, out, workers=1)
    with pytest.raises(InvalidInput, match="has no column 'account' to keep"):
        yard.batch.score("churn/1", folder, out, workers=1, keep=["account"])
    frame(10).drop(columns=["c"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InvalidInput, match="column 'c' is missing from the input"):
        yard.batch.score("churn/1", tmp_path / "short.csv", out, workers=1)
    with pytest.raises(NotFound, match="endpoint 'nowhere' does not exist"):
        yard.batch.score("churn/1", folder, out, workers=1, log_to="nowhere")
    assert yard.batch.jobs() == [] and not out.exists()


def test_predictions_go_to_the_endpoint_log_with_role_batch(yard: Yard, tmp_path: Path) -> None:
    yard.endpoints.create("churn-api", routes=["churn/1=100"])
    folder = write_parts(tmp_path / "in", parts=2, rows=30)
    job = yard.batch.score(
        "churn@champion", folder, tmp_path / "out.parquet", workers=1, log_to="churn-api"
    )
    logged = yard.endpoints.predictions("churn-api", role="batch").to_dict("records")
    assert len(logged) == 60 and job.log_to == "churn-api"
    first = logged[0]
    assert (first["model"], first["version"], first["role"]) == ("churn", 1, "batch")
    assert first["id"] == f"{job.id[:12]}-00000000"
    assert sorted(json.loads(first["input"])) == FEATURES
    outputs = pq.read_table(tmp_path / "out.parquet").column("prediction").to_pylist()
    assert [int(row["output"]) for row in logged] == outputs
    assert len(yard.endpoints.predictions("churn-api", role="primary")) == 0
    up = yard.lineage(f"prediction:churn-api/{first['id']}")
    assert "version:churn/1" in {n.ref for n in up.upstream()}


def test_a_full_log_disk_stops_the_job_with_one_clear_error(
    yard: Yard, home: Path, tmp_path: Path
) -> None:
    yard.endpoints.create("churn-api", routes=["churn/1=100"])
    folder = write_parts(tmp_path / "in", parts=2, rows=30)
    out = tmp_path / "out.parquet"
    with small_disk(home / "predictions", "1m") as disk:
        disk.fill()
        refused = r"^prediction log of endpoint 'churn-api' cannot be written: no space left"
        with pytest.raises(StorageUnavailable, match=refused):
            yard.batch.score("churn/1", folder, out, workers=1, log_to="churn-api")
        (job,) = yard.batch.jobs()
        assert job.status is JobStatus.FAILED and "no space left on device" in (job.error or "")
        assert not out.exists()


def test_an_fsspec_url_in_and_out_scores_as_a_local_path(yard: Yard, tmp_path: Path) -> None:
    import fsspec

    folder = write_parts(tmp_path / "in", parts=2, rows=150, row_group=40)
    memory = fsspec.filesystem("memory")
    for part in sorted(folder.iterdir()):
        memory.pipe(f"/batch-in/{part.name}", part.read_bytes())
    try:
        common: dict[str, Any] = {"keep": ["id"], "batch_rows": 64, "workers": 1}
        local = yard.batch.score("churn@champion", folder, tmp_path / "local.parquet", **common)
        remote = yard.batch.score(
            "churn@champion", "memory://batch-in/", "memory://batch-out/scores.parquet", **common
        )
        written = memory.cat("/batch-out/scores.parquet")
        assert written == (tmp_path / "local.parquet").read_bytes()  # the same bytes
        assert (remote.rows_in, remote.rows_out) == (300, 300)
        assert remote.input_fingerprint == local.input_fingerprint
        assert remote.input_uri == "memory://batch-in/"
        assert [p for p in memory.ls("/batch-out", detail=False)] == ["/batch-out/scores.parquet"]
    finally:
        memory.rm("/batch-in", recursive=True)
        if memory.exists("/batch-out"):
            memory.rm("/batch-out", recursive=True)
