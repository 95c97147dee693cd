"""Explanations in the embedded backend: computed in this process."""

from __future__ import annotations

from typing import Any

from modelyard.client.local_base import LocalBase
from modelyard.domain.explanations import Explanation, Importance


class LocalExplanations(LocalBase):
    """Rows and logged predictions explained, importances and version comparisons,
    in-process."""

    def explain(
        self,
        endpoint: str,
        rows: list[dict[str, Any]],
        *,
        version: int | str | None,
        sticky_key: str | None,
        top: int | None,
    ) -> Explanation:
        return self.services.explanations.explain(
            endpoint, rows, version=version, sticky_key=sticky_key, top=top
        )

    def explain_prediction(
        self, endpoint: str, prediction_id: str, *, top: int | None
    ) -> Explanation:
        return self.services.explanations.explain_prediction(endpoint, prediction_id, top=top)

    def explain_version(
        self, ref: str, rows: list[dict[str, Any]], *, top: int | None
    ) -> Explanation:
        return self.services.explanations.explain_version(ref, rows, top=top)

    def feature_importance(self, ref: str) -> Importance:
        return self.services.importances.get(ref)

    def compare_versions(self, model: str, a: int, b: int) -> dict[str, Any]:
        return self.services.comparisons.compare(model, a, b)
