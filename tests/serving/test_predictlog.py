"""The prediction log on disk: journals, sealing, recovery, queries and labels."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from modelyard.domain.actors import os_user
from modelyard.errors import InvalidInput, StorageUnavailable
from modelyard.serving.journal import canonical, record_line
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.segments import recover
from modelyard.serving.sqllog import SqlPredictionLog
from tests.actors import as_user
from tests.disk import small_disk
from tests.stores import services_on


def line(
    prediction_id: str,
    *,
    version: int = 1,
    role: str = "primary",
    ts: int = 1000,
    output: object = 1,
    error: str | None = None,
    model: str = "m",
) -> bytes:
    return record_line(
        id=prediction_id,
        endpoint="ep",
        revision=1,
        model=model,
        version=version,
        role=role,
        ts=ts,
        latency_ms=1.5,
        input=orjson.dumps({"x": 1.0}),
        output=None if error else canonical(output).encode(),
        scores=None,
        error=error,
    )


@pytest.fixture
def files(tmp_path: Path) -> PredictionLog:
    return PredictionLog(tmp_path / "predictions")


@pytest.fixture(params=["files", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionLog]:
    """The same log over files, and over the metadata database (SQLite, PostgreSQL)."""
    if request.param == "files":
        yield PredictionLog(tmp_path / "predictions")
        return
    with services_on(request.param, tmp_path) as services:
        yield SqlPredictionLog(services.db)


def write(log: PredictionLog, endpoint: str, lines: bytes) -> None:
    journal: Any = log.journal(endpoint)  # the database log's append answers a future
    committed = journal.append(lines)
    if committed is not None:
        committed.result(timeout=30)
    journal.close()


def test_canonical_values_compare_equal_across_types() -> None:
    import numpy as np

    assert canonical(1) == canonical(1.0) == canonical(np.int64(1)) == "1"
    assert canonical(0.5) == "0.5" and canonical("yes") == '"yes"'


def test_open_journal_is_read_and_a_torn_last_line_is_ignored(files: PredictionLog) -> None:
    journal = files.journal("ep")
    journal.append(line("a") + line("b"))
    with open(journal.path, "ab") as raw:
        raw.write(line("c")[:20])  # a crash in the middle of a write
    assert sorted(files.table("ep").column("id").to_pylist()) == ["a", "b"]
    journal.close()


def test_a_reader_seals_closed_journals_into_segments_without_loss_or_doubles(
    files: PredictionLog,
) -> None:
    journal = files.journal("ep")
    journal.append(line("a"))
    journal.rotate()  # closed: the writer goes on in a new journal and never seals
    journal.append(line("b"))
    folder = files.root / "ep"
    assert len(list(folder.glob("journal-*.jsonl"))) == 2
    assert not list(folder.glob("segment-*.parquet"))
    assert sorted(files.table("ep").column("id").to_pylist()) == ["a", "b"]  # reading seals
    assert len(list(folder.glob("segment-*.parquet"))) == 1
    assert [p.name for p in folder.glob("journal-*.jsonl")] == [journal.path.name]
    journal.close()
    assert sorted(files.query("ep").column("id").to_pylist()) == ["a", "b"]
    assert not list(folder.glob("journal-*"))
    assert len(list(folder.glob("segment-*.parquet"))) == 2
    assert sorted(files.table("ep").column("id").to_pylist()) == ["a", "b"]


def test_an_empty_journal_is_removed_when_closed(files: PredictionLog) -> None:
    journal = files.journal("ep")
    journal.rotate()  # nothing written: nothing to rotate
    journal.close()
    assert not list((files.root / "ep").iterdir())


def test_recover_seals_only_journals_whose_writer_is_gone(files: PredictionLog) -> None:
    alive = files.journal("ep")
    alive.append(line("live"))
    folder = files.root / "ep"
    orphan = folder / "journal-orphan-1.jsonl"
    orphan.write_bytes(line("dead-1") + line("dead-2"))
    assert recover(files.root) == 1
    assert not orphan.exists() and (folder / "segment-orphan-1.parquet").is_file()
    assert alive.path.exists()  # still locked by its writer
    ids = sorted(files.table("ep").column("id").to_pylist())
    assert ids == ["dead-1", "dead-2", "live"]
    alive.close()


def test_a_journal_is_locked_while_its_writer_lives(files: PredictionLog) -> None:
    journal = files.journal("ep")
    fd = os.open(journal.path, os.O_RDONLY)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    journal.close()


def test_query_filters_by_version_role_time_and_id(log: PredictionLog) -> None:
    write(
        log,
        "ep",
        line("a", version=1, ts=1000)
        + line("b", version=2, ts=2000)
        + line("b", version=3, role="shadow", ts=2000)
        + line("c", version=1, ts=3000),
    )

    def ids(table: pa.Table) -> list[str]:
        return list(table.column("id").to_pylist())

    assert ids(log.query("ep", version=1)) == ["a", "c"]
    assert ids(log.query("ep", role="shadow")) == ["b"]
    assert ids(log.query("ep", since=2000, until=3000)) == ["b", "b"]
    assert ids(log.query("ep", ids=["c", "zzz"])) == ["c"]
    assert ids(log.query("ep", limit=1)) == ["a"]
    with pytest.raises(InvalidInput, match="role must be"):
        log.query("ep", role="boss")
    with pytest.raises(InvalidInput, match="limit must be"):
        log.query("ep", limit=0)


def test_query_and_count_take_several_roles(log: PredictionLog) -> None:
    write(
        log,
        "ep",
        line("a", ts=1000)
        + line("b", role="batch", ts=1500)
        + line("b", version=2, role="shadow", ts=1500),
    )
    log.count("ep")  # the file log seals that journal: the rest is read from a segment
    write(log, "ep", line("c", role="batch", ts=2000) + line("d", ts=3000))

    def rows(table: pa.Table) -> list[tuple[str, str]]:
        return list(
            zip(table.column("id").to_pylist(), table.column("role").to_pylist(), strict=True)
        )

    both = [("a", "primary"), ("b", "batch"), ("c", "batch"), ("d", "primary")]
    assert rows(log.query("ep", role=["primary", "batch"])) == both
    assert rows(log.query("ep", role=("batch", "primary"), since=1500, limit=2)) == both[1:3]
    assert rows(log.query("ep", role=["batch", "primary"], offset=3)) == both[3:]
    assert rows(log.query("ep", role=["batch"])) == rows(log.query("ep", role="batch"))
    assert rows(log.query("ep", role="primary")) == [("a", "primary"), ("d", "primary")]
    assert log.count("ep", role=["primary", "batch"]) == 4
    assert log.count("ep", role=["primary", "batch"], until=2000) == 2
    assert log.count("ep", role=["primary", "shadow", "batch"]) == log.count("ep") == 5
    assert log.count("ep", role="batch") == 2
    with pytest.raises(InvalidInput, match="got 'boss'"):
        log.query("ep", role=["primary", "boss"])
    with pytest.raises(InvalidInput, match="got 'boss'"):
        log.count("ep", role=["boss"])
    with pytest.raises(InvalidInput, match="at least one"):
        log.query("ep", role=[])


def test_labels_last_wins_history_kept_unknown_reported(log: PredictionLog) -> None:
    write(log, "ep", line("a", output=1) + line("b", output=0) + line("c", output=1))
    first = as_user("u", log.record_labels, "ep", [("a", 1), ("b", 1), ("ghost", 0), ("ghost", 1)])
    assert first.recorded == 2 and first.unknown == ["ghost"]
    accuracy = {(r["version"], r["role"]): r for r in log.accuracy("ep")}
    assert accuracy[(1, "primary")]["labelled"] == 2
    assert accuracy[(1, "primary")]["accuracy"] == pytest.approx(0.5)
    log.record_labels("ep", [("b", 0.0)])  # a late correction, as a float
    accuracy = {(r["version"], r["role"]): r for r in log.accuracy("ep")}
    assert accuracy[(1, "primary")]["accuracy"] == pytest.approx(1.0)
    assert [h["label"] for h in log.label_history("ep", "b")] == [1, 0]
    assert [h["actor"] for h in log.label_history("ep", "b")] == ["u", os_user()]
    labelled = {r["id"]: r["label"] for r in log.query("ep").to_pylist()}
    assert labelled == {"a": "1", "b": "0", "c": None}
    with pytest.raises(InvalidInput, match="no labels"):
        log.record_labels("ep", [])


def test_compare_puts_primary_and_shadow_side_by_side(log: PredictionLog) -> None:
    rows = b""
    for i in range(10):
        rows += line(f"p{i}", output=1)
        rows += line(f"p{i}", model="s", role="shadow", output=1 if i < 8 else 0)
    rows += line("p10", output=1) + line("p10", model="s", role="shadow", error="boom")
    write(log, "ep", rows)
    log.record_labels("ep", [(f"p{i}", 1) for i in range(10)])
    found = {(r["model"], r["role"]): r for r in log.compare("ep")}
    shadow, primary = found[("s", "shadow")], found[("m", "primary")]
    assert shadow["requests"] == 11 and shadow["errors"] == 1
    assert shadow["agreement"] == pytest.approx(8 / 11)
    assert shadow["accuracy"] == pytest.approx(0.8) and primary["accuracy"] == pytest.approx(1.0)
    assert primary["agreement"] is None
    assert shadow["outputs"] == [{"value": 1, "share": 0.8}, {"value": 0, "share": 0.2}]


def test_endpoint_names_cannot_escape_the_log_folder(log: PredictionLog) -> None:
    with pytest.raises(InvalidInput, match="invalid endpoint name"):
        log.query("../secrets")


def test_prune_deletes_only_what_is_older_than_the_cutoff(log: PredictionLog) -> None:
    import time

    now = int(time.time() * 1000)
    write(log, "ep", line("old-1", ts=1000) + line("old-2", ts=2000))  # a segment of old rows
    write(log, "ep", line("old-3", ts=3000) + line("new-1", ts=now))  # a mixed one
    log.record_labels("ep", [("new-1", 1), ("old-1", 0)])
    assert log.prune("ep", now - 1000) == 3
    assert log.query("ep").column("id").to_pylist() == ["new-1"]
    assert log.prune("ep", now - 1000) == 0  # nothing left to delete
    assert [r["label"] for r in log.query("ep").to_pylist()] == ["1"]  # recent labels stay


def subject_line(prediction_id: str, customer: object, ts: int = 1000) -> bytes:
    return record_line(
        id=prediction_id,
        endpoint="ep",
        revision=1,
        model="m",
        version=1,
        role="primary",
        ts=ts,
        latency_ms=1.0,
        input=orjson.dumps({"customer": customer, "x": 1.0}),
        output=b"1",
        scores=None,
    )


def test_erasure_removes_every_row_and_label_of_one_subject(log: PredictionLog) -> None:
    write(log, "ep", subject_line("a", "c1") + subject_line("b", "c2") + subject_line("c", 7))
    write(log, "ep", subject_line("d", "c1") + subject_line("e", "c3"))
    log.record_labels("ep", [("a", 1), ("b", 0), ("d", 1)])
    assert log.erase("ep", "customer", "c1") == 2
    remaining = log.query("ep").to_pylist()
    assert sorted(r["id"] for r in remaining) == ["b", "c", "e"]
    assert {r["id"]: r["label"] for r in remaining}["b"] == "0"
    assert log.labels("ep").column("id").to_pylist() == ["b"]
    assert log.erase("ep", "customer", "7") == 1  # numbers match their text
    assert log.erase("ep", "customer", "nobody") == 0


def test_an_open_journal_forgets_an_erased_subject_when_read_and_sealed(
    files: PredictionLog,
) -> None:
    journal = files.journal("ep")
    journal.append(subject_line("a", "c1") + subject_line("b", "c2"))
    assert files.erase("ep", "customer", "c1") == 1
    assert files.query("ep").column("id").to_pylist() == ["b"]
    journal.append(subject_line("old", "c1", ts=2000))  # logged before the erasure
    later = int(time.time() * 1000) + 60_000
    journal.append(subject_line("new", "c1", ts=later))  # a later prediction is kept
    journal.close()  # sealed by the next read
    assert files.query("ep").column("id").to_pylist() == ["b", "new"]
    import pyarrow.parquet as pq

    sealed = [pq.read_table(p) for p in (files.root / "ep").glob("segment-*.parquet")]
    stored = [
        row for t in sealed for row in zip(t["id"].to_pylist(), t["input"].to_pylist(), strict=True)
    ]
    assert [i for i, x in stored if "c1" in x] == ["new"]  # nothing erased reached the disk


def test_labels_on_a_full_disk_are_refused_and_leave_no_temporary_file(tmp_path: Path) -> None:
    with small_disk(tmp_path / "predictions", "1m") as disk:
        files = PredictionLog(disk.path)
        journal = files.journal("ep")
        journal.append(line("a") + line("b"))
        journal.close()
        assert files.count("ep") == 2  # sealed while there is space
        filler = disk.fill()
        with pytest.raises(StorageUnavailable, match=r"^prediction log of endpoint 'ep' cannot"):
            files.record_labels("ep", [("a", 1)])
        with pytest.raises(StorageUnavailable, match="no space left on device"):
            files.erase("ep", "x", "1.0")  # the erasure cannot even be recorded
        assert not list(disk.path.rglob(".*.tmp"))
        disk.free(filler)
        assert files.record_labels("ep", [("a", 1)]).recorded == 1
        assert files.erase("ep", "x", "1.0") == 2
