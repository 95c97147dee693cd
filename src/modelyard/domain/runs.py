"""Experiments, runs and what a run records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class RunPage:
    """One page of a run search; pass ``next_cursor`` back to get the next one."""

    runs: list[Run]
    next_cursor: str | None = None


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
