"""Micro-batching: lone requests run at once, concurrent ones share a call, errors stay put."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from modelyard.serving.batching import Batcher


def test_concurrent_requests_share_calls_and_each_gets_its_own_answer() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def work(payloads: list[Any]) -> list[Any]:
        gate.wait(5)  # the first call holds until every request is queued
        sizes.append(len(payloads))
        return [p * 10 for p in payloads]

    async def main() -> list[Any]:
        batcher = Batcher("t", work, loop=asyncio.get_running_loop(), max_batch_size=8)
        futures = [batcher.submit(i, 1) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        answers = await asyncio.gather(*futures)
        batcher.stop()
        return answers

    assert asyncio.run(main()) == [i * 10 for i in range(20)]
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) <= 4


def test_a_lone_request_does_not_wait_for_company() -> None:
    def work(payloads: list[Any]) -> list[Any]:
        return payloads

    async def main() -> Any:
        batcher = Batcher(
            "t", work, loop=asyncio.get_running_loop(), max_batch_size=64, max_wait_ms=0
        )
        answer = await asyncio.wait_for(batcher.submit("x", 1), timeout=5)
        batcher.stop()
        return answer

    assert asyncio.run(main()) == "x"


def test_a_failing_request_fails_alone_and_a_failing_call_fails_its_batch() -> None:
    def work(payloads: list[Any]) -> list[Any]:
        if "crash" in payloads:
            raise RuntimeError("whole call failed")
        return [ValueError("bad") if p == "bad" else p for p in payloads]

    async def main() -> tuple[Any, Any, Any]:
        batcher = Batcher("t", work, loop=asyncio.get_running_loop(), max_batch_size=1)
        good, bad, crash = (
            batcher.submit("ok", 1),
            batcher.submit("bad", 1),
            batcher.submit("crash", 1),
        )
        results = await asyncio.gather(good, bad, crash, return_exceptions=True)
        batcher.stop()
        return tuple(results)  # type: ignore[return-value]

    good, bad, crash = asyncio.run(main())
    assert good == "ok"
    assert isinstance(bad, ValueError)
    assert isinstance(crash, RuntimeError) and "whole call" in str(crash)


def test_a_full_shadow_queue_drops_copies_instead_of_growing() -> None:
    release = threading.Event()
    done: list[Any] = []

    def work(payloads: list[Any]) -> list[Any]:
        release.wait(5)
        done.extend(payloads)
        return [None] * len(payloads)

    batcher = Batcher("s", work, loop=None, max_batch_size=1, max_queue=3)
    accepted = [batcher.offer(i, 1) for i in range(10)]
    release.set()
    batcher.stop()
    assert accepted.count(True) <= 4 and accepted[:3] == [True, True, True]
    assert sorted(done) == [i for i, ok in enumerate(accepted) if ok]


def test_a_held_batch_runs_as_soon_as_it_is_full() -> None:
    batches: list[list[int]] = []
    first = threading.Event()

    def work(payloads: list[Any]) -> list[Any]:
        batches.append(payloads)
        first.set()
        return [None] * len(payloads)

    # held open for ten minutes unless full: arrivals do not wake it, a full batch does
    batcher = Batcher("h", work, loop=None, max_batch_size=4, max_wait_ms=600_000)
    for i in range(6):
        batcher.offer(i, 1)
    assert first.wait(60), "a full batch waited for its hold to end"
    assert batches[0] == [0, 1, 2, 3]
    batcher.stop()  # the rest is finished on stop, without waiting out the hold
    assert [p for batch in batches for p in batch] == list(range(6))


def test_stop_finishes_what_is_queued() -> None:
    seen: list[int] = []

    def work(payloads: list[Any]) -> list[Any]:
        seen.extend(payloads)
        return payloads

    batcher = Batcher("t", work, loop=None, max_batch_size=4)
    for i in range(10):
        batcher.offer(i, 1)
    batcher.stop()
    assert sorted(seen) == list(range(10))


@pytest.mark.parametrize("size", [0, 5000])
def test_batching_settings_are_checked(size: int) -> None:
    from modelyard.domain.endpoints import Batching
    from modelyard.errors import InvalidInput

    with pytest.raises(InvalidInput, match="max_batch_size"):
        Batching(max_batch_size=size)
