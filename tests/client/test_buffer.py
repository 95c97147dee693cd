from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from modelyard.client.buffer import BATCH_LIMIT, MetricBuffer
from modelyard.domain.runs import MetricPoint
from modelyard.errors import Conflict


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[tuple[str, list[MetricPoint]]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        if self.fail:
            raise ConnectionError("store unavailable")
        with self.lock:
            self.batches.append((run_id, list(points)))

    def points(self, run_id: str) -> list[MetricPoint]:
        return [p for rid, batch in self.batches for p in batch if rid == run_id]


def test_points_are_written_in_batches_in_order() -> None:
    recorder = Recorder()
    buffer = MetricBuffer(recorder, interval=60)
    for step in range(BATCH_LIMIT + 5):
        buffer.add("r1", MetricPoint("loss", float(step), step, 1))
    buffer.add("r2", MetricPoint("acc", 1.0, 0, 1))
    buffer.flush("r1")
    written = recorder.points("r1")
    assert [p.step for p in written] == list(range(BATCH_LIMIT + 5))
    assert max(len(batch) for _, batch in recorder.batches) == BATCH_LIMIT
    assert recorder.points("r2") == []
    buffer.close()
    assert len(recorder.points("r2")) == 1


def test_background_thread_flushes_without_being_asked() -> None:
    recorder = Recorder()
    buffer = MetricBuffer(recorder, interval=0.05)
    buffer.add("r1", MetricPoint("loss", 1.0, 0, 1))
    deadline = time.monotonic() + 5
    while not recorder.points("r1") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(recorder.points("r1")) == 1
    buffer.close()


def test_a_transient_failure_keeps_points_for_the_next_flush() -> None:
    recorder = Recorder(fail=True)
    buffer = MetricBuffer(recorder, interval=60)
    buffer.add("r1", MetricPoint("loss", 1.0, 0, 1))
    with pytest.raises(ConnectionError, match="store unavailable"):
        buffer.flush("r1")
    buffer.add("r1", MetricPoint("loss", 2.0, 1, 1))
    recorder.fail = False
    buffer.flush("r1")
    assert [p.value for p in recorder.points("r1")] == [1.0, 2.0]


def test_a_refused_write_drops_points_and_says_why() -> None:
    def refuse(run_id: str, points: Sequence[MetricPoint]) -> None:
        raise Conflict(f"run '{run_id}' is FINISHED")

    buffer = MetricBuffer(refuse, interval=60)
    buffer.add("r1", MetricPoint("loss", 1.0, 0, 1))
    with pytest.raises(Conflict, match="FINISHED"):
        buffer.flush("r1")
    buffer.flush("r1")  # nothing left, no error left
