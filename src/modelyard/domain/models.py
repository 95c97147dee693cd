"""Registered models, their numbered versions, aliases and lifecycle stages."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.display import facts_html, when
from modelyard.errors import Conflict, InvalidInput


class Stage(enum.StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    RETIRED = "retired"  # terminal: reached only through retirement, never left


LEGAL_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.CANDIDATE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.CANDIDATE}),
    Stage.RETIRED: frozenset(),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
# the version tag naming the run that wrote a package imported from another store
SOURCE_RUN_TAG = "source_run"


def parse_stage(value: str) -> Stage:
    try:
        return Stage(value.lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Stage)
        raise InvalidInput(f"unknown stage '{value}' (expected one of {allowed})") from None


def check_transition(model: str, version: int, current: Stage, target: Stage) -> None:
    """Raise ``Conflict`` unless ``current -> target`` is a legal lifecycle move."""
    if target in LEGAL_TRANSITIONS[current]:
        return
    if current is Stage.RETIRED:
        raise Conflict(f"model '{model}' version {version} is retired: its stage never changes")
    if target is Stage.RETIRED:
        raise Conflict(
            f"retire model '{model}' version {version} with `modelyard models retire "
            f"{model}/{version}`: retirement checks that nothing serves it"
        )
    allowed = ", ".join(sorted(s.value for s in LEGAL_TRANSITIONS[current]))
    raise Conflict(
        f"model '{model}' version {version} cannot move from {current.value} to "
        f"{target.value} (from {current.value} it can move to: {allowed})"
    )


def check_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"invalid model name {name!r}: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias or "") or alias.isdigit() or alias == "latest":
        raise InvalidInput(
            f"invalid alias {alias!r}: use letters, digits, '_' or '-', starting with a "
            "letter; 'latest' is reserved"
        )
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A reference to a version: ``churn/3``, ``churn@champion`` or ``churn`` (latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(check_model_name(name), alias=alias)
        if "/" in text:
            name, number = text.rsplit("/", 1)
            if not number.isdigit():
                raise InvalidInput(f"invalid model reference {text!r}: expected NAME/NUMBER")
            return cls(check_model_name(name), version=int(number))
        return cls(check_model_name(text))

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True)
class RegisteredModel:
    id: int
    name: str
    description: str
    created_at: int
    updated_at: int
    latest_version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    workspace: str = "default"


@dataclass(frozen=True)
class ModelVersion:
    """A numbered, immutable model package registered under a model name."""

    model: str
    version: int
    stage: Stage
    source: str
    package_digest: str
    flavor: str
    created_at: int
    updated_at: int
    run_id: str | None = None
    description: str = ""
    created_by: str = ""
    signature: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def _repr_html_(self) -> str:
        inputs = (self.signature or {}).get("inputs") or []
        return facts_html(
            f"model version {self.ref}",
            [
                ("stage", self.stage.value),
                ("aliases", self.aliases),
                ("flavor", self.flavor),
                ("run", self.run_id),
                ("created", when(self.created_at)),
                ("created by", self.created_by),
                ("description", self.description),
                ("inputs", [f"{c['name']}: {c['type']}" for c in inputs]),
                ("tags", self.tags),
                ("package digest", self.package_digest),
            ],
        )


RISK_TIERS = ("low", "medium", "high", "critical")
VALIDATION_STATUSES = ("not_validated", "in_progress", "validated", "rejected", "expired")
INVENTORY_FIELDS = (
    "risk_tier",
    "business_owner",
    "validator",
    "validation_status",
    "last_validated",
    "next_validation",
)


@dataclass(frozen=True)
class Inventory:
    """Model-risk inventory fields of a registered model (typed, not free tags)."""

    model: str
    risk_tier: str | None = None
    business_owner: str = ""
    validator: str = ""
    validation_status: str = "not_validated"
    last_validated: str | None = None  # ISO date, YYYY-MM-DD
    next_validation: str | None = None  # ISO date, YYYY-MM-DD
    updated_by: str = ""
    updated_at: int = 0

    def overdue(self, today: str) -> bool:
        return self.next_validation is not None and self.next_validation < today


def check_inventory(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked inventory changes; every problem names the field and the allowed values."""

    unknown = set(changes) - set(INVENTORY_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown inventory field(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(INVENTORY_FIELDS)})"
        )
    clean = dict(changes)
    tier = clean.get("risk_tier")
    if tier is not None and tier not in RISK_TIERS:
        raise InvalidInput(f"risk_tier must be one of {', '.join(RISK_TIERS)}, got {tier!r}")
    status = clean.get("validation_status")
    if "validation_status" in clean and status not in VALIDATION_STATUSES:
        raise InvalidInput(
            f"validation_status must be one of {', '.join(VALIDATION_STATUSES)}, got {status!r}"
        )
    for name in ("last_validated", "next_validation"):
        value = clean.get(name)
        if value is not None:
            clean[name] = check_date(name, value)
    for name in ("business_owner", "validator"):
        if name in clean and (not isinstance(clean[name], str) or len(clean[name]) > 250):
            raise InvalidInput(f"{name} must be text of at most 250 characters")
    return clean


def check_date(name: str, value: Any) -> str:
    """``value`` (a date or ISO text) as an ISO date; ``InvalidInput`` naming ``name``."""
    import datetime as dt

    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2026-11-23, got {value!r}") from None
