"""The job records: started and finished once, by whoever started it, audited, linked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from modelyard.batch.jobs import BatchJobs
from modelyard.bootstrap import Services
from modelyard.clock import now_ms
from modelyard.domain.batch import STALE_MS, BatchJob, JobOutcome, JobStatus
from modelyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.packaging import write_package
from modelyard.store import schema as t
from tests.actors import as_user
from tests.batch.data import FEATURES, frame, model
from tests.stores import services_on

IN_FP, OUT_FP = "a" * 64, "b" * 64
COLUMNS = [("a", "float")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        directory = tmp_path / "pkg"
        write_package(model(), directory, input_example=frame(5)[FEATURES])
        for _ in range(2):  # the same package twice: versions 1 and 2
            prefix = built.catalog.stage_upload(uuid.uuid4().hex)
            for path in directory.iterdir():
                with path.open("rb") as handle:
                    built.artifacts.put(f"{prefix}/{path.name}", handle)
            built.catalog.register_version("churn", source=prefix)
        built.catalog.set_alias("churn", "champion", 2)
        yield built


def start(jobs: BatchJobs, user: str = "ana", **options: Any) -> BatchJob:
    arguments: dict[str, object] = {
        "input_uri": "file:///data/in",
        "output_uri": "file:///data/out.parquet",
        **options,
    }
    return as_user(user, jobs.start, "churn@champion", **arguments)


def test_a_job_is_recorded_with_the_version_the_alias_named(services: Services) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    job = start(jobs, keep=["id"], workers=3)
    assert (job.status, job.model, job.version, job.ref) == (
        JobStatus.RUNNING,
        "churn",
        2,
        "churn@champion",
    )
    assert job.package_digest == services.catalog.get_version("churn/2").package_digest
    assert (job.created_by, job.workspace, job.keep, job.workers) == ("ana", "default", ["id"], 3)
    outcome = JobOutcome(
        JobStatus.SUCCEEDED, 10, 10, IN_FP, OUT_FP, COLUMNS, [("prediction", "integer")]
    )
    done = as_user("ana", jobs.finish, job.id, outcome)
    assert (done.status, done.rows_in, done.rows_out, done.error) == (
        JobStatus.SUCCEEDED,
        10,
        10,
        None,
    )
    assert done.finished_at is not None and done.input_dataset and done.output_dataset
    output = services.datasets.get_dataset(done.output_dataset)
    assert (output.name, output.fingerprint, output.row_count) == ("out.parquet", OUT_FP, 10)
    assert services.datasets.get_dataset(done.input_dataset).name == "in"
    assert [j.id for j in jobs.list(model="churn", status="succeeded")] == [job.id]
    assert jobs.list(status="running") == []
    events = services.audit.events(resource=f"batch-jobs/{job.id}")
    assert [(e.action, e.actor, e.summary["workspace"]) for e in events] == [
        ("start batch job", "ana", "default"),
        ("finish batch job", "ana", "default"),
    ]
    after: dict[str, Any] = events[1].summary["after"]
    assert after["rows_out"] == 10


def test_the_workers_an_engine_chose_are_recorded_at_the_finish(services: Services) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    job = start(jobs, workers=4)  # at most 4: the engine chose 1 on the first batch
    outcome = JobOutcome(JobStatus.SUCCEEDED, 1, 1, IN_FP, OUT_FP, COLUMNS, COLUMNS, workers=1)
    assert as_user("ana", jobs.finish, job.id, outcome).workers == 1
    events = services.audit.events(resource=f"batch-jobs/{job.id}")
    assert events[-1].summary["after"]["workers"] == 1
    kept = as_user("ana", jobs.finish, start(jobs, workers=3).id, replace(outcome, workers=None))
    assert kept.workers == 3  # not chosen: as started
    with pytest.raises(InvalidInput, match="workers must be a whole number"):
        as_user("ana", jobs.finish, start(jobs).id, replace(outcome, workers=0))
    two = start(jobs, workers=2)
    with pytest.raises(InvalidInput, match="started with at most 2 workers, not 3"):
        as_user("ana", jobs.finish, two.id, replace(outcome, workers=3))
    assert jobs.get(two.id).status is JobStatus.RUNNING  # the refused finish changed nothing


def test_the_same_content_is_one_dataset_across_jobs(services: Services) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    outcome = JobOutcome(JobStatus.SUCCEEDED, 1, 1, IN_FP, OUT_FP, COLUMNS, COLUMNS)
    first = as_user("ana", jobs.finish, start(jobs).id, outcome)
    again = as_user("ana", jobs.finish, start(jobs, input_uri="s3://b/elsewhere").id, outcome)
    assert again.input_dataset == first.input_dataset


def test_a_job_finishes_once_and_only_by_who_started_it(services: Services) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    job = start(jobs)
    failed = JobOutcome(JobStatus.FAILED, 5, 0, error="'in/part-2.parquet', row 3: column 'b'")
    with pytest.raises(PermissionDenied, match="started by 'ana'.*not 'bob'"):
        as_user("bob", jobs.finish, job.id, failed)
    done = as_user("ana", jobs.finish, job.id, failed)
    assert (done.status, done.error, done.input_dataset) == (JobStatus.FAILED, failed.error, None)
    with pytest.raises(Conflict, match="has finished already"):
        as_user("ana", jobs.finish, job.id, failed)
    with pytest.raises(InvalidInput, match="names its input's and its output's fingerprints"):
        as_user("ana", jobs.finish, start(jobs).id, JobOutcome(JobStatus.SUCCEEDED))
    with pytest.raises(InvalidInput, match="not running"):
        as_user("ana", jobs.finish, job.id, JobOutcome(JobStatus.RUNNING))


def test_bad_starts_are_refused_with_the_reason(services: Services) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    with pytest.raises(NotFound, match="model 'nothing' does not exist"):
        jobs.start("nothing/1", input_uri="in", output_uri="out")
    with pytest.raises(NotFound, match="endpoint 'nowhere' does not exist"):
        start(jobs, log_to="nowhere")
    with pytest.raises(InvalidInput, match="not one of parquet, csv"):
        start(jobs, output_format="xlsx")
    with pytest.raises(InvalidInput, match="clash with the outputs"):
        start(jobs, keep=["prediction"])
    with pytest.raises(NotFound, match="batch job 'nope' does not exist"):
        jobs.get("nope")
    services.catalog.delete_alias("churn", "champion")
    services.retirement.retire_version("churn/1", comment="old")
    with pytest.raises(Conflict, match="churn/1 is retired"):
        jobs.start("churn/1", input_uri="in", output_uri="out")


def test_a_job_whose_process_died_shows_abandoned_and_a_heartbeat_keeps_it_running(
    services: Services,
) -> None:
    jobs = BatchJobs(services.db, services.catalog)
    killed, alive = start(jobs), start(jobs)
    assert killed.heartbeat_at == killed.created_at and killed.status is JobStatus.RUNNING
    quiet = now_ms() - STALE_MS - 1  # neither renewed its heartbeat for longer than allowed
    with services.db.write() as conn:
        conn.execute(update(t.batch_jobs).values(heartbeat_at=quiet))
    beaten = as_user("ana", jobs.heartbeat, alive.id)  # the live job's process renews it
    assert beaten.status is JobStatus.RUNNING and (beaten.heartbeat_at or 0) > quiet
    assert jobs.get(killed.id).status is JobStatus.ABANDONED
    assert [j.id for j in jobs.list(status="abandoned")] == [killed.id]
    assert [j.id for j in jobs.list(status="running")] == [alive.id]
    with pytest.raises(PermissionDenied, match="only they may finish it"):
        as_user("bob", jobs.heartbeat, alive.id)
    failed = JobOutcome(JobStatus.FAILED, error="interrupted")
    late = as_user("ana", jobs.finish, killed.id, failed)  # a late finish is still taken
    assert late.status is JobStatus.FAILED
    with pytest.raises(Conflict, match="has finished already"):
        as_user("ana", jobs.heartbeat, killed.id)
