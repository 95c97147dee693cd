"""Explanations: why a version answered what it did, per row and overall.

A row's explanation holds one SHAP value per input feature: how far that feature
moved the model's output from the base value (the average output on the data the
explainer compares with). The base value plus every feature's value is the output
that was explained (``explained`` says which: a probability, a raw score such as
log-odds, or a prediction), so the contributions add up.

>>> explanation.rows[0].text
"probability of class '1' is 0.97 (baseline 0.63): worst radius = 11.4 raised it by 0.12, ..."
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TREE, LINEAR, MODEL_AGNOSTIC = "tree", "linear", "model-agnostic"
EXPLAINER_METHODS = (TREE, LINEAR, MODEL_AGNOSTIC)


@dataclass(frozen=True)
class Contribution:
    """One feature of one row: its input value and how much it moved the output."""

    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class RowExplanation:
    """One row: a SHAP value per feature, the base value, and the explained output."""

    values: dict[str, float]
    base_value: float
    output: float
    explained: str
    top: list[Contribution]
    text: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowExplanation:
        return cls(
            values={k: float(v) for k, v in data["values"].items()},
            base_value=float(data["base_value"]),
            output=float(data["output"]),
            explained=str(data["explained"]),
            top=[Contribution(**c) for c in data["top"]],
            text=str(data["text"]),
        )


@dataclass(frozen=True)
class Explanation:
    """The explanation of rows by one version (of an endpoint, when one answered)."""

    model: str
    version: int
    method: str
    features: list[str]
    rows: list[RowExplanation]
    endpoint: str | None = None
    prediction_id: str | None = None
    created_by: str | None = None
    created_at: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        return cls(
            model=data["model"],
            version=int(data["version"]),
            method=data["method"],
            features=list(data["features"]),
            rows=[RowExplanation.from_dict(r) for r in data["rows"]],
            endpoint=data.get("endpoint"),
            prediction_id=data.get("prediction_id"),
            created_by=data.get("created_by"),
            created_at=data.get("created_at"),
        )


@dataclass(frozen=True)
class Importance:
    """A version's global feature importance: mean |SHAP| per feature on a sample of
    its training data, largest first; ``shares`` are the same as parts of their sum.

    ``status`` is ``ready`` or ``failed`` (``error`` says why).
    """

    model: str
    version: int
    status: str
    method: str = ""
    rows: int = 0
    features: dict[str, float] = field(default_factory=dict)
    error: str = ""
    created_at: int | None = None

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.features.values())
        if total <= 0:
            return {name: 0.0 for name in self.features}
        return {name: value / total for name, value in self.features.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Importance:
        return cls(
            model=data["model"],
            version=int(data["version"]),
            status=data["status"],
            method=data.get("method") or "",
            rows=int(data.get("rows") or 0),
            features={k: float(v) for k, v in (data.get("features") or {}).items()},
            error=data.get("error") or "",
            created_at=data.get("created_at"),
        )


def plain_words(explained: str, output: float, base: float, top: list[Contribution]) -> str:
    """One sentence a reviewer reads: the output, the baseline, the largest pushes."""
    pushes = [
        f"{c.feature} = {_shown(c.value)} {'raised' if c.contribution >= 0 else 'lowered'} "
        f"it by {abs(c.contribution):.3g}"
        for c in top
    ]
    reasons = "; ".join(pushes) if pushes else "no feature moved it"
    return f"{explained} is {output:.4g} (baseline {base:.4g}): {reasons}"


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)
