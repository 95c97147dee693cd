"""Feedback: ground truth posted against prediction ids, recorded as a change.

>>> feedback.record("churn", [("p-1", 1), ("p-2", 0)]).unknown
[]

The labels go to the prediction log (``serving/predictlog.py``) as the current
actor's; the change is published as ``"post labels"`` on ``endpoints/<name>/labels``
with the counts (never the labels): in the labels' own transaction with the
database log, in a small transaction just after them with the file log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.events import Changed
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.predictlog import LabelResult, PredictionLog
from modelyard.store.database import Database, publish


class Feedback:
    """Record ground truth by prediction id on an endpoint's prediction log."""

    def __init__(
        self, db: Database, endpoints: EndpointService, predictions: PredictionLog
    ) -> None:
        self.db = db
        self.endpoints = endpoints
        self.predictions = predictions

    def record(self, endpoint: str, labels: Iterable[tuple[str, Any]]) -> LabelResult:
        """Store ``(prediction_id, label)`` pairs; ids the log does not hold come back in
        ``unknown`` (the newest label of an id wins, the history is kept)."""
        self.endpoints.get(endpoint)  # NotFound names it before the log is read
        pairs = list(labels)

        def write(conn: Connection | None) -> LabelResult:
            return self.predictions.record_labels(endpoint, pairs, conn)

        def record(conn: Connection, result: LabelResult) -> None:
            after = {"recorded": result.recorded, "unknown": len(result.unknown)}
            workspace = self.endpoints.workspace_of(conn, endpoint)
            publish(
                conn, Changed("post labels", f"endpoints/{endpoint}/labels", workspace, None, after)
            )

        return self.predictions.write_and_record(self.db, write, record)
