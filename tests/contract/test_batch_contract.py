"""Batch scoring, embedded and through a server: the data stays here, the record is the same."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelyard.client.remote import RemoteBackend
from modelyard.client.yard import Yard
from modelyard.domain.batch import JobStatus
from modelyard.errors import InvalidInput, NotFound, SignatureError
from tests.batch.data import FEATURES, break_row, frame, model, write_parts


def test_a_job_is_scored_here_and_recorded_there(yard: Yard, unique: str, tmp_path: Path) -> None:
    version = yard.models.register(model(), name=unique, input_example=frame(5)[FEATURES])
    yard.models.set_alias(unique, "champion", version.version)
    folder = write_parts(tmp_path / "in", parts=2, rows=50)
    target = tmp_path / "scores.parquet"
    job = yard.batch.score(f"{unique}@champion", folder, target, workers=1, keep=["id"])
    assert (job.status, job.model, job.version, job.rows_out) == (
        JobStatus.SUCCEEDED,
        unique,
        1,
        100,
    )
    assert job.package_digest == version.package_digest and job.created_by
    assert (job.engine, job.workers) == ("local", 1)  # which engine scored, with how many
    assert job.output_uri == target.absolute().as_uri() and pq.read_table(target).num_rows == 100
    assert yard.batch.job(job.id) == job
    assert [j.id for j in yard.batch.jobs(model=unique)] == [job.id]
    graph = yard.lineage(f"job:{job.id}")
    assert {n.kind for n in graph.upstream()} >= {"version", "dataset"}
    assert [n.key for n in graph.downstream()] == [job.output_dataset]

    break_row(folder / "part-1.parquet", 7)
    with pytest.raises(SignatureError, match=r"part-1.parquet', row 7: column 'b'"):
        yard.batch.score(f"{unique}/1", folder, tmp_path / "again.parquet", workers=1)
    failed = yard.batch.jobs(model=unique, status="failed")
    assert len(failed) == 1 and "row 7: column 'b'" in (failed[0].error or "")
    assert not (tmp_path / "again.parquet").exists()


def test_the_record_says_how_many_workers_a_chosen_job_used(
    yard: Yard, unique: str, tmp_path: Path
) -> None:
    """Without ``workers`` the engine chooses on the first batch; an input of one batch
    is scored in this process, and the record (started with every core) says 1."""
    yard.models.register(model(), name=unique, input_example=frame(5)[FEATURES])
    folder = write_parts(tmp_path / "in", parts=1, rows=50)
    job = yard.batch.score(f"{unique}/1", folder, tmp_path / "scores.parquet")
    assert (job.status, job.engine, job.workers) == (JobStatus.SUCCEEDED, "local", 1)
    assert yard.batch.job(job.id).workers == 1


def test_refusals_are_the_same(yard: Yard, unique: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="batch job 'nojob' does not exist"):
        yard.batch.job("nojob")
    with pytest.raises(InvalidInput, match="unknown job status 'done'"):
        yard.batch.jobs(status="done")
    folder = write_parts(tmp_path / "in", parts=1, rows=5)
    with pytest.raises(NotFound, match=f"model '{unique}' does not exist"):
        yard.batch.score(f"{unique}/1", folder, tmp_path / "out.parquet", workers=1)


def test_a_remote_yard_refuses_to_log_batch_predictions(
    yard: Yard, unique: str, tmp_path: Path
) -> None:
    if not isinstance(yard.backend, RemoteBackend):
        pytest.skip("embedded yards write the endpoint's log (tests/batch/test_score.py)")
    yard.models.register(model(), name=unique, input_example=frame(5)[FEATURES])
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    folder = write_parts(tmp_path / "in", parts=1, rows=5)
    with pytest.raises(InvalidInput, match="batch data never goes there"):
        yard.batch.score(f"{unique}/1", folder, tmp_path / "o.parquet", workers=1, log_to=unique)
    assert yard.batch.jobs(model=unique) == []


def test_a_running_job_renews_its_heartbeat(yard: Yard, unique: str) -> None:
    yard.models.register(model(), name=unique, input_example=frame(5)[FEATURES])
    job = yard.backend.start_batch_job(
        f"{unique}/1",
        input_uri="file:///data/in",
        output_uri="file:///data/out.parquet",
        output_format="parquet",
        keep=[],
        workers=3,
        engine="ray",
        log_to=None,
    )
    assert job.heartbeat_at is not None and job.status is JobStatus.RUNNING
    assert (job.engine, job.workers) == ("ray", 3) and yard.batch.job(job.id).engine == "ray"
    renewed = yard.backend.heartbeat_batch_job(job.id)
    recorded = [
        e.action for e in yard.audit.events(resource=f"/api/v1/batch-jobs/{job.id}/heartbeat")
    ]
    assert recorded == []  # a lease renewal, not a change: embedded and remote alike
    assert renewed.status is JobStatus.RUNNING
    assert (renewed.heartbeat_at or 0) >= job.heartbeat_at
    with pytest.raises(NotFound, match="batch job 'nojob' does not exist"):
        yard.backend.heartbeat_batch_job("nojob")
