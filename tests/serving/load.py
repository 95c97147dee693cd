"""Prediction load from client threads, and the ids the server acknowledged.

Crash tests kill a process in the middle of it: a request the server answered 200 has
its ids in ``acknowledged`` (they must be in the log), one it never answered counts as
``unanswered`` (a connection the kill broke: nothing was promised), any other answer
is in ``statuses``.

>>> with Load(serve.url, "churn", key, rows, threads=4) as load:
...     load.wait_for(400)
...     serve.kill()
>>> load.sent, len(load.acknowledged), load.unanswered
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType
from typing import Any

import httpx


class Load:
    """``threads`` clients posting ``rows`` to ``endpoint`` at ``url`` until stopped, each
    ``pause`` seconds between an answer and its next request."""

    def __init__(
        self,
        url: str,
        endpoint: str,
        key: str,
        rows: list[dict[str, Any]],
        *,
        threads: int = 4,
        pause: float = 0.0,
    ) -> None:
        self.url = url
        self.endpoint = endpoint
        self.key = key
        self.rows = rows
        self.threads = threads
        self.pause = pause
        self.acknowledged: list[str] = []
        self.sent = 0
        self.unanswered = 0
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Load:
        self._workers = [threading.Thread(target=self._client) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` ids are acknowledged (or ``timeout`` seconds have passed)."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def failed(self) -> int:
        """Requests not answered 200: unanswered, or any other status."""
        return self.unanswered + sum(n for status, n in self.statuses.items() if status != 200)

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        route = f"{self.url}/endpoints/{self.endpoint}/predict"
        with httpx.Client(headers=headers, timeout=10) as http:
            while not self._stop.is_set():
                with self._lock:
                    self.sent += 1
                try:
                    answer = http.post(route, json={"records": self.rows})
                except httpx.HTTPError:
                    with self._lock:
                        self.unanswered += 1
                    return  # the server died mid-request: nothing was acknowledged
                with self._lock:
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        self.acknowledged.extend(answer.json()["ids"])
                self._stop.wait(self.pause)
