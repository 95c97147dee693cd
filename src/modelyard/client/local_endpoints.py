"""Endpoints and their predictions in the embedded backend."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from modelyard.client.local_base import LocalBase
from modelyard.domain.endpoints import Endpoint, Revision, batching_from, requests_from
from modelyard.serving.predictlog import LabelResult
from modelyard.serving.retention import erase_subject, prune_endpoint
from modelyard.tracking.environment import current_user


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
        created = self.services.endpoints.create(
            name,
            routes=requests_from(routes, shadow=False) or [],
            shadows=requests_from(shadows, shadow=True),
            batching=batching_from(batching),
            description=description,
            actor=current_user(),
            comment=comment,
            workspace=self._home,
        )
        self._audit_revision(created)
        return created

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
        updated = self.services.endpoints.update(
            name,
            routes=requests_from(routes, shadow=False),
            shadows=requests_from(shadows, shadow=True),
            batching=batching,
            description=description,
            actor=current_user(),
            comment=comment,
        )
        self._audit_revision(updated)
        return updated

    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint:
        return self.services.endpoints.rollback(name, to=to, actor=current_user(), comment=comment)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.services.endpoints.get(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.services.endpoints.list(self.workspace)

    def endpoint_revisions(self, name: str) -> list[Revision]:
        return self.services.endpoints.revisions(name)

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        before = self.services.endpoints.get(name).retention_days
        after = self.services.endpoints.set_retention(name, days)
        self._audit(
            "set retention",
            f"endpoints/{name}",
            before={"retention_days": before},
            after={"retention_days": days},
        )
        return after

    def prune_predictions(self, name: str) -> int:
        return prune_endpoint(self.services, name, actor=current_user(), client="embedded")

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        before = self.services.endpoints.get(name).subject_column
        after = self.services.endpoints.set_subject_column(name, column)
        self._audit(
            "set subject column",
            f"endpoints/{name}",
            before={"subject_column": before},
            after={"subject_column": column},
        )
        return after

    def erase_subject(self, name: str, subject: Any) -> int:
        return erase_subject(self.services, name, subject, actor=current_user(), client="embedded")

    def predictions(self, name: str, **filters: Any) -> pa.Table:
        self.services.endpoints.get(name)
        return self.services.predictions.query(name, **filters)

    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult:
        self.services.endpoints.get(name)
        result = self.services.predictions.record_labels(name, labels, actor=current_user())
        self._audit(
            "post labels",
            f"endpoints/{name}/labels",
            after={"recorded": result.recorded, "unknown": len(result.unknown)},
        )
        return result

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

    def _audit_revision(self, endpoint: Endpoint) -> None:
        revision = self.services.endpoints.revisions(endpoint.name)[-1]
        self._audit(
            "change endpoint" if revision.revision > 1 else "create endpoint",
            f"endpoints/{endpoint.name}",
            after={"revision": revision.revision, "changes": revision.changes},
        )
