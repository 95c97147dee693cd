"""The local engine: the signature per batch, bounded memory, the same answers with workers."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import RandomForestClassifier

from modelyard.batch.engine import Scored, Task
from modelyard.batch.local import LocalEngine, WorkerPool, workers_for
from modelyard.batch.scorer import Scorer
from modelyard.batch.sources import open_source
from modelyard.errors import ModelFailed, SignatureError
from modelyard.packaging import load_package, package_digest, write_package
from tests.batch.data import FEATURES, break_row, frame, mend, model, write_parts

NULL = "null value but the column is not nullable"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("pkg") / "model"
    manifest = write_package(model(), directory, input_example=frame(5)[FEATURES])
    return directory, package_digest(manifest)


def test_the_scorer_answers_as_the_model_with_kept_columns(package: tuple[Path, str]) -> None:
    directory, digest = package
    loaded = load_package(directory, digest)
    data = frame(300)
    out = Scorer(loaded, keep=["id", "customer"]).score(pa.RecordBatch.from_pandas(data))
    assert out.schema.names == ["id", "customer", "prediction", "score_0", "score_1"]
    assert out.column("prediction").to_pylist() == loaded.model.predict(data[FEATURES]).tolist()
    proba = loaded.model.predict_proba(data[FEATURES])
    np.testing.assert_array_equal(out.column("score_1").to_numpy(), proba[:, 1])
    assert out.column("customer").to_pylist()[:2] == ["c0", "c1"]


def test_a_forest_reads_float32_rows_and_answers_as_on_the_frame(tmp_path: Path) -> None:
    """The forest is given the float32 rows it would copy its input into, and answers
    exactly as on the frame; a value beyond float32 is refused as the frame's would be."""
    data = frame(2_000)
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(data[FEATURES], data["a"] * data["b"] > 0)
    manifest = write_package(forest, tmp_path / "forest", input_example=data[FEATURES].head())
    scorer = Scorer(load_package(tmp_path / "forest", package_digest(manifest)))
    batch = pa.RecordBatch.from_pandas(data)
    features = scorer.features(batch)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    scores = scorer.score(batch).column("score_True").to_numpy()
    np.testing.assert_array_equal(scores, forest.predict_proba(data[FEATURES])[:, 1])
    data.loc[3, "c"] = 1e300
    too_large = "too large for dtype\\('float32'\\)"
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=too_large) as frame_error:
        forest.predict_proba(data[FEATURES])
    with pytest.raises(ValueError) as batch_error:
        scorer.score(pa.RecordBatch.from_pandas(data))
    assert str(batch_error.value) == str(frame_error.value)


def test_integer_and_text_columns_are_converted_or_named(package: tuple[Path, str]) -> None:
    loaded = load_package(*package)
    data = frame(20)
    data["a"] = np.arange(20)  # integers widen to floats, as serving does
    scored = Scorer(loaded).score(pa.RecordBatch.from_pandas(data))
    assert scored.num_rows == 20
    data["c"] = ["1.5"] * 19 + ["lots"]  # text is never taken for a number, even "1.5"
    with pytest.raises(SignatureError, match=r"column 'c': expected float, got '1.5' at row 0"):
        Scorer(loaded).score(pa.RecordBatch.from_pandas(data))


def test_infinities_are_not_taken_for_missing_values(package: tuple[Path, str]) -> None:
    """A column holding both infinities sums to NaN, as one holding a NaN does: only the
    NaN is refused."""
    scorer = Scorer(load_package(*package))
    data = frame(10)
    data.loc[3, "a"], data.loc[5, "a"] = np.inf, -np.inf
    features = scorer.features(pa.RecordBatch.from_pandas(data))
    assert np.isinf(features[:, 0]).sum() == 2
    data.loc[7, "c"] = np.nan
    with pytest.raises(SignatureError, match="column 'c': null value at row 7 but"):
        scorer.features(pa.RecordBatch.from_pandas(data))


def test_a_bad_row_is_named_by_file_and_row_of_that_file(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=100)
    break_row(folder / "part-2.parquet", 73)
    delivered: list[Scored] = []
    task = Task(package[0], package[1], open_source(folder, batch_rows=30))
    with pytest.raises(SignatureError) as failed:
        LocalEngine(1).run(task, delivered.append)
    message = str(failed.value)
    assert message == f"'{folder / 'part-2.parquet'}', row 73: column 'b': " + NULL
    assert failed.value.row == 73
    assert sum(s.inputs.num_rows for s in delivered) == 200 + 60  # nothing after the bad batch


def test_memory_stays_bounded_by_the_batch_not_the_input(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    """Arrow's allocations while scoring an input 50 times the batch's byte size stay
    within a few batches: reading the whole input at once would hold all of it. The
    row groups are smaller than a batch, so batches are joined from several."""
    rows = 200_000
    folder = write_parts(tmp_path / "in", parts=2, rows=rows // 2, row_group=1_000)
    input_bytes = sum(pq.read_table(path).nbytes for path in sorted(folder.iterdir()))
    batch_bytes = input_bytes // 50
    source = open_source(folder, batch_bytes=batch_bytes)
    gc.collect()  # the tables that wrote and measured the input are gone before the baseline
    baseline = pa.total_allocated_bytes()
    peak, batches = [0], []

    def deliver(scored: Scored) -> None:
        peak[0] = max(peak[0], pa.total_allocated_bytes() - baseline)
        batches.append(scored.inputs.nbytes)

    engine = LocalEngine(1)
    engine.run(Task(package[0], package[1], source, keep=["id", "customer"]), deliver)
    assert engine.peak_in_flight == 1 and 50 <= len(batches) <= 52
    assert max(batches) <= batch_bytes * 1.05, (max(batches), batch_bytes)
    # pyarrow's read-ahead makes the peak vary from run to run: 10 to 21 batches measured
    assert 0 < peak[0] < 30 * batch_bytes, (peak[0], batch_bytes, input_bytes)
    # (scoring each file as one batch instead fails here: 57 batches' worth held)


def test_a_pool_keeps_the_model_loaded_here_for_the_next_job(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    """One worker scores in this process; with a pool, the next job of the same version
    uses the model already loaded (as a worker process does), until the pool closes."""
    source = open_source(write_parts(tmp_path / "in", parts=1, rows=100))
    pool = WorkerPool()
    key = (str(package[0]), package[1], ("id",))
    first = pool.scorer(key)
    outputs: list[pa.RecordBatch] = []
    LocalEngine(1, pool=pool).run(
        Task(*package, source, keep=["id"]), lambda s: outputs.append(s.outputs)
    )
    assert pool.scorer(key) is first and outputs[0].schema.names[0] == "id"
    assert pool.scorer((str(package[0]), package[1], ())) is not first  # another: replaced
    pool.close()
    assert pool.scorer(key) is not first


@pytest.mark.slow  # starts worker processes
def test_workers_answer_in_input_order_and_stay_bounded(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    folder = write_parts(tmp_path / "in", parts=3, rows=1_000)
    source = open_source(folder, batch_rows=128)
    one: list[pa.RecordBatch] = []
    LocalEngine(1).run(Task(*package, source, keep=["id"]), lambda s: one.append(s.outputs))
    two: list[pa.RecordBatch] = []
    pool = WorkerPool()
    try:
        engine = LocalEngine(2, pool=pool)
        engine.run(Task(*package, source, keep=["id"]), lambda s: two.append(s.outputs))
        assert pa.Table.from_batches(two).equals(pa.Table.from_batches(one))
        assert engine.peak_in_flight == engine.in_flight == 4
        workers = {p.pid for p in multiprocessing.active_children()}
        break_row(folder / "part-1.parquet", 500)
        with pytest.raises(SignatureError, match=r"part-1.parquet', row 500: column 'b'"):
            LocalEngine(2, pool=pool).run(Task(*package, source), lambda s: None)
        mend(folder / "part-1.parquet")
        again: list[pa.RecordBatch] = []
        LocalEngine(2, pool=pool).run(Task(*package, source), lambda s: again.append(s.outputs))
        assert sum(b.num_rows for b in again) == 3_000
        assert len(workers) >= 2 and {p.pid for p in multiprocessing.active_children()} >= workers
    finally:
        pool.close()  # the same workers scored all three jobs; now they stop
    assert not workers & {p.pid for p in multiprocessing.active_children()}


@pytest.mark.slow  # starts worker processes
def test_a_worker_killed_mid_job_fails_it_and_leaves_no_shared_memory(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    source = open_source(write_parts(tmp_path / "in", parts=2, rows=1_000), batch_rows=100)
    pool = WorkerPool()

    def kill_workers(scored: Scored) -> None:  # the first answer is back, others in flight
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]

    try:
        engine = LocalEngine(2, pool=pool)
        with pytest.raises(ModelFailed, match="a scoring worker process died"):
            engine.run(Task(*package, source), kill_workers)
        assert not list(Path("/dev/shm").glob(f"{engine.block_prefix}*"))
        rows: list[int] = []
        LocalEngine(2, pool=pool).run(Task(*package, source), lambda s: rows.append(len(s.outputs)))
        assert sum(rows) == 2_000  # the pool started new workers
    finally:
        pool.close()


def test_the_workers_chosen_follow_the_first_batch_cost() -> None:
    """Scoring cheaper than twice the batch's reading stays here; dearer goes to every
    worker allowed."""
    assert workers_for(compute_ms=5.0, read_ms=20.0, most=4) == 1
    assert workers_for(compute_ms=39.0, read_ms=20.0, most=4) == 1
    assert workers_for(compute_ms=400.0, read_ms=20.0, most=4) == 4
    assert workers_for(compute_ms=400.0, read_ms=20.0, most=1) == 1


def test_a_chosen_engine_scores_one_batch_here_without_processes(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    source = open_source(write_parts(tmp_path / "in", parts=1, rows=300))  # one batch
    pool = WorkerPool()
    try:
        engine = LocalEngine(4, pool=pool, choose=True)
        scored: list[Scored] = []
        engine.run(Task(*package, source, keep=["id"]), scored.append)
        assert engine.workers == 1 and [s.inputs.num_rows for s in scored] == [300]
        assert not multiprocessing.active_children()  # nothing was started for one batch
    finally:
        pool.close()


@pytest.mark.slow  # may start worker processes (the model's cost on this machine decides)
def test_a_chosen_engine_answers_as_one_worker_and_says_how_many_scored(
    tmp_path: Path, package: tuple[Path, str]
) -> None:
    source = open_source(write_parts(tmp_path / "in", parts=2, rows=500), batch_rows=100)
    one: list[pa.RecordBatch] = []
    LocalEngine(1).run(Task(*package, source, keep=["id"]), lambda s: one.append(s.outputs))
    pool = WorkerPool()
    try:
        engine = LocalEngine(2, pool=pool, choose=True)
        chosen: list[pa.RecordBatch] = []
        engine.run(Task(*package, source, keep=["id"]), lambda s: chosen.append(s.outputs))
        assert pa.Table.from_batches(chosen).equals(pa.Table.from_batches(one))
        started = bool(multiprocessing.active_children())
        assert engine.workers in (1, 2) and started == (engine.workers == 2)
    finally:
        pool.close()
