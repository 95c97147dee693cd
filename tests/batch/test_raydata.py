"""The Ray Data engine against the local engine, on one small Ray head for the module.

The head runs in this process on 127.0.0.1 (two CPUs, a 100 MB object store, no
dashboard) and is shut down after the module; the CLI test connects a second driver
to it by address, through ``MODELYARD_RAY_ADDRESS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch.engine import Scored, Task
from modelyard.batch.raydata import RayEngine
from modelyard.batch.sources import Source, open_source
from modelyard.client.yard import Yard
from modelyard.domain.batch import JobStatus
from modelyard.errors import InvalidInput, SignatureError
from tests.batch.data import FEATURES, break_row, frame, model, write_parts
from tests.conftest import embedded_yard

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # starts a Ray head and its worker processes

NULL = "null value but the column is not nullable"
# what differs between two runs of the same job: the job itself, when, where it wrote
PER_RUN = {"id", "created_at", "finished_at", "heartbeat_at", "output_uri", "workers", "engine"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head in this process; yields its address."""
    context = ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


@pytest.fixture
def yard(home: Path) -> Iterator[Yard]:
    opened = embedded_yard(home)
    opened.models.register(model(), name="churn", input_example=frame(5)[FEATURES])
    opened.models.set_alias("churn", "champion", 1)
    opened.endpoints.create("churn-api", routes=["churn/1=100"])
    yield opened
    opened.close()


def record(job: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(job).items() if k not in PER_RUN}


def test_ray_scores_the_same_job_as_the_local_engine(
    cluster: str, yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=200)
    common: dict[str, Any] = {
        "keep": ["id", "customer"],
        "batch_rows": 64,
        "log_to": "churn-api",
    }
    local = yard.batch.score("churn@champion", folder, tmp_path / "local.parquet", **common)
    on_ray = yard.batch.score(
        "churn@champion", folder, tmp_path / "ray.parquet", workers=2, engine="ray", **common
    )
    expected, got = (
        pq.read_table(tmp_path / "local.parquet"),
        pq.read_table(tmp_path / "ray.parquet"),
    )
    assert got.schema.names == ["id", "customer", "prediction", "score_0", "score_1"]
    assert got.equals(expected) and got.column("id").to_pylist() == list(range(600))
    assert on_ray.status is JobStatus.SUCCEEDED and on_ray.rows_out == 600
    assert (on_ray.engine, on_ray.workers, local.engine) == ("ray", 2, "local")
    assert record(on_ray) == record(local)  # version, digest, fingerprints, datasets, counts
    assert on_ray.output_fingerprint == local.output_fingerprint  # the same bytes written
    assert f"job:{on_ray.id}" in {n.ref for n in yard.lineage("version:churn/1").downstream()}
    upstream = {n.ref for n in yard.lineage(f"job:{on_ray.id}").upstream()}
    assert f"dataset:{local.input_dataset}" in upstream
    logged = yard.endpoints.predictions("churn-api", role="batch")
    for column in ("output", "input"):  # the actors send back the inputs the log reads
        by_job = logged.groupby(logged["id"].str[:12])[column].apply(list).to_dict()
        assert by_job[on_ray.id[:12]] == by_job[local.id[:12]]  # the same 600 rows, in order
        assert len(by_job[on_ray.id[:12]]) == 600


def test_only_the_logged_input_columns_come_back_and_an_unreadable_file_is_named(
    cluster: str, yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=2, rows=40)
    version = yard.backend.get_version("churn/1")
    package = yard.backend.fetch_package(version)

    def run(logged: list[str], source: Source | None = None) -> list[Scored]:
        source = source or open_source(folder, batch_rows=16)
        task = Task(package, version.package_digest, source, ["id"], logged)
        delivered: list[Scored] = []
        RayEngine(1).run(task, delivered.append)
        return delivered

    unlogged, logged = run([]), run(["b", "a"])
    outputs = pa.Table.from_batches([scored.outputs for scored in logged])
    assert outputs.equals(pa.Table.from_batches([scored.outputs for scored in unlogged]))
    assert outputs.column("id").to_pylist() == list(range(80))
    # no prediction log: no input column travels back, the row counts do
    assert {scored.inputs.num_columns for scored in unlogged} == {0}
    assert [scored.inputs.num_rows for scored in unlogged] == [16, 16, 8] * 2
    assert {tuple(scored.inputs.schema.names) for scored in logged} == {("b", "a")}
    assert pa.Table.from_batches([s.inputs for s in logged]).equals(
        pq.read_table(folder, columns=["b", "a"])
    )
    source = open_source(folder, batch_rows=16)
    (folder / "part-1.parquet").write_bytes(b"not Parquet any more")  # after the source opened
    with pytest.raises(InvalidInput) as unreadable:
        run([], source)
    assert str(unreadable.value).startswith(f"cannot read input '{folder / 'part-1.parquet'}': ")


def test_a_bad_row_on_ray_is_named_as_locally_and_leaves_no_output(
    cluster: str, yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=100)
    break_row(folder / "part-2.parquet", 42)
    target = tmp_path / "out" / "scores.parquet"
    with pytest.raises(SignatureError) as failed:
        yard.batch.score("churn/1", folder, target, workers=1, batch_rows=32, engine="ray")
    message = f"'{folder / 'part-2.parquet'}', row 42: column 'b': " + NULL
    assert str(failed.value) == message
    assert list((tmp_path / "out").iterdir()) == []
    (failed_job,) = yard.batch.jobs(status="failed")
    assert failed_job.error == message and failed_job.output_dataset is None


def test_the_cli_runs_on_the_cluster_named_by_the_environment(
    cluster: str, yard: Yard, home: Path, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=2, rows=50)
    target = tmp_path / "scores.parquet"
    environment = {**os.environ, "MODELYARD_HOME": str(home), "MODELYARD_RAY_ADDRESS": cluster}
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "score", "churn@champion", str(folder),
         str(target), "--engine", "ray", "--workers", "1", "--keep", "id", "--json"],
        env=environment, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    job = json.loads(done.stdout)
    assert (job["status"], job["rows_out"], job["engine"]) == ("succeeded", 100, "ray")
    scored = pq.read_table(target)
    data = frame(50, start=50)
    expected = yard.models.load("churn/1").model.predict(data[FEATURES]).tolist()
    assert scored.column("prediction").to_pylist()[50:] == expected


def test_fewer_files_than_actors_go_through_read_tasks_and_score_as_locally(
    cluster: str, yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=1, rows=300)
    (single,) = sorted(folder.iterdir())
    common: dict[str, Any] = {"keep": ["id"], "batch_rows": 32, "log_to": "churn-api"}
    local = yard.batch.score("churn@champion", single, tmp_path / "local.parquet", **common)
    on_ray = yard.batch.score(
        "churn@champion", single, tmp_path / "ray.parquet", workers=2, engine="ray", **common
    )
    got = pq.read_table(tmp_path / "ray.parquet")
    assert got.equals(pq.read_table(tmp_path / "local.parquet"))
    assert got.column("id").to_pylist() == list(range(300))
    assert on_ray.output_fingerprint == local.output_fingerprint and on_ray.rows_out == 300
    logged = yard.endpoints.predictions("churn-api", role="batch")
    by_job = logged.groupby(logged["id"].str[:12])["input"].apply(list).to_dict()
    assert by_job[on_ray.id[:12]] == by_job[local.id[:12]]

    version = yard.backend.get_version("churn/1")
    source = open_source(single, batch_rows=32)
    task = Task(yard.backend.fetch_package(version), version.package_digest, source, [], [])
    single.write_bytes(b"not Parquet any more")  # after the source opened
    with pytest.raises(InvalidInput) as unreadable:
        RayEngine(2).run(task, lambda scored: None)
    assert str(unreadable.value).startswith(f"cannot read input '{single}': ")


def _scoring_actor_pids() -> list[int]:
    """The processes of this job's scoring actors (Ray names each after its class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"_ScoringActor" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return pids


def test_actors_killed_mid_job_are_replaced_and_every_row_delivered_once(
    cluster: str, yard: Yard, tmp_path: Path
) -> None:
    folder = write_parts(tmp_path / "in", parts=4, rows=2000)
    version = yard.backend.get_version("churn/1")
    source = open_source(folder, batch_rows=50)
    task = Task(yard.backend.fetch_package(version), version.package_digest, source, ["id"], [])
    delivered: list[Scored] = []
    killed: list[int] = []

    def deliver(scored: Scored) -> None:
        delivered.append(scored)
        if len(delivered) == 10:  # mid-job, 150 batches to come: every actor is killed
            killed.extend(_scoring_actor_pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)  # a slow writer: the actors run ahead and wait

    RayEngine(2).run(task, deliver)
    assert len(killed) >= 2, killed
    ids = pa.concat_arrays([scored.outputs.column("id") for scored in delivered]).to_pylist()
    assert ids == list(range(8000))  # the retried file's batches are not delivered twice
    assert [(s.file, s.offset) for s in delivered] == [
        (str(folder / f"part-{part}.parquet"), offset)
        for part in range(4)
        for offset in range(0, 2000, 50)
    ]
