"""One tracking suite, run against the embedded and the remote backend."""

from __future__ import annotations

import hashlib
import math
import platform
from pathlib import Path

import pandas as pd
import pytest

from modelyard.client.yard import Yard
from modelyard.domain.runs import MetricPoint, RunStatus
from modelyard.errors import Conflict, InvalidInput, NotFound


def test_experiments(yard: Yard, unique: str) -> None:
    created = yard.experiments.create(unique, "churn models")
    assert yard.experiments.get(unique) == created
    assert unique in [e.name for e in yard.experiments.list()]
    with pytest.raises(Conflict, match=f"experiment '{unique}' already exists"):
        yard.experiments.create(unique)
    with pytest.raises(NotFound, match="does not exist"):
        yard.experiments.get(f"{unique}-missing")


def test_run_ends_finished_failed_or_killed(yard: Yard, unique: str) -> None:
    with yard.start_run(unique, name="ok") as run:
        run.log_metric("loss", 0.5)
    assert yard.runs.get(run.id).status is RunStatus.FINISHED

    with pytest.raises(ZeroDivisionError), yard.start_run(unique, name="boom") as failing:
        _ = 1 / 0
    failed = yard.runs.get(failing.id)
    assert failed.status is RunStatus.FAILED and "ZeroDivisionError" in (failed.error or "")

    with pytest.raises(KeyboardInterrupt), yard.start_run(unique, name="stop") as stopped:
        raise KeyboardInterrupt
    assert yard.runs.get(stopped.id).status is RunStatus.KILLED


def test_params_metrics_tags_and_history(yard: Yard, unique: str) -> None:
    with yard.start_run(unique, params={"C": 0.5, "model": "lr"}, tags={"team": "a"}) as run:
        run.log_param("penalty", "l2")
        run.set_tag("team", "b")
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("auc", 0.7)
        run.log_metric("auc", 0.9)  # steps default to the next one
        with pytest.raises(Conflict, match="param 'C'"):
            run.log_param("C", 1)
    stored = yard.runs.get(run.id)
    assert stored.params == {"C": "0.5", "model": "lr", "penalty": "l2"}
    assert stored.tags == {"team": "b"}
    assert stored.metrics == {"loss": pytest.approx(0.2), "auc": pytest.approx(0.9)}
    history = yard.runs.history(run.id, "loss")
    assert [p.step for p in history] == [0, 1, 2, 3, 4]
    assert all(p.timestamp > 0 for p in history)
    assert [p.step for p in yard.runs.history(run.id, "auc")] == [0, 1]


def test_buffered_points_are_all_written(yard: Yard, unique: str) -> None:
    with yard.start_run(unique) as run:
        for step in range(20_000):
            run.log_metric("loss", step * 0.5, step=step)
    history = yard.runs.history(run.id, "loss")
    assert len(history) == 20_000 and history[-1].value == pytest.approx(9999.5)
    assert yard.runs.get(run.id).metrics["loss"] == pytest.approx(9999.5)


def test_bulk_logging(yard: Yard, unique: str) -> None:
    with yard.start_run(unique) as run:
        run.log_batch({"loss": [0.9, 0.5, 0.1]}, params={"epochs": 3})
        run.log_batch([("acc", 0.5, 0), ("acc", 0.8, 1), MetricPoint("acc", 0.7, 2)])
    stored = yard.runs.get(run.id)
    assert stored.metrics == {"loss": pytest.approx(0.1), "acc": pytest.approx(0.7)}
    assert stored.params == {"epochs": "3"}
    with pytest.raises(Conflict, match="no longer accepts"):
        yard.backend.log_batch(run.id, metrics=[MetricPoint("late", 1.0)])


def test_artifacts_keep_hash_and_size(yard: Yard, unique: str, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_bytes(b"precision 0.9\n" * 100)
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    with yard.start_run(unique) as run:
        [logged] = run.log_artifact(report)
        run.log_artifact(folder)
        run.log_dict({"k": 1}, "config/params.json")
    assert logged.sha256 == hashlib.sha256(report.read_bytes()).hexdigest()
    assert logged.size == report.stat().st_size
    paths = [a.path for a in yard.backend.list_artifacts(run.id)]
    assert paths == ["config/params.json", "plots/a.json", "report.txt"]
    assert yard.backend.read_artifact(run.id, "report.txt") == report.read_bytes()
    with pytest.raises(InvalidInput), report.open("rb") as handle:
        yard.backend.log_artifact(run.id, "../outside.txt", handle)
    with pytest.raises(NotFound):
        yard.backend.read_artifact(run.id, "missing.txt")


def test_datasets_stored_and_referenced(yard: Yard, unique: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [30, 40, 50], "plan": ["a", "b", "a"]})
    path = tmp_path / "holdout.parquet"
    frame.to_parquet(path)
    with yard.start_run(unique) as run:
        stored = run.log_dataset(frame, name="train", role="training")
        again = run.log_dataset(frame.copy(), name="train", role="validation")
        changed = run.log_dataset(frame.assign(age=[30, 40, 51]), name="train", role="test")
        referenced = run.log_dataset(path, name="holdout", role="evaluation")
    assert stored.row_count == 3 and [c.name for c in stored.columns] == ["age", "plan"]
    assert stored.stored and again.id == stored.id and changed.fingerprint != stored.fingerprint
    assert not referenced.stored and referenced.uri == path.as_uri()
    uses = yard.backend.run_datasets(run.id)
    assert sorted((u.role, u.dataset.name) for u in uses) == [
        ("evaluation", "holdout"),
        ("test", "train"),
        ("training", "train"),
        ("validation", "train"),
    ]
    with pytest.raises(InvalidInput, match="dataset role"):
        yard.start_run(unique).log_dataset(frame, name="x", role="sideways")


def test_a_csv_file_is_referenced_by_path(yard: Yard, unique: str, tmp_path: Path) -> None:
    csv = tmp_path / "scores.csv"
    csv.write_text("id,score\n1,0.5\n2,0.7\n")
    with yard.start_run(unique) as run:
        referenced = run.log_dataset(csv, name="scores", role="evaluation")
        again = run.log_dataset(csv, name="scores", role="test")
    assert not referenced.stored and referenced.uri == csv.as_uri()
    assert referenced.row_count == 2 and [c.name for c in referenced.columns] == ["id", "score"]
    assert again.id == referenced.id


def test_environment_is_captured(yard: Yard, unique: str) -> None:
    with yard.start_run(unique) as run:
        pass
    stored = yard.runs.get(run.id)
    assert stored.environment_id is not None and stored.user
    environment = yard.backend.get_environment(stored.environment_id)
    assert environment.python == platform.python_version()
    assert "numpy" in environment.packages


def test_search_order_and_pages(yard: Yard, unique: str) -> None:
    for index in range(7):
        model = "rf" if index % 2 else "lr"
        with yard.start_run(unique, name=f"r{index}", params={"model": model}) as run:
            run.log_metric("auc", 0.5 + index / 20)
    page = yard.runs.search(
        'metrics.auc > 0.6 and params.model = "rf"', experiments=unique, order_by="metrics.auc desc"
    )
    assert [r.name for r in page.runs] == ["r5", "r3"]
    assert [r.name for r in page] == ["r5", "r3"] and len(page) == 2 and page[0].name == "r5"
    seen: list[str] = []
    cursor = None
    while True:
        page = yard.runs.search(
            None, experiments=[unique], order_by="name", max_results=3, cursor=cursor
        )
        seen += [r.name for r in page.runs]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [f"r{i}" for i in range(7)]
    frame = yard.runs.to_frame(experiments=unique, order_by="metrics.auc desc")
    assert list(frame["name"]) == [f"r{i}" for i in reversed(range(7))]
    assert {"run_id", "status", "params.model", "metrics.auc"} <= set(frame.columns)
    assert str(frame["start_time"].dt.tz) == "UTC" and str(frame["end_time"].dt.tz) == "UTC"
    assert frame["metrics.auc"].dtype == "float64" and frame["params.model"].iloc[0] == "lr"


def test_malformed_filter_names_the_position(yard: Yard) -> None:
    with pytest.raises(InvalidInput) as raised:
        yard.runs.search("metrics.auc > and")
    assert str(raised.value).startswith("invalid filter at position 15: expected a value after '>'")
    with pytest.raises(InvalidInput) as again:
        yard.runs.to_frame("metrics.auc > and")
    assert str(again.value) == str(raised.value)  # the very same message, embedded or remote


def test_compare(yard: Yard, unique: str) -> None:
    ids = []
    for c in (0.1, 1.0):
        with yard.start_run(unique, params={"C": c}) as run:
            run.log_metric("auc", c)
        ids.append(run.id)
    table = yard.runs.compare(ids)
    assert list(table.loc["params.C"]) == ["0.1", "1.0"]
    assert list(table.loc["metrics.auc"]) == [0.1, 1.0]


def test_unknown_run(yard: Yard) -> None:
    with pytest.raises(NotFound, match="run 'f00d' does not exist"):
        yard.runs.get("f00d")


def test_nan_infinity_and_precision_survive(yard: Yard, unique: str) -> None:
    with yard.start_run(unique) as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", float("nan"))  # a diverging loss must not lose the batch
        run.log_metric("grad", float("inf"))
        run.log_metric("exact", 0.1 + 0.2)
    stored = yard.runs.get(run.id)
    assert math.isnan(stored.metrics["loss"]) and stored.metrics["grad"] == math.inf
    assert stored.metrics["exact"] == 0.1 + 0.2
    history = yard.runs.history(run.id, "loss")
    assert history[0].value == 0.5 and math.isnan(history[1].value)
    frame = yard.runs.to_frame(experiments=unique)
    assert frame["metrics.exact"].item() == 0.1 + 0.2 and math.isnan(frame["metrics.loss"].item())
    assert [r.id for r in yard.runs.search("metrics.grad > 1e308", experiments=unique).runs] == [
        run.id
    ]


def test_wide_datasets(yard: Yard, unique: str) -> None:
    columns = [f"feature_number_{i}_with_a_rather_long_name" for i in range(2000)]
    frame = pd.DataFrame([[0.5] * len(columns)] * 3, columns=columns)
    with yard.start_run(unique) as run:
        logged = run.log_dataset(frame, name="wide", role="training")
        referenced = run.log_dataset(frame.head(1), name="wide-ref", role="test", store=False)
    assert logged.stored and len(logged.columns) == 2000 and logged.row_count == 3
    assert not referenced.stored
    [use, _] = sorted(yard.backend.run_datasets(run.id), key=lambda u: u.role != "training")
    assert use.dataset.columns[-1].name == columns[-1]
