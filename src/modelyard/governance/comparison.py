"""Two versions of a model side by side: metrics, signature, importance and data.

``models compare NAME V1 V2`` (``yard.models.compare``) answers "what changed
between these versions?" from what the platform recorded: the training runs'
metrics, the signatures (inputs added, removed or retyped; outputs), the global
feature importance (each feature's share of mean |SHAP|, and how its rank moved),
and the training data (which dataset, its fingerprint and size, and per input
column how the reference profile's mean and missing rate moved). Anything a
version lacks (no run, no reference profile, no importance yet) is said in
``notes`` rather than guessed.

>>> comparison = services.comparisons.compare("churn", 3, 4)
>>> comparison["importance"][0]
{'feature': 'tenure', 'a': 0.41, 'b': 0.18, 'change': -0.23, 'rank_a': 1, 'rank_b': 3}
"""

from __future__ import annotations

import math
from typing import Any

from modelyard.catalog.registry import Catalog
from modelyard.domain.explanations import Importance
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import NotFound
from modelyard.monitoring.importance import ImportanceService
from modelyard.monitoring.reference import Reference, ReferenceService
from modelyard.tracking.dataset_registry import DatasetRegistry
from modelyard.tracking.runs import TrackingService


class VersionComparison:
    """Compare two versions of one model from the catalog, runs, data and explanations."""

    def __init__(
        self,
        catalog: Catalog,
        tracking: TrackingService,
        datasets: DatasetRegistry,
        references: ReferenceService,
        importances: ImportanceService,
    ) -> None:
        self.catalog = catalog
        self.tracking = tracking
        self.datasets = datasets
        self.references = references
        self.importances = importances

    def compare(self, model: str, a: int, b: int) -> dict[str, Any]:
        """``model`` versions ``a`` and ``b`` side by side (plain JSON-ready data)."""
        first = self.catalog.get_version(ModelRef(model, version=a))
        second = self.catalog.get_version(ModelRef(model, version=b))
        notes: list[str] = []
        return {
            "model": model,
            "a": a,
            "b": b,
            "versions": [_identity(first), _identity(second)],
            "metrics": self._metrics(first, second, notes),
            "signature": signature_changes(first.signature, second.signature),
            "importance": self._importance(first, second, notes),
            "data": self._data(first, second, notes),
            "notes": notes,
        }

    def _metrics(
        self, first: ModelVersion, second: ModelVersion, notes: list[str]
    ) -> list[dict[str, Any]]:
        left, right = self._run_metrics(first, notes), self._run_metrics(second, notes)
        rows = []
        for key in sorted(set(left) | set(right)):
            x, y = left.get(key), right.get(key)
            change = y - x if x is not None and y is not None else None
            rows.append({"metric": key, "a": x, "b": y, "change": change})
        return rows

    def _run_metrics(self, version: ModelVersion, notes: list[str]) -> dict[str, float]:
        if not version.run_id:
            notes.append(f"{version.ref} has no training run here: no metrics")
            return {}
        return {k: v for k, v in self.tracking.get_run(version.run_id).metrics.items()}

    def _importance(
        self, first: ModelVersion, second: ModelVersion, notes: list[str]
    ) -> list[dict[str, Any]]:
        left, right = self._shares(first, notes), self._shares(second, notes)
        if not left and not right:
            return []
        rank_a = {name: i + 1 for i, name in enumerate(left)}
        rank_b = {name: i + 1 for i, name in enumerate(right)}
        rows: list[dict[str, Any]] = []
        for name in list(dict.fromkeys([*left, *right])):
            x, y = left.get(name), right.get(name)
            rows.append(
                {
                    "feature": name,
                    "a": x,
                    "b": y,
                    "change": y - x if x is not None and y is not None else None,
                    "rank_a": rank_a.get(name),
                    "rank_b": rank_b.get(name),
                }
            )
        rows.sort(key=lambda r: -abs(float(r["change"] or 0.0)))
        return rows

    def _shares(self, version: ModelVersion, notes: list[str]) -> dict[str, float]:
        try:
            importance: Importance = self.importances.get(version.ref)
        except NotFound as missing:
            notes.append(str(missing))
            return {}
        if importance.status != "ready":
            notes.append(f"the importance of {version.ref} is {importance.status}")
            return {}
        return importance.shares

    def _data(self, first: ModelVersion, second: ModelVersion, notes: list[str]) -> dict[str, Any]:
        left, right = self._training(first), self._training(second)
        same = bool(left and right and left["fingerprint"] == right["fingerprint"])
        columns = self._profiles(first, second, notes) if not same else []
        return {"a": left, "b": right, "same": same, "columns": columns}

    def _training(self, version: ModelVersion) -> dict[str, Any] | None:
        uses = self.datasets.run_datasets(version.run_id) if version.run_id else []
        training = next((u.dataset for u in uses if u.role == "training"), None)
        if training is None:
            return None
        return {
            "dataset": training.name,
            "fingerprint": training.fingerprint,
            "rows": training.row_count,
        }

    def _profiles(
        self, first: ModelVersion, second: ModelVersion, notes: list[str]
    ) -> list[dict[str, Any]]:
        left, right = self._reference(first, notes), self._reference(second, notes)
        if left is None or right is None:
            return []
        rows = []
        for name in dict.fromkeys([*left.inputs.columns, *right.inputs.columns]):
            x, y = left.inputs.columns.get(name), right.inputs.columns.get(name)
            rows.append(
                {
                    "column": name,
                    "mean_a": x.mean if x else None,
                    "mean_b": y.mean if y else None,
                    "mean_shift_std": _shift(x, y),
                    "missing_a": x.missing_rate if x else None,
                    "missing_b": y.missing_rate if y else None,
                }
            )
        return rows

    def _reference(self, version: ModelVersion, notes: list[str]) -> Reference | None:
        try:
            return self.references.get(version.ref)
        except NotFound as missing:
            notes.append(str(missing))
            return None


def _identity(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "stage": version.stage.value,
        "flavor": version.flavor,
        "digest": version.package_digest,
        "run_id": version.run_id,
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


def _shift(x: Any, y: Any) -> float | None:
    if x is None or y is None or x.mean is None or y.mean is None or not x.std:
        return None
    shift = (y.mean - x.mean) / x.std
    return None if math.isnan(shift) else float(shift)


def signature_changes(
    first: dict[str, Any] | None, second: dict[str, Any] | None
) -> dict[str, Any]:
    """Inputs added, removed and retyped between two signatures, and whether the outputs
    changed."""
    inputs_a = {c["name"]: c for c in (first or {}).get("inputs") or []}
    inputs_b = {c["name"]: c for c in (second or {}).get("inputs") or []}
    changed = [
        {"column": name, "a": _typed(inputs_a[name]), "b": _typed(inputs_b[name])}
        for name in inputs_a
        if name in inputs_b and _typed(inputs_a[name]) != _typed(inputs_b[name])
    ]
    return {
        "added": [n for n in inputs_b if n not in inputs_a],
        "removed": [n for n in inputs_a if n not in inputs_b],
        "changed": changed,
        "outputs_changed": (first or {}).get("outputs") != (second or {}).get("outputs"),
    }


def _typed(column: dict[str, Any]) -> str:
    return f"{column.get('type')}{' (nullable)' if column.get('nullable') else ''}"
