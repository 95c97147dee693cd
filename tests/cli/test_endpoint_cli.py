"""``modelyard endpoint``, in-process on a real embedded store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.serving.journal import Journal, record_line
from tests.cli.test_cli import invoke
from tests.conftest import embedded_yard

NAME = "churn-api"


def ok(home: Path, *args: str) -> str:
    code, out, err = invoke(home, *args)
    assert code == 0, err
    return out


def ok_json(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json"))


def refused(home: Path, *args: str) -> str:
    """Exit code 2 and exactly one line on stderr, starting with ``error:``; that line."""
    code, out, err = invoke(home, *args)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, LogisticRegression]:
    bunch = load_iris(as_frame=True)
    features = bunch.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return features, LogisticRegression(max_iter=1000).fit(features, bunch.target)


@pytest.fixture
def models(home: Path, fitted: tuple[pd.DataFrame, LogisticRegression]) -> Path:
    """A home with model ``m`` at versions 1 and 2 (same signature)."""
    features, model = fitted
    yard = embedded_yard(home)
    try:
        for _ in range(2):
            yard.models.register(model, name="m", input_example=features.head(3))
    finally:
        yard.close()
    return home


@pytest.fixture
def deployed(models: Path) -> Path:
    """A home with endpoint NAME at revision 1: m/1 90%, m/2 10%."""
    ok(models, "endpoint", "create", NAME, "--route", "m/1=90", "--route", "m/2=10")
    return models


def routes(found: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["model"], r["version"], r["weight"]) for r in found["spec"]["routes"]]


def test_create_update_revisions_rollback(models: Path) -> None:
    created = ok_json(models, "endpoint", "create", NAME, "--route", "m/1=90", "--route", "m/2=10")
    assert created["name"] == NAME and created["revision"] == 1
    assert routes(created) == [("m", 1, 90), ("m", 2, 10)]
    assert created["spec"]["shadows"] == []

    out = ok(models, "endpoint", "update", NAME, "--route", "m/2=100", "--comment", "why")
    assert f"endpoint {NAME} at revision 2" in out
    assert "m/2 100%" in out and "m/1" not in out

    revisions = ok_json(models, "endpoint", "revisions", NAME)
    assert [r["revision"] for r in revisions] == [1, 2]
    assert [r["comment"] for r in revisions] == ["", "why"]
    assert all(r["created_by"] and r["created_at"] > 0 for r in revisions)
    assert set(revisions[1]["changes"]) == {"routes"}
    assert revisions[1]["changes"]["routes"]["after"] == {"m/2": 100}
    table = ok(models, "endpoint", "revisions", NAME)
    assert "why" in table and f"revisions of {NAME}" in table

    back = ok_json(models, "endpoint", "rollback", NAME)
    assert back["revision"] == 3
    assert routes(back) == [("m", 1, 90), ("m", 2, 10)]
    last = ok_json(models, "endpoint", "revisions", NAME)[-1]
    assert (last["revision"], last["changes"]["rollback_to"]) == (3, 1)
    assert last["comment"] == "rollback to revision 1"

    to_two = ok_json(models, "endpoint", "rollback", NAME, "--to", "2", "--comment", "again")
    assert to_two["revision"] == 4 and routes(to_two) == [("m", 2, 100)]


def test_list_and_show_print_the_routes(deployed: Path) -> None:
    listed = ok(deployed, "endpoint", "list")
    assert NAME in listed and "m/1 90%, m/2 10%" in listed
    assert [e["name"] for e in ok_json(deployed, "endpoint", "list")] == [NAME]

    shown = ok(deployed, "endpoint", "show", NAME)
    assert f"endpoint {NAME} at revision 1" in shown
    assert "routes:   m/1 90%, m/2 10%" in shown
    assert "batching: up to 64 rows" in shown
    assert routes(ok_json(deployed, "endpoint", "show", NAME)) == [("m", 1, 90), ("m", 2, 10)]


def test_shadows_aliases_and_batching(models: Path) -> None:
    ok(models, "alias", "set", "m", "champion", "1")
    created = ok_json(
        models,
        "endpoint",
        "create",
        NAME,
        "--route",
        "m@champion=100,follow",
        "--shadow",
        "m/2",
        "--max-batch-size",
        "8",
    )
    route = created["spec"]["routes"][0]
    assert (route["version"], route["alias"], route["follow"]) == (1, "champion", True)
    assert [s["version"] for s in created["spec"]["shadows"]] == [2]
    assert created["spec"]["batching"]["max_batch_size"] == 8
    shown = ok(models, "endpoint", "show", NAME)
    assert "m/1 (via @champion, following) 100%" in shown and "shadows:  m/2" in shown

    dropped = ok_json(models, "endpoint", "update", NAME, "--no-shadows")
    assert dropped["revision"] == 2 and dropped["spec"]["shadows"] == []
    assert dropped["spec"]["routes"] == created["spec"]["routes"]


def test_scaling_settings_and_their_delays_are_kept_and_shown(deployed: Path) -> None:
    scaling = ["--min-replicas", "2", "--max-replicas", "4", "--target-ongoing-requests", "3"]
    updated = ok_json(deployed, "endpoint", "update", NAME, *scaling, "--downscale-delay", "5")
    batching = updated["spec"]["batching"]
    assert (batching["min_replicas"], batching["max_replicas"]) == (2, 4)
    assert (batching["upscale_delay_s"], batching["downscale_delay_s"]) == (3.0, 5.0)
    again = ok_json(deployed, "endpoint", "update", NAME, "--upscale-delay", "0.5")
    assert again["spec"]["batching"] == {**batching, "upscale_delay_s": 0.5}
    shown = ok(deployed, "endpoint", "show", NAME)
    assert "0.5 s before adding and 5 s before removing one" in " ".join(shown.split())
    line = refused(deployed, "endpoint", "update", NAME, "--downscale-delay", "-1")
    assert line == "error: downscale_delay_s must be between 0 and 3600 seconds, got -1.0"


def test_bad_input_is_one_error_line(deployed: Path, tmp_path: Path) -> None:
    line = refused(deployed, "endpoint", "create", "other", "--route", "m/1")
    assert line.startswith("error: invalid route 'm/1'") and "MODEL/VERSION=WEIGHT" in line
    line = refused(
        deployed, "endpoint", "create", "other", "--route", "m/1=50", "--route", "m/2=20"
    )
    assert line == "error: route weights must add up to 100, got 50 + 20 = 70"
    line = refused(deployed, "endpoint", "update", NAME, "--route", "m/1=50", "--route", "m/2=20")
    assert "must add up to 100" in line
    assert "has no version 9" in refused(deployed, "endpoint", "update", NAME, "--route", "m/9=100")
    assert "already exists" in refused(deployed, "endpoint", "create", NAME, "--route", "m/1=100")
    assert "invalid endpoint name" in refused(
        deployed, "endpoint", "create", "Bad_Name", "--route", "m/1=100"
    )
    assert "already serves this at revision 1" in refused(
        deployed, "endpoint", "update", NAME, "--route", "m/1=90", "--route", "m/2=10"
    )
    assert "has no revision before 1" in refused(deployed, "endpoint", "rollback", NAME)
    assert "--shadow or --no-shadows, not both" in refused(
        deployed, "endpoint", "update", NAME, "--shadow", "m/2", "--no-shadows"
    )
    for command in ("show", "revisions", "rollback", "predictions", "accuracy", "compare"):
        line = refused(deployed, "endpoint", command, "nope")
        assert line == "error: endpoint 'nope' does not exist", command
    assert ok_json(deployed, "endpoint", "show", NAME)["revision"] == 1  # nothing changed


def test_label_needs_a_file_or_an_id(deployed: Path, tmp_path: Path) -> None:
    line = refused(deployed, "endpoint", "label", NAME)
    assert line == "error: give a FILE of labels, or --id and --label"
    assert "give a FILE of labels" in refused(deployed, "endpoint", "label", NAME, "--id", "x")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\na,1\n")
    both = refused(deployed, "endpoint", "label", NAME, str(labels), "--id", "a", "--label", "1")
    assert "not both" in both
    assert "no such file" in refused(deployed, "endpoint", "label", NAME, str(tmp_path / "x.csv"))
    text = tmp_path / "labels.txt"
    text.write_text("a,1\n")
    assert "use a .csv or .parquet file" in refused(deployed, "endpoint", "label", NAME, str(text))
    headless = tmp_path / "headless.csv"
    headless.write_text("a,1\n")
    assert "needs the columns id and label" in refused(
        deployed, "endpoint", "label", NAME, str(headless)
    )
    line = refused(deployed, "endpoint", "label", "nope", "--id", "a", "--label", "1")
    assert line == "error: endpoint 'nope' does not exist"


def test_label_reports_unknown_ids(deployed: Path, tmp_path: Path) -> None:
    result = ok_json(deployed, "endpoint", "label", NAME, "--id", "nope", "--label", "1")
    assert result == {"recorded": 0, "unknown": ["nope"]}
    out = ok(deployed, "endpoint", "label", NAME, "--id", "nope", "--label", "cat")
    assert "recorded 0 label(s)" in out and "1 unknown prediction id(s): nope" in out

    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n007,1\nb2,0\n")
    result = ok_json(deployed, "endpoint", "label", NAME, str(labels))
    assert result == {"recorded": 0, "unknown": ["007", "b2"]}  # ids stay text: '007'
    parquet = tmp_path / "labels.parquet"
    pd.DataFrame({"id": ["p1"], "label": [1]}).to_parquet(parquet)
    assert ok_json(deployed, "endpoint", "label", NAME, str(parquet))["unknown"] == ["p1"]


def test_no_traffic_reads_empty(deployed: Path, tmp_path: Path) -> None:
    assert ok(deployed, "endpoint", "predictions", NAME, "--json").strip() == "[]"
    assert ok(deployed, "endpoint", "accuracy", NAME, "--json").strip() == "[]"
    assert ok(deployed, "endpoint", "compare", NAME, "--json").strip() == "[]"
    assert f"predictions of {NAME}" in ok(deployed, "endpoint", "predictions", NAME)

    target = tmp_path / "x.txt"
    line = refused(deployed, "endpoint", "predictions", NAME, "--output", str(target))
    assert "use a .parquet or .csv file name" in line
    assert not target.exists()
    written = tmp_path / "x.csv"
    out = ok(deployed, "endpoint", "predictions", NAME, "--output", str(written))
    assert "wrote 0 predictions" in out
    assert list(pd.read_csv(written).columns)[:3] == ["id", "endpoint", "revision"]


def write_traffic(home: Path) -> None:
    """Two predictions of m/1 written straight into the embedded log (as a serve process would)."""
    stamp = time.time_ns() // 1_000_000
    journal = Journal(home / "predictions" / NAME)
    journal.append(
        b"".join(
            record_line(
                id=prediction_id,
                endpoint=NAME,
                revision=1,
                model="m",
                version=1,
                role="primary",
                ts=stamp + n,
                latency_ms=1.0,
                input=b'{"sepal_length": 5.1}',
                output=output,
                scores=None,
            )
            for n, (prediction_id, output) in enumerate([("a1", b"0"), ("a2", b"1")])
        )
    )
    journal.close()


def test_labels_and_accuracy_over_logged_traffic(deployed: Path, tmp_path: Path) -> None:
    write_traffic(deployed)
    rows = ok_json(deployed, "endpoint", "predictions", NAME)
    assert [r["id"] for r in rows] == ["a2", "a1"]  # newest first
    assert all(pd.isna(r["label"]) for r in rows)  # None once --json prints real JSON
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\na1,0\na2,0\nzz,1\n")
    assert ok_json(deployed, "endpoint", "label", NAME, str(labels)) == {
        "recorded": 2,
        "unknown": ["zz"],
    }
    rows = ok_json(deployed, "endpoint", "predictions", NAME, "--id", "a2")
    assert [(r["id"], r["output"], r["label"]) for r in rows] == [("a2", "1", "0")]
    accuracy = ok_json(deployed, "endpoint", "accuracy", NAME)
    assert [(a["version"], a["role"], a["predictions"], a["labelled"]) for a in accuracy] == [
        (1, "primary", 2, 2)
    ]
    assert accuracy[0]["accuracy"] == pytest.approx(0.5)


def strict_json(text: str) -> Any:
    """Parse as RFC 8259 JSON: NaN and Infinity are not JSON (jq and JSON.parse reject them)."""

    def reject(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=reject)


def test_json_of_unlabelled_predictions_is_valid_json(deployed: Path) -> None:
    write_traffic(deployed)
    rows = strict_json(ok(deployed, "endpoint", "predictions", NAME, "--json"))
    assert [(r["id"], r["label"], r["error"]) for r in rows] == [
        ("a2", None, None),
        ("a1", None, None),
    ]
    accuracy = strict_json(ok(deployed, "endpoint", "accuracy", NAME, "--json"))
    assert [(a["labelled"], a["accuracy"]) for a in accuracy] == [(0, None)]


def test_predictions_show_the_latest_newest_first(deployed: Path, tmp_path: Path) -> None:
    write_traffic(deployed)
    newest = ok_json(deployed, "endpoint", "predictions", NAME, "--limit", "1")
    assert [r["id"] for r in newest] == ["a2"]  # the latest, not the first ever logged
    table = ok(deployed, "endpoint", "predictions", NAME)
    assert table.index("a2") < table.index("a1")
    oldest = ok_json(deployed, "endpoint", "predictions", NAME, "--oldest-first", "--limit", "1")
    assert [r["id"] for r in oldest] == ["a1"]
    written = tmp_path / "all.csv"
    ok(deployed, "endpoint", "predictions", NAME, "--output", str(written))
    assert list(pd.read_csv(written)["id"]) == ["a1", "a2"]  # a file keeps time order


def test_exports_write_moments_as_utc_timestamps_alike(deployed: Path, tmp_path: Path) -> None:
    write_traffic(deployed)
    as_csv, as_parquet = tmp_path / "p.csv", tmp_path / "p.parquet"
    ok(deployed, "endpoint", "predictions", NAME, "--output", str(as_csv))
    ok(deployed, "endpoint", "predictions", NAME, "--output", str(as_parquet))
    schema = pq.read_schema(as_parquet)
    assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    from_csv = pd.read_csv(as_csv, parse_dates=["ts"])
    from_parquet = pd.read_parquet(as_parquet)
    assert str(from_csv["ts"].dtype).startswith("datetime64") and from_csv["ts"].dt.tz is not None
    assert list(from_csv["ts"]) == list(from_parquet["ts"])
    assert from_csv["ts"].iloc[0].year >= 2024  # milliseconds, read as such


def test_compare_prints_a_dash_for_no_agreement(deployed: Path) -> None:
    write_traffic(deployed)
    [primary] = strict_json(ok(deployed, "endpoint", "compare", NAME, "--json"))
    assert (primary["role"], primary["requests"], primary["agreement"]) == ("primary", 2, None)
    table = ok(deployed, "endpoint", "compare", NAME)
    assert "nan" not in table and "m/1" in table


def test_tables_show_a_dash_where_a_value_is_missing(deployed: Path) -> None:
    write_traffic(deployed)
    table = ok(deployed, "endpoint", "predictions", NAME)
    assert "nan" not in table and "<NA>" not in table
    [line] = [line for line in table.splitlines() if " a1 " in line]
    cells = [cell.strip() for cell in line.split("│")]
    assert cells[6:8] == ["-", "-"]  # no label, no error
