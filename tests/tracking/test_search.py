from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import Services
from modelyard.domain.runs import MetricPoint, RunStatus
from modelyard.errors import InvalidInput, NotFound
from tests.stores import services_on

RUNS = {
    # name: (params, metrics, tags, status)
    "rf-1": ({"model": "rf", "C": "0.5"}, {"auc": 0.95, "loss": 0.2}, {"team": "a"}, "FINISHED"),
    "rf-2": ({"model": "rf", "C": "1"}, {"auc": 0.85}, {"team": "b"}, "FINISHED"),
    "lr-1": ({"model": "lr", "C": "0.1"}, {"auc": 0.91, "loss": 0.3}, {}, "FAILED"),
    "lr-2": ({"model": "lr", "C": "abc"}, {}, {"team": "a", "note": "x"}, "RUNNING"),
    "gbm": ({"model": "gbm"}, {"auc": 0.99}, {}, "FINISHED"),
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path) as built:
        for name, (params, metrics, tags, status) in RUNS.items():
            run = built.tracking.create_run("exp", name=name, params=params, tags=tags)
            points = [MetricPoint(k, v, 1, 1) for k, v in metrics.items()]
            built.tracking.log_batch(run.id, metrics=points)
            if status != "RUNNING":
                built.tracking.finish_run(run.id, RunStatus(status))
        built.tracking.create_run("other", name="elsewhere", params={"model": "rf"})
        yield built


def names(services: Services, filter: str | None, order_by: str | None = None) -> list[str]:
    experiment = [services.tracking.get_experiment("exp").id]
    page = services.queries.search(experiment, filter, order_by, max_results=100)
    return [run.name for run in page.runs]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ('metrics.auc > 0.9 and params.model = "rf"', {"rf-1"}),
        ("metrics.auc > 0.9", {"rf-1", "lr-1", "gbm"}),
        ("not metrics.auc > 0.9", {"rf-2", "lr-2"}),  # a run without auc is not > 0.9
        ("params.C > 0.3", {"rf-1", "rf-2"}),  # numeric; 'abc' never matches
        ("params.C = 0.5", {"rf-1"}),
        ('params.C = "abc"', {"lr-2"}),
        ('params.model in ("lr", "gbm")', {"lr-1", "lr-2", "gbm"}),
        ('params.model not in ("lr", "gbm")', {"rf-1", "rf-2"}),
        ('params.model like "r%"', {"rf-1", "rf-2"}),
        ('params.model ilike "R%"', {"rf-1", "rf-2"}),
        ("tags.team is null", {"lr-1", "gbm"}),
        ("tags.note is not null", {"lr-2"}),
        ('status = "failed"', {"lr-1"}),
        ('status != "FINISHED"', {"lr-1", "lr-2"}),
        ('experiment = "exp" and name like "lr%"', {"lr-1", "lr-2"}),
        ("end_time is null", {"lr-2"}),
        ("duration >= 0", {"rf-1", "rf-2", "lr-1", "gbm"}),
        ('(tags.team = "a" or metrics.loss < 0.25) and not params.model = "lr"', {"rf-1"}),
        ("metrics.missing > 0", set()),
        (None, set(RUNS)),
    ],
)
def test_filters(services: Services, filter: str | None, expected: set[str]) -> None:
    assert set(names(services, filter)) == expected


def test_order_puts_missing_values_last_both_ways(services: Services) -> None:
    assert names(services, None, "metrics.auc desc")[:4] == ["gbm", "rf-1", "lr-1", "rf-2"]
    assert names(services, None, "metrics.auc")[:4] == ["rf-2", "lr-1", "rf-1", "gbm"]
    assert names(services, None, "metrics.auc desc")[-1] == "lr-2"
    assert names(services, None, "metrics.auc")[-1] == "lr-2"
    assert names(services, None, "params.model, name desc") == [
        "gbm",
        "lr-2",
        "lr-1",
        "rf-2",
        "rf-1",
    ]


@pytest.mark.parametrize(
    ("filter", "order_by", "expected"),
    [
        ("metrics.auc > 0.86", "metrics.auc desc", ["gbm", "rf-1", "lr-1"]),
        ('metrics.auc > 0.86 and params.model = "rf"', "metrics.auc", ["rf-1"]),
        (
            'metrics.auc > 0.9 or params.model = "lr"',
            "metrics.auc desc",
            ["gbm", "rf-1", "lr-1", "lr-2"],
        ),
        ("not metrics.auc > 0.9", "metrics.auc desc", ["rf-2", "lr-2"]),
        (
            'params.model in ("rf", "gbm")',
            "params.model desc, metrics.auc",
            ["rf-2", "rf-1", "gbm"],
        ),
        (
            "metrics.loss < 1 and metrics.auc > 0",
            "metrics.auc desc, metrics.loss",
            ["rf-1", "lr-1"],
        ),
    ],
)
def test_filter_and_order_together(
    services: Services, filter: str, order_by: str, expected: list[str]
) -> None:
    assert names(services, filter, order_by) == expected


def test_cursor_pages_visit_every_run_once(services: Services) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = services.queries.search(None, None, "name", max_results=2, cursor=cursor)
        seen.extend(run.name for run in page.runs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted([*RUNS, "elsewhere"]) and len(seen) == len(set(seen))
    first = services.queries.search(None, None, "name", max_results=2)
    assert first.next_cursor is not None
    with pytest.raises(InvalidInput, match="cursor does not belong to this search"):
        services.queries.search(
            None, "metrics.auc > 0", "name", max_results=2, cursor=first.next_cursor
        )
    with pytest.raises(InvalidInput, match="not a valid page cursor"):
        services.queries.search(None, None, "name", cursor="garbage!")
    with pytest.raises(InvalidInput, match="max_results must be between"):
        services.queries.search(None, None, None, max_results=0)


def test_frame_has_one_row_per_run_with_wide_columns(services: Services) -> None:
    experiment = [services.tracking.get_experiment("exp").id]
    frame = services.queries.frame(experiment, None, "metrics.auc desc")
    assert list(frame["name"]) == ["gbm", "rf-1", "lr-1", "rf-2", "lr-2"]
    assert {"params.model", "params.C", "metrics.auc", "metrics.loss", "tags.team"} <= set(
        frame.columns
    )
    assert frame.loc[frame["name"] == "rf-1", "metrics.auc"].item() == pytest.approx(0.95)
    assert (
        str(frame["start_time"].dtype).startswith("datetime64")
        and frame["start_time"].dt.tz is not None
    )
    filtered = services.queries.frame(experiment, 'params.model = "lr"', None)
    assert sorted(filtered["name"]) == ["lr-1", "lr-2"]
    empty = services.queries.frame(experiment, "metrics.auc > 5", None)
    assert len(empty) == 0 and "name" in empty.columns


def test_an_experiments_summary_lists_the_keys_its_runs_logged(services: Services) -> None:
    summary = services.queries.summary("exp")
    started = [run.start_time for run in services.queries.search(None, None, None).runs]
    assert (summary.experiment, summary.runs) == ("exp", len(RUNS))
    assert summary.last_run_at is not None and summary.last_run_at <= max(started)
    assert (summary.params, summary.metrics, summary.tags) == (
        ["C", "model"],
        ["auc", "loss"],
        ["note", "team"],
    )
    other = services.queries.summary("other")  # only its own run's keys
    assert (other.runs, other.params, other.metrics, other.tags) == (1, ["model"], [], [])
    services.tracking.create_experiment("empty")
    empty = services.queries.summary("empty")
    assert (empty.runs, empty.last_run_at, empty.params) == (0, None, [])
    with pytest.raises(NotFound, match="experiment 'nope' does not exist"):
        services.queries.summary("nope")
