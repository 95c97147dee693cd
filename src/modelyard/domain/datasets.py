"""Datasets a run consumed or produced: identified by their content."""

from __future__ import annotations

from dataclasses import dataclass, field

DATASET_ROLES = ("training", "validation", "test", "evaluation", "input", "output", "other")


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Dataset:
    """A dataset's identity is its content ``fingerprint``; ``uri`` is where it lives."""

    id: str
    name: str
    fingerprint: str
    row_count: int
    columns: list[Column] = field(default_factory=list)
    uri: str | None = None
    stored: bool = False
    created_at: int = 0


@dataclass(frozen=True)
class DatasetUse:
    dataset: Dataset
    role: str
