"""The serving side of the prediction log: append-only journals of JSON lines.

A serving process (and its shadow process) keeps one journal per endpoint, under
the log root (``MODELYARD_HOME/predictions`` by default)::

    <endpoint>/journal-<token>.jsonl    a journal; its writer holds an flock on it

Durability: each batch's records go to the journal in one ``write`` *before* the
response is sent, so every acknowledged prediction is in the operating system's
hands and survives ``kill -9`` of the process.

A write the disk refuses (full, read-only) raises ``OSError``; the writer then cuts
the journal back to its last whole line (a short write must not leave half a line
that the next write would glue a good line onto) and closes it, so what it holds
stays readable and sealable, and the next ``append`` starts a new journal. The
serving process answers such a request 503 (``errors.LogUnavailable``).

A journal is closed (its lock released) when it reaches ``ROTATE_BYTES`` or
``ROTATE_SECONDS``, and the writer goes on in a new one. The writer never seals:
whoever reads the log (``serving/predictlog.py``: the API, the monitor worker, the
CLI) turns closed journals into Parquet segments. So the data plane needs neither
pyarrow nor DuckDB: it only formats JSON and writes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
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
PROBE_BYTES = 64 * 1024  # what a probe of a failing log folder writes (and removes)

log = logging.getLogger("modelyard.serving")


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

    A disk that refuses the first journal (read-only, full) does not fail the
    constructor: ``append`` tries again and raises the ``OSError``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fd = -1
        self._closed = False
        self._bytes = 0
        self._opened = time.monotonic()
        self.token = ""
        self.path = directory / "journal-.jsonl"  # named by ``_open``
        try:
            self._open()
        except OSError as exc:
            log.error("prediction log %s cannot be written: %s", directory, exc)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.token = f"{int(time.time() * 1000):013d}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = self.directory / f"journal-{self.token}.jsonl"
        # created under a name readers ignore and locked before it gets its own: a reader
        # must never take a journal this writer has not locked yet for an abandoned one
        hidden = self.directory / f".journal-{self.token}.jsonl.new"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, self.path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                hidden.unlink()
            raise
        self._fd = fd
        self._bytes = 0
        self._opened = time.monotonic()

    def append(self, lines: bytes) -> None:
        """Hand ``lines`` (whole JSON lines) to the operating system in one write.

        Durable against a crash of this process when it returns (nothing to wait for).
        ``OSError`` when the disk refuses: nothing of ``lines`` is left in the journal
        (unless the disk refuses even that cut; then the journal is closed with a torn
        last line, which readers ignore).
        """
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, f"journal of {self.directory} is closed")
            if self._fd < 0:  # the last write failed, or the first journal could not open
                self._open()
            try:
                view = memoryview(lines)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError:
                self._abandon()
                raise
            self._bytes += len(lines)

    def _abandon(self) -> None:
        """After a failed write: cut the journal back to its last whole line and close it."""
        fd, self._fd = self._fd, -1
        try:
            os.ftruncate(fd, self._bytes)
        except OSError as exc:
            log.error("could not cut %s back to %d bytes: %s", self.path, self._bytes, exc)
        os.close(fd)
        if self._bytes == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def probe(self) -> None:
        """Raise ``OSError`` unless the journal's folder takes a small write right now
        (``PROBE_BYTES`` in a hidden file, removed at once): how a serving process whose
        log failed learns that space is back before a request tries."""
        self.directory.mkdir(parents=True, exist_ok=True)
        probe = self.directory / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(bytes(PROBE_BYTES))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                probe.unlink()

    def due(self) -> bool:
        return self._fd >= 0 and (
            self._bytes >= ROTATE_BYTES
            or (self._bytes > 0 and time.monotonic() - self._opened >= ROTATE_SECONDS)
        )

    def rotate(self) -> None:
        """Close this journal (a reader may seal it from now on) and go on in a new one
        (or, if the disk refuses one now, in the next ``append``)."""
        with self._lock:
            if self._fd < 0 or self._bytes == 0:
                return
            old_fd, self._fd = self._fd, -1
            try:
                self._open()
            except OSError as exc:
                log.error("prediction log %s cannot be written: %s", self.directory, exc)
        os.close(old_fd)

    def close(self) -> None:
        """Close for good; an empty journal is removed."""
        with self._lock:
            fd, path, empty = self._fd, self.path, self._bytes == 0
            self._fd, self._closed = -1, True
        if fd < 0:
            return
        if empty:
            path.unlink(missing_ok=True)
        os.close(fd)
