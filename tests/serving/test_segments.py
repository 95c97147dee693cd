"""Compaction of the file prediction log: many small segments become a few large ones,
and no reader sees a row twice or misses one while it happens."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import bootstrap
from modelyard.monitoring.worker import Worker
from modelyard.serving import segments
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.segments import compact, drop_replaced, exclusive, live_segments
from tests.conftest import sqlite_settings
from tests.serving.test_predictlog import line, subject_line


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PredictionLog:
    monkeypatch.setattr(segments, "COMPACT_AFTER", 4)
    return PredictionLog(tmp_path / "predictions")


def close_journals(log: PredictionLog, count: int, *, first: int = 0, per: int = 3) -> list[str]:
    """``count`` journals of ``per`` rows each, closed by their writer; their ids."""
    ids = []
    for number in range(first, first + count):
        journal = log.journal("ep")
        batch = [f"j{number}-r{row}" for row in range(per)]
        journal.append(b"".join(line(i, ts=1000 + number * 10 + r) for r, i in enumerate(batch)))
        journal.close()
        ids += batch
    return ids


def on_disk(log: PredictionLog) -> list[str]:
    return sorted(p.name for p in (log.root / "ep").glob("segment-*.parquet"))


def test_small_segments_are_merged_into_one_sorted_by_time(files: PredictionLog) -> None:
    ids = close_journals(files, 6)
    assert sorted(files.query("ep", limit=None).column("id").to_pylist()) == sorted(ids)
    folder = files.root / "ep"
    live = live_segments(folder).segments
    assert len(live) == 1 and "-m" in live[0].name  # six sealed, then merged
    merged = pq.read_table(live[0])
    assert merged.column("ts").to_pylist() == sorted(merged.column("ts").to_pylist())
    assert len(on_disk(files)) == 7  # the six sources stay for queries that listed them
    drop_replaced(folder, grace=0)
    assert on_disk(files) == [live[0].name]
    assert sorted(files.table("ep").column("id").to_pylist()) == sorted(ids)


def test_merged_segments_are_merged_again_without_doubles(files: PredictionLog) -> None:
    first = close_journals(files, 4)
    files.count("ep")  # merged once
    second = close_journals(files, 4, first=4)
    assert files.count("ep") == len(first) + len(second)  # the merged one merged again
    folder = files.root / "ep"
    [live] = live_segments(folder).segments
    assert len(segments._replaces(live)) == 9  # eight journals and the first merge
    drop_replaced(folder, grace=0)
    assert sorted(files.table("ep").column("id").to_pylist()) == sorted(first + second)


def test_a_query_listed_before_a_merge_still_reads_its_files(files: PredictionLog) -> None:
    ids = close_journals(files, 5)
    folder = files.root / "ep"
    segments.seal_closed(folder)
    listed = live_segments(folder).segments
    assert len(listed) == 5
    with exclusive(folder):
        assert compact(folder) == 5
    table = pq.ParquetDataset(listed).read()  # what a query planned before the merge reads
    assert sorted(table.column("id").to_pylist()) == sorted(ids)


def test_a_sealed_journal_sealed_again_after_its_merge_stays_hidden(
    files: PredictionLog,
) -> None:
    ids = close_journals(files, 4)
    folder = files.root / "ep"
    segments.seal_closed(folder)
    [first] = [p for p in folder.glob("segment-*.parquet")][:1]
    token = first.name.removeprefix("segment-").removesuffix(".parquet")
    saved = first.read_bytes()
    files.count("ep")  # merged
    drop_replaced(folder, grace=0)
    (folder / f"journal-{token}.jsonl").write_bytes(b"")  # a sealer that died before unlink
    first.write_bytes(saved)  # and its segment, written again
    assert sorted(files.table("ep").column("id").to_pylist()) == sorted(ids)
    assert files.count("ep") == len(ids)


def test_erasure_reaches_merged_segments_and_leaves_no_replaced_file(
    files: PredictionLog,
) -> None:
    folder = files.root / "ep"
    for number in range(5):
        journal = files.journal("ep")
        journal.append(subject_line(f"a{number}", "c1") + subject_line(f"b{number}", "c2"))
        journal.close()
    assert files.count("ep") == 10  # sealed and merged; the sources stay for a while
    assert len(on_disk(files)) == 6
    assert files.erase("ep", "customer", "c1") == 5
    [merged] = on_disk(files)
    stored = pq.read_table(folder / merged)
    assert sorted(stored.column("id").to_pylist()) == [f"b{n}" for n in range(5)]
    assert len(segments._replaces(folder / merged)) == 5  # the rewrite kept what it replaces


def test_prune_rewrites_a_merged_segment(files: PredictionLog) -> None:
    close_journals(files, 4, per=2)  # ts 1000..1031
    assert files.prune("ep", before=1020) == 4
    assert files.count("ep") == 4
    [merged] = on_disk(files)
    assert "-m" in merged


def test_readers_never_see_doubles_or_gaps_while_journals_are_sealed_and_merged(
    files: PredictionLog,
) -> None:
    expected = len(close_journals(files, 3))
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            written_before = expected  # rows closed before this read began
            ids = files.table("ep").column("id").to_pylist()
            if len(ids) != len(set(ids)):
                problems.append(f"{len(ids) - len(set(ids))} doubles")
            if len(ids) < written_before:
                problems.append(f"{len(ids)} rows, at least {written_before} expected")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(30):
            written = close_journals(files, 3, first=100 + 3 * round_)
            expected += len(written)
            assert files.count("ep") == expected
            drop_replaced(files.root / "ep", grace=0)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert problems == []
    assert len(live_segments(files.root / "ep").segments) < 8


def test_the_monitor_worker_seals_and_compacts_a_log_nobody_reads(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "COMPACT_AFTER", 4)
    services = bootstrap(sqlite_settings(home))
    try:
        ids = close_journals(services.predictions, 5)
        other = services.predictions.journal("other")
        other.append(line("o-1"))
        other.close()
        folder = services.predictions.root / "ep"
        assert len(list(folder.glob("journal-*.jsonl"))) == 5
        Worker(
            services.monitors, services.predictions
        ).run_once()  # no monitor exists: only the log is looked after
        assert not list(folder.glob("journal-*.jsonl"))
        assert len(live_segments(folder).segments) == 1
        assert not list((services.predictions.root / "other").glob("journal-*.jsonl"))
        assert sorted(services.predictions.table("ep").column("id").to_pylist()) == sorted(ids)
        assert services.predictions.maintain() == (0, 0)  # nothing left to do
    finally:
        services.close()


def test_a_full_disk_while_sealing_or_merging_never_fails_a_read(
    files: PredictionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = close_journals(files, 5)
    folder = files.root / "ep"
    real_write = pq.write_table

    def disk_full(table: object, where: object, **options: object) -> None:
        Path(str(where)).write_bytes(b"PAR1 half")  # a write that stopped half-way
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    assert sorted(files.table("ep").column("id").to_pylist()) == sorted(ids)
    assert files.count("ep") == len(ids)
    assert len(list(folder.glob("journal-*.jsonl"))) == 5  # still there, read as they are
    assert not list(folder.glob(".*.tmp"))  # nothing half-written is left
    monkeypatch.setattr(pq, "write_table", real_write)
    assert files.count("ep") == len(ids)  # the disk has room again: sealed and merged
    assert not list(folder.glob("journal-*.jsonl"))
    assert len(live_segments(folder).segments) == 1


def test_a_journal_its_writer_never_named_is_removed_once_abandoned(files: PredictionLog) -> None:
    ids = close_journals(files, 1)
    folder = files.root / "ep"
    abandoned = folder / ".journal-1-2-dead.jsonl.new"  # a writer died before renaming it
    abandoned.write_bytes(b"")
    recent = folder / ".journal-3-4-busy.jsonl.new"
    recent.write_bytes(b"")
    os.utime(abandoned, (time.time() - 120, time.time() - 120))
    assert files.query("ep").column("id").to_pylist() == ids
    assert not abandoned.exists()
    assert recent.exists()  # a writer may be naming it right now
