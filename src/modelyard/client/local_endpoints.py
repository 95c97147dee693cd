"""Endpoints and their predictions in the embedded backend."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from modelyard.client.local_base import LocalBase
from modelyard.domain.endpoints import Endpoint, Revision, batching_from, requests_from
from modelyard.serving.predictlog import LabelResult


class LocalEndpoints(LocalBase):
    """Endpoints (routes, shadows, revisions, retention, subjects) and the predictions
    they logged (queries, labels, accuracy), in-process."""

    def create_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]],
        shadows: list[dict[str, Any]],
        batching: dict[str, Any] | None,
        description: str,
        comment: str,
    ) -> Endpoint:
        return self.services.endpoints.create(
            name,
            routes=requests_from(routes, shadow=False) or [],
            shadows=requests_from(shadows, shadow=True),
            batching=batching_from(batching),
            description=description,
            comment=comment,
            workspace=self._home,
        )

    def update_endpoint(
        self,
        name: str,
        *,
        routes: list[dict[str, Any]] | None,
        shadows: list[dict[str, Any]] | None,
        batching: dict[str, Any] | None,
        description: str | None,
        comment: str,
    ) -> Endpoint:
        return self.services.endpoints.update(
            name,
            routes=requests_from(routes, shadow=False),
            shadows=requests_from(shadows, shadow=True),
            batching=batching,
            description=description,
            comment=comment,
        )

    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint:
        return self.services.endpoints.rollback(name, to=to, comment=comment)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.services.endpoints.get(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.services.endpoints.list(self.workspace)

    def endpoint_revisions(self, name: str) -> list[Revision]:
        return self.services.endpoints.revisions(name)

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        return self.services.endpoints.set_retention(name, days)

    def prune_predictions(self, name: str) -> int:
        return self.services.retention.prune(name)

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        return self.services.endpoints.set_subject_column(name, column)

    def erase_subject(self, name: str, subject: Any) -> int:
        return self.services.retention.erase(name, subject)

    def predictions(self, name: str, **filters: Any) -> pa.Table:
        self.services.endpoints.get(name)
        return self.services.predictions.query(name, **filters)

    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult:
        return self.services.feedback.record(name, labels)

    def endpoint_accuracy(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        self.services.endpoints.get(name)
        return self.services.predictions.accuracy(name, since=since, until=until)

    def endpoint_compare(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        self.services.endpoints.get(name)
        return self.services.predictions.compare(name, since=since, until=until)
