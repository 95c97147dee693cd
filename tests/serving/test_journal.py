"""The journal on a disk that fills up or turns read-only: what it acknowledged stays whole."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from modelyard.serving.journal import Journal, record_line
from modelyard.serving.predictlog import PredictionLog
from tests.disk import SmallDisk, small_disk


def line(prediction_id: str, *, padding: int = 0) -> bytes:
    return record_line(
        id=prediction_id,
        endpoint="ep",
        revision=1,
        model="m",
        version=1,
        role="primary",
        ts=1000,
        latency_ms=1.5,
        input=orjson.dumps({"x": 1.0, "note": "n" * padding}),
        output=b"1",
        scores=None,
    )


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "predictions", "1m") as mounted:
        yield mounted


def ids(log: PredictionLog) -> list[str]:
    return sorted(log.table("ep").column("id").to_pylist())


def test_a_write_the_full_disk_refuses_is_cut_away_and_the_next_one_starts_a_new_journal(
    disk: SmallDisk,
) -> None:
    log = PredictionLog(disk.path)
    journal = log.journal("ep")
    journal.append(line("a") + line("b"))
    kept = journal.path.read_bytes()
    filler = disk.fill()  # what is left is the slack of the journal's last page
    with pytest.raises(OSError) as refused:
        journal.append(line("torn", padding=50_000))  # part of it fits: a short write
    assert refused.value.errno == errno.ENOSPC
    assert journal.path.read_bytes() == kept  # cut back to its last whole line, closed
    first = journal.path
    with pytest.raises(OSError):  # still full: no new journal stays behind
        journal.append(line("c"))
    assert sorted(p.name for p in first.parent.glob("journal-*")) == [first.name]
    disk.free(filler)
    journal.append(line("d"))  # space is back: a new journal, no restart
    assert journal.path != first
    assert ids(log) == ["a", "b", "d"]  # the closed one is sealed; nothing torn, nothing lost
    journal.close()


def test_a_read_only_disk_refuses_the_journal_until_it_is_writable_again(
    disk: SmallDisk,
) -> None:
    log = PredictionLog(disk.path)
    disk.remount(read_only=True)
    journal = log.journal("ep")  # the folder cannot even be made: the journal waits
    with pytest.raises(OSError) as refused:
        journal.append(line("a"))
    assert refused.value.errno == errno.EROFS
    disk.remount(read_only=False)
    journal.append(line("b"))
    filler = disk.fill()
    with pytest.raises(OSError):
        journal.append(line("c", padding=50_000))  # closes the journal it could not write
    disk.free(filler)
    disk.remount(read_only=True)  # possible now: nothing on the disk is open for writing
    with pytest.raises(OSError) as refused:
        journal.append(line("d"))
    assert refused.value.errno == errno.EROFS
    with pytest.raises(OSError):
        journal.probe()
    disk.remount(read_only=False)
    journal.probe()
    journal.append(line("e"))
    assert ids(log) == ["b", "e"]
    journal.close()


def test_sealing_on_a_full_disk_keeps_the_journal_and_reads_it_as_it_is(
    disk: SmallDisk,
) -> None:
    log = PredictionLog(disk.path)
    journal: Journal = log.journal("ep")
    journal.append(b"".join(line(f"p{i}", padding=2_000) for i in range(50)))
    closed = journal.path
    journal.close()
    filler = disk.fill()
    assert ids(log) == sorted(f"p{i}" for i in range(50))  # the seal failed; read as is
    folder = disk.path / "ep"
    assert closed.is_file()
    assert not list(folder.glob("segment-*")) and not list(folder.glob(".segment-*"))
    disk.free(filler)
    assert ids(log) == sorted(f"p{i}" for i in range(50))
    assert not closed.exists() and len(list(folder.glob("segment-*.parquet"))) == 1


def test_a_journal_with_a_torn_line_inside_stays_readable(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "predictions")
    folder = tmp_path / "predictions" / "ep"
    folder.mkdir(parents=True)
    torn = line("torn", padding=100)[:60]  # what a writer that did not cut it back left
    (folder / "journal-old-1.jsonl").write_bytes(line("a") + torn + line("b") + line("c"))
    assert ids(log) == ["a", "c"]  # b was glued onto the torn line: only it is lost
    assert len(list(folder.glob("segment-*.parquet"))) == 1
