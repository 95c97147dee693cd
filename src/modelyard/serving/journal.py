"""The serving side of the prediction log: append-only journals of JSON lines.

A serving process (and its shadow process) keeps one journal per endpoint, under
the log root (``MODELYARD_HOME/predictions`` by default)::

    <endpoint>/journal-<token>.jsonl    a journal; its writer holds an flock on it

Durability: each batch's records go to the journal in one ``write`` *before* the
response is sent, so every acknowledged prediction is in the operating system's
hands and survives ``kill -9`` of the process.

A journal is closed (its lock released) when it reaches ``ROTATE_BYTES`` or
``ROTATE_SECONDS``, and the writer goes on in a new one. The writer never seals:
whoever reads the log (``serving/predictlog.py``: the API, the monitor worker, the
CLI) turns closed journals into Parquet segments. So the data plane needs neither
pyarrow nor DuckDB: it only formats JSON and writes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import orjson

COLUMNS = (
    "id",
    "endpoint",
    "revision",
    "model",
    "version",
    "role",
    "ts",
    "latency_ms",
    "input",
    "output",
    "scores",
    "error",
)
JOURNAL_NAME = re.compile(r"^journal-(?P<token>[A-Za-z0-9_\-]+)\.jsonl$")
ROTATE_BYTES = 16 * 1024 * 1024
ROTATE_SECONDS = 60.0


def canonical(value: Any) -> str:
    """A value as the log stores it: JSON, with integral floats written as integers.

    Predictions and labels go through the same function, so ``1``, ``1.0`` and
    ``numpy.int64(1)`` all compare equal.
    """
    return orjson.dumps(_plain(value), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, list | dict):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def subject_digest(value: Any) -> str:
    """How an erased subject is remembered: a SHA-256 of its text, never the value."""
    text = value if isinstance(value, str) else canonical(value)
    return hashlib.sha256(text.encode()).hexdigest()


def record_line(
    *,
    id: str,
    endpoint: str,
    revision: int,
    model: str,
    version: int,
    role: str,
    ts: int,
    latency_ms: float,
    input: bytes,
    output: bytes | None,
    scores: bytes | None,
    error: str | None = None,
) -> bytes:
    """One journal line. ``input``, ``output`` and ``scores`` are JSON already."""
    return (
        orjson.dumps(
            {
                "id": id,
                "endpoint": endpoint,
                "revision": revision,
                "model": model,
                "version": version,
                "role": role,
                "ts": ts,
                "latency_ms": latency_ms,
                "input": input.decode(),
                "output": output.decode() if output is not None else None,
                "scores": scores.decode() if scores is not None else None,
                "error": error,
            }
        )
        + b"\n"
    )


class Journal:
    """The append-only journal one serving process keeps for one endpoint.

    >>> journal = Journal(root / "churn")
    >>> journal.append(lines)  # durable against a crash of this process on return
    >>> if journal.due():
    ...     journal.rotate()  # the closed journal waits for a reader to seal it
    >>> journal.close()
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        self.token = f"{int(time.time() * 1000):013d}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = self.directory / f"journal-{self.token}.jsonl"
        # created under a name readers ignore and locked before it gets its own: a reader
        # must never take a journal this writer has not locked yet for an abandoned one
        hidden = self.directory / f".journal-{self.token}.jsonl.new"
        self._fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, self.path)
        self._bytes = 0
        self._opened = time.monotonic()

    def append(self, lines: bytes) -> None:
        """Hand ``lines`` (whole JSON lines) to the operating system in one write.

        Durable against a crash of this process when it returns (nothing to wait for).
        """
        with self._lock:
            view = memoryview(lines)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._bytes += len(lines)

    def due(self) -> bool:
        return self._bytes >= ROTATE_BYTES or (
            self._bytes > 0 and time.monotonic() - self._opened >= ROTATE_SECONDS
        )

    def rotate(self) -> None:
        """Close this journal (a reader may seal it from now on) and go on in a new one."""
        with self._lock:
            if self._bytes == 0:
                return
            old_fd = self._fd
            self._open()
        os.close(old_fd)

    def close(self) -> None:
        """Close for good; an empty journal is removed."""
        with self._lock:
            fd, path, empty = self._fd, self.path, self._bytes == 0
            self._fd = -1
        if fd < 0:
            return
        if empty:
            path.unlink(missing_ok=True)
        os.close(fd)
