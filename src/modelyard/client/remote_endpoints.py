"""Endpoints and their predictions in the remote backend."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from modelyard.client.remote_base import RemoteBase, _path
from modelyard.domain.endpoints import Endpoint, Revision, endpoint_from_dict, revision_from_dict
from modelyard.serving.journal import canonical
from modelyard.serving.predictlog import LabelResult


class RemoteEndpoints(RemoteBase):
    """Endpoints (routes, shadows, revisions, retention, subjects) and the predictions
    they logged (queries, labels, accuracy), over HTTP."""

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
        body = {
            "name": name,
            "routes": routes,
            "shadows": shadows,
            "batching": batching,
            "description": description,
            "comment": comment,
        }
        return endpoint_from_dict(self._json("POST", "/endpoints", json=body))

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
        body = {
            "routes": routes,
            "shadows": shadows,
            "batching": batching,
            "description": description,
            "comment": comment,
        }
        return endpoint_from_dict(self._json("PATCH", f"/endpoints/{_path(name)}", json=body))

    def rollback_endpoint(self, name: str, *, to: int | None, comment: str) -> Endpoint:
        body = {"to": to, "comment": comment}
        answer = self._json("POST", f"/endpoints/{_path(name)}/rollback", json=body)
        return endpoint_from_dict(answer)

    def get_endpoint(self, name: str) -> Endpoint:
        return endpoint_from_dict(self._json("GET", f"/endpoints/{_path(name)}"))

    def list_endpoints(self) -> list[Endpoint]:
        return [endpoint_from_dict(e) for e in self._json("GET", "/endpoints")]

    def endpoint_revisions(self, name: str) -> list[Revision]:
        answer = self._json("GET", f"/endpoints/{_path(name)}/revisions")
        return [revision_from_dict(r) for r in answer]

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        answer = self._json("PUT", f"/endpoints/{_path(name)}/retention", json={"days": days})
        return endpoint_from_dict(answer)

    def prune_predictions(self, name: str) -> int:
        return int(self._json("POST", f"/endpoints/{_path(name)}/prune")["deleted"])

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        answer = self._json("PUT", f"/endpoints/{_path(name)}/subject", json={"column": column})
        return endpoint_from_dict(answer)

    def erase_subject(self, name: str, subject: Any) -> int:
        body = {"subject": orjson.loads(canonical(subject))}
        return int(self._json("POST", f"/endpoints/{_path(name)}/erase", json=body)["deleted"])

    def predictions(self, name: str, **filters: Any) -> pa.Table:
        params: list[tuple[str, Any]] = []
        if "limit" in filters and filters["limit"] is None:
            filters = {**filters, "limit": 0}  # the API's "no limit"
        for key, value in filters.items():
            if value is None or key == "with_labels":
                continue
            if key == "ids":
                params.extend(("id", item) for item in value)
            else:
                params.append((key, value))
        payload = self._send("GET", f"/endpoints/{_path(name)}/predictions", params=params)
        with pa.ipc.open_stream(payload.content) as reader:
            return reader.read_all()

    def record_labels(self, name: str, labels: list[tuple[str, Any]]) -> LabelResult:
        body = {"labels": [{"id": i, "label": orjson.loads(canonical(v))} for i, v in labels]}
        answer = self._json("POST", f"/endpoints/{_path(name)}/labels", json=body)
        return LabelResult(recorded=answer["recorded"], unknown=answer["unknown"])

    def endpoint_accuracy(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        return list(self._json("GET", f"/endpoints/{_path(name)}/accuracy", params=params))

    def endpoint_compare(
        self, name: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        return list(self._json("GET", f"/endpoints/{_path(name)}/compare", params=params))
