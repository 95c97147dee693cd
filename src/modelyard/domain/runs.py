"""Experiments, runs and what a run records."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.display import facts_html, table_html, when


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    created_at: int
    description: str = ""
    workspace: str = "default"


@dataclass(frozen=True)
class ExperimentSummary:
    """What an experiment's runs hold: how many, the latest start, and every param,
    metric and tag key logged (the columns a runs table can show)."""

    experiment: str
    runs: int
    last_run_at: int | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric; ``timestamp`` is epoch milliseconds."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0


@dataclass(frozen=True)
class Artifact:
    path: str
    sha256: str
    size: int
    created_at: int = 0


@dataclass(frozen=True)
class Run:
    """A run as read back from the store; ``metrics`` holds each key's latest value."""

    id: str
    experiment_id: int
    experiment: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    user: str = ""
    error: str | None = None
    environment_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def _repr_html_(self) -> str:
        return facts_html(
            f"run {self.name or self.id}",
            [
                ("id", self.id),
                ("experiment", self.experiment),
                ("status", self.status.value),
                ("started", when(self.start_time)),
                ("ended", when(self.end_time)),
                ("user", self.user),
                ("params", self.params),
                ("metrics", self.metrics),
                ("tags", self.tags),
                ("error", self.error),
            ],
        )


@dataclass(frozen=True)
class RunPage:
    """One page of a run search; iterate it (or take ``len``) for its runs, and pass
    ``next_cursor`` back to get the next page.

    >>> page = yard.runs.search("metrics.auc > 0.9")
    >>> [run.id for run in page], len(page), page.next_cursor
    """

    runs: list[Run]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]

    def _repr_html_(self) -> str:
        keys = sorted({key for run in self.runs for key in run.metrics})[:8]
        rows = [
            [run.id[:12], run.name, run.status.value, when(run.start_time)]
            + [run.metrics.get(key) for key in keys]
            for run in self.runs
        ]
        more = " (more: pass next_cursor)" if self.next_cursor else ""
        return table_html(
            f"{len(self.runs)} runs{more}",
            ["id", "name", "status", "started", *(f"metrics.{k}" for k in keys)],
            rows,
        )


@dataclass(frozen=True)
class Environment:
    """Where a run executed: captured once per process and stored once per content."""

    id: str
    python: str
    platform: str
    host: str
    user: str
    packages: dict[str, str]
    git_commit: str | None = None
    git_dirty: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "platform": self.platform,
            "host": self.host,
            "user": self.user,
            "packages": self.packages,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
        }
