"""A job's predictions in an endpoint's prediction log (``--log-to ENDPOINT``).

Each scored row becomes one line of the endpoint's log, written by the same journal a
serving process uses (``serving/journal.py``, or the database log), with role
``batch``, the concrete version that scored it, the endpoint's revision when the job
started, and an id ``<job id[:12]>-<row of the job, hex>``. So the log's queries,
lineage and label joins see batch traffic beside online traffic (``role="batch"``
selects it). Without ``--log-to`` a job logs no predictions: its output file is the
record of what it predicted, and the job record holds that file's fingerprint.
A log the disk refuses (full, read-only) stops the job with ``StorageUnavailable``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any, Protocol

import orjson

from modelyard.batch.engine import Scored
from modelyard.domain.batch import PREDICTION, SCORE_PREFIX
from modelyard.errors import STORAGE_ERRNOS, StorageUnavailable, os_reason
from modelyard.serving.journal import canonical

ROLE = "batch"


class JournalWriter(Protocol):
    """A prediction log writer: ``serving.journal.Journal`` or ``serving.sqllog.SqlJournal``."""

    def append(self, lines: bytes) -> Any: ...
    def close(self) -> None: ...


class BatchLog:
    """Append each scored batch of one job to ``endpoint``'s prediction log."""

    def __init__(
        self,
        journal: JournalWriter,
        *,
        endpoint: str,
        revision: int,
        model: str,
        version: int,
        job_id: str,
        inputs: list[str],
    ) -> None:
        self.journal = journal
        self.endpoint = endpoint
        self.inputs = inputs
        self.rows = 0
        self._prefix = job_id[:12]
        self._head = orjson.dumps(
            {"endpoint": endpoint, "revision": revision, "model": model, "version": version}
        )[1:-1]

    def write(self, scored: Scored) -> None:
        """Log one batch; returns when the log has it (the database log: committed)."""
        lines = self._lines(scored)
        try:
            written = self.journal.append(lines)
        except OSError as exc:  # the journal cut the batch back out (serving/journal.py)
            if exc.errno not in STORAGE_ERRNOS:
                raise
            raise StorageUnavailable(
                f"prediction log of endpoint '{self.endpoint}' cannot be written: "
                f"{os_reason(exc)}; the job stops"
            ) from None
        if isinstance(written, Future):
            written.result()

    def _lines(self, scored: Scored) -> bytes:
        outputs = scored.outputs
        names = [n for n in self.inputs if n in scored.inputs.schema.names]
        rows = scored.inputs.select(names).to_pylist()
        predictions = outputs.column(PREDICTION).to_pylist()
        score_names = [n for n in outputs.schema.names if n.startswith(SCORE_PREFIX)]
        scores = [outputs.column(n).to_pylist() for n in score_names]
        head = self._head + b',"role":"batch","ts":%d,"latency_ms":%s,"error":null' % (
            int(time.time() * 1000),
            orjson.dumps(round(scored.compute_ms, 3)),
        )
        lines = []
        for index, row in enumerate(rows):
            identifier = f"{self._prefix}-{self.rows + index:08x}".encode()
            score = (
                orjson.dumps(orjson.dumps([column[index] for column in scores]).decode())
                if scores
                else b"null"
            )
            lines.append(
                b'{"id":"%s",%s,"input":%s,"output":%s,"scores":%s}\n'
                % (
                    identifier,
                    head,
                    orjson.dumps(orjson.dumps(row, default=str).decode()),
                    orjson.dumps(canonical(predictions[index])),
                    score,
                )
            )
        self.rows += len(rows)
        return b"".join(lines)

    def close(self) -> None:
        self.journal.close()
