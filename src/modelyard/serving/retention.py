"""Prediction-log retention: delete what an endpoint's policy no longer keeps.

Erasure deletes every prediction of one data subject, matched on the endpoint's
subject column. Serving processes apply every hosted endpoint's policy on a schedule
(``PRUNE_EVERY``, as the ``SERVING_USER`` system actor); ``modelyard endpoint prune
NAME`` applies it now. Each is a ``Changed`` recording how many predictions went and
the cutoff (or the subject's digest), never the data: a prune on request always, a
scheduled one when it deleted something.

>>> retention.prune("churn")          # as the current actor
3
>>> retention.erase("churn", "customer-17")
1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, delete, select

from modelyard.clock import now_ms
from modelyard.domain.endpoints import Endpoint
from modelyard.domain.events import Changed
from modelyard.errors import InvalidInput
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.journal import subject_digest
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

PRUNE_EVERY = 3600.0
DAY_MS = 86_400_000
SERVING_USER = "modelyard-serve"  # who a serving process's scheduled prune acts as


class Retention:
    """Apply an endpoint's retention policy, and erase a data subject's predictions."""

    def __init__(
        self, db: Database, endpoints: EndpointService, predictions: PredictionLog
    ) -> None:
        self.db = db
        self.endpoints = endpoints
        self.predictions = predictions

    def prune(self, name: str) -> int:
        """Apply ``name``'s retention policy now, on request; the number of predictions
        deleted (recorded even when nothing was old enough)."""
        return self._prune(name, always=True)

    def prune_on_schedule(self, name: str) -> int:
        """``prune`` as a serving process does every ``PRUNE_EVERY`` seconds: recorded
        only when it deleted something."""
        return self._prune(name, always=False)

    def _prune(self, name: str, *, always: bool) -> int:
        endpoint = self.endpoints.get(name)
        if endpoint.retention_days is None:
            raise InvalidInput(
                f"endpoint '{name}' keeps its predictions forever: set a retention first "
                f"(modelyard endpoint retention {name} --days N)"
            )
        cutoff = now_ms() - endpoint.retention_days * DAY_MS

        def write(conn: Connection | None) -> int:
            return self.predictions.prune(name, cutoff, conn)

        def summary(deleted: int) -> dict[str, Any] | None:
            if not deleted and not always:
                return None
            return {"deleted": deleted, "cutoff": cutoff, "retention_days": endpoint.retention_days}

        def explained(conn: Connection) -> list[int]:
            c = t.prediction_explanations.c
            query = select(c.id).where(c.endpoint == name, c.predicted_at < cutoff)
            return list(conn.execute(query).scalars())

        return self._recorded(endpoint, "prune predictions", write, summary, explained)

    def erase(self, name: str, subject: Any) -> int:
        """Delete every prediction (and label) of ``subject`` on endpoint ``name``.

        Matched on the endpoint's subject column; recorded with the column, a digest
        of the subject and the count, never the subject or the data.
        """
        endpoint = self.endpoints.get(name)
        column = endpoint.subject_column
        if column is None:
            raise InvalidInput(
                f"endpoint '{name}' has no subject column: set the input field that identifies a "
                f"subject first (modelyard endpoint subject {name} COLUMN)"
            )
        if subject is None or subject == "":
            raise InvalidInput("name the subject to erase")

        def write(conn: Connection | None) -> int:
            return self.predictions.erase(name, column, subject, conn)

        def summary(deleted: int) -> dict[str, Any]:
            return {"column": column, "subject_sha256": subject_digest(subject), "deleted": deleted}

        def explained(conn: Connection) -> list[int]:
            c = t.prediction_explanations.c
            digest = subject_digest(subject)
            rows = conn.execute(select(c.id, c.input).where(c.endpoint == name)).all()
            return [
                row.id
                for row in rows
                if column in (row.input or {}) and subject_digest(row.input[column]) == digest
            ]

        return self._recorded(endpoint, "erase subject", write, summary, explained)

    def _recorded(
        self,
        endpoint: Endpoint,
        action: str,
        write: Callable[[Connection | None], int],
        summary: Callable[[int], dict[str, Any] | None],
        explained: Callable[[Connection], list[int]],
    ) -> int:
        """``write`` to the log; delete the stored explanations ``explained`` finds (of the
        same predictions); publish ``action`` with ``summary`` of its count, unless
        that is None."""

        def record(conn: Connection, deleted: int) -> None:
            ids = explained(conn)
            if ids:
                table = t.prediction_explanations
                conn.execute(delete(table).where(table.c.id.in_(ids)))
            gone = len(ids)
            after = summary(deleted)
            if after is not None and gone:
                after["explanations_deleted"] = gone
            if after is not None:
                resource = f"endpoints/{endpoint.name}/predictions"
                publish(conn, Changed(action, resource, endpoint.workspace, None, after))

        return self.predictions.write_and_record(self.db, write, record)
