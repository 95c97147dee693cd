"""A closed-loop HTTP load generator for the soak tests: single requests over keep-alive
connections from one or more processes, every status, latency and prediction id kept.

Each process runs uvloop with one HTTP/1.1 connection per worker; answers are parsed by
httptools (llhttp, what uvicorn parses requests with). httpx cost the load process
several times the server's CPU per request, which on two shared cores made the client the
bottleneck. A failed request is counted and never sent again (that could log it twice).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools
import orjson
import uvloop
from processes import run_together  # benchmarks/ is on sys.path when run

REQUEST_TIMEOUT = 30.0
LOAD_TIMEOUT = 3600.0  # seconds the whole load may take


@dataclass
class Share:
    """What one load process sends: ``requests[i % len(requests)]`` for i = ``first``,
    ``first + stride``, ... below ``total``, from ``workers`` connections, at most
    ``rate`` a second (0: as fast as the answers come)."""

    host: str
    port: int
    requests: list[bytes]  # whole HTTP/1.1 requests, headers and body
    total: int
    first: int
    stride: int
    workers: int
    rate: float


@dataclass
class Outcome:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, 200 answers only
    ids: list[str] = field(default_factory=list)  # acknowledged prediction ids
    refs: list[str] = field(default_factory=list)  # the version that answered each id
    versions: Counter[str] = field(default_factory=Counter)  # x-modelyard-version of 200s
    started: float = math.inf  # wall-clock times of the first request and the last answer
    finished: float = 0.0
    cpu_seconds: float = 0.0

    def acknowledge(self, body: bytes, version: str) -> None:
        """Keep the ids of a 200 answer and the version it names."""
        ids = orjson.loads(body)["ids"]
        self.ids += ids
        self.refs += [version] * len(ids)
        self.versions[version] += 1


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, answers parsed by
    httptools (llhttp, what uvicorn parses requests with). httpx costs the load process
    several times the server's CPU per request; on two shared cores that made the client
    the bottleneck."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, bytes, str]] | None = None
        self.body = bytearray()
        self.version = ""

    async def send(self, request: bytes) -> tuple[int, bytes, str]:
        """(status, body, x-modelyard-version) of ``request``'s answer."""
        if self.transport is None:
            raise ConnectionResetError("the connection is closed")
        self.body.clear()
        self.version = ""
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-modelyard-version":
            self.version = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result((self.parser.get_status_code(), bytes(self.body), self.version))

    def _fail(self, exc: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)


async def _connect(share: Share) -> Connection:
    _, connection = await asyncio.get_running_loop().create_connection(
        Connection, share.host, share.port
    )
    return connection


async def _worker(connection: Connection, share: Share, queue: list[int], out: Outcome) -> None:
    """Send the queue's requests one after the other (the n-th of this process not before
    n / rate seconds after the start); a failed request is counted, never sent again
    (that could log it twice), and the next one gets a new connection."""
    loop = asyncio.get_running_loop()
    planned = len(queue)
    while queue:
        position = planned - len(queue)
        request = share.requests[queue.pop() % len(share.requests)]
        if share.rate and (wait := out.started + position / share.rate - time.time()) > 0:
            await asyncio.sleep(wait)
        started = loop.time()
        try:
            if connection.transport is None:
                connection = await _connect(share)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status, body, version = await connection.send(request)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            out.statuses[type(exc).__name__] += 1
            connection.close()
            continue
        out.statuses[str(status)] += 1
        if status == 200:
            out.latencies.append(loop.time() - started)
            out.acknowledge(body, version)
    connection.close()


async def _drive(share: Share, start: Callable[[], None]) -> Outcome:
    queue = list(range(share.first, share.total, share.stride))[::-1]
    out = Outcome()
    connections = [await _connect(share) for _ in range(share.workers)]
    start()
    out.started, cpu = time.time(), time.process_time()
    await asyncio.gather(*(_worker(c, share, queue, out) for c in connections))
    out.cpu_seconds = time.process_time() - cpu
    out.finished = time.time()
    return out


def run_share(share: Share, start: Callable[[], None]) -> Outcome:
    """Entry point of a load process: its connections made, ``start()``, then the requests."""
    return uvloop.run(_drive(share, start))


def http_request(port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def merge(outcomes: list[Outcome]) -> Outcome:
    merged = Outcome()
    for outcome in outcomes:
        merged.statuses += outcome.statuses
        merged.latencies += outcome.latencies
        merged.ids += outcome.ids
        merged.refs += outcome.refs
        merged.versions += outcome.versions
        merged.cpu_seconds += outcome.cpu_seconds
        merged.started = min(merged.started, outcome.started)
        merged.finished = max(merged.finished, outcome.finished)
    return merged


def run(
    port: int, requests: list[bytes], total: int, concurrency: int, processes: int, rate: float
) -> tuple[Outcome, float]:
    """``total`` requests (cycling through ``requests``) to 127.0.0.1:``port`` from
    ``concurrency`` workers in ``processes`` processes, at most ``rate`` a second (0: no
    limit); (outcome, seconds from the first request sent to the last answer)."""
    processes = max(1, min(processes, concurrency))
    shares = [
        Share(
            "127.0.0.1",
            port,
            requests,
            total,
            first,
            processes,
            len(range(first, concurrency, processes)),
            rate / processes,
        )
        for first in range(processes)
    ]
    merged = merge(run_together(run_share, shares, LOAD_TIMEOUT))
    return merged, merged.finished - merged.started
