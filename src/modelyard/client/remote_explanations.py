"""Explanations in the remote backend: computed by the server."""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.client.remote_base import RemoteBase, _path, _selector
from modelyard.domain.explanations import Explanation, Importance


class RemoteExplanations(RemoteBase):
    """Rows and logged predictions explained, importances and version comparisons,
    over HTTP."""

    def explain(
        self,
        endpoint: str,
        rows: list[dict[str, Any]],
        *,
        version: int | str | None,
        sticky_key: str | None,
        top: int | None,
    ) -> Explanation:
        body = {
            "records": _records(rows),
            "version": version,
            "sticky_key": sticky_key,
            "top": top,
        }
        answer = self._json("POST", f"/endpoints/{_path(endpoint)}/explain", json=body)
        return Explanation.from_dict(answer)

    def explain_prediction(
        self, endpoint: str, prediction_id: str, *, top: int | None
    ) -> Explanation:
        body = {"id": prediction_id, "top": top}
        answer = self._json("POST", f"/endpoints/{_path(endpoint)}/explain", json=body)
        return Explanation.from_dict(answer)

    def explain_version(
        self, ref: str, rows: list[dict[str, Any]], *, top: int | None
    ) -> Explanation:
        name, selector = _selector(ref)
        body = {"records": _records(rows), "top": top}
        path = f"/models/{_path(name)}/versions/{_path(selector)}/explain"
        return Explanation.from_dict(self._json("POST", path, json=body))

    def feature_importance(self, ref: str) -> Importance:
        name, selector = _selector(ref)
        path = f"/models/{_path(name)}/versions/{_path(selector)}/importance"
        return Importance.from_dict(self._json("GET", path))

    def compare_versions(self, model: str, a: int, b: int) -> dict[str, Any]:
        answer = self._json("GET", f"/models/{_path(model)}/compare", params={"a": a, "b": b})
        return dict(answer)


def _records(rows: list[dict[str, Any]]) -> Any:
    """Rows as JSON carries them (NumPy values as numbers, NaN as null)."""
    return orjson.loads(orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY))
