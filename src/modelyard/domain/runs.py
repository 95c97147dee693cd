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
    entry_point: dict[str, Any] | None = None

    @property
    def entry(self) -> EntryPoint | None:
        """What the process ran (None: not captured, e.g. a run older than the capture)."""
        return EntryPoint.from_dict(self.entry_point) if self.entry_point else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "platform": self.platform,
            "host": self.host,
            "user": self.user,
            "packages": self.packages,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "entry_point": self.entry_point,
        }


REDACTED = "<redacted>"  # an argument not recorded: the value of a secret-looking option


@dataclass(frozen=True)
class EntryPoint:
    """The command line a run's process was started with, as ``modelyard reproduce``
    runs it again: ``argv`` after the interpreter (``["train.py", "--C", "0.5"]``, or
    ``["-m", "pkg.train"]``), the working directory and script relative to the git
    repository's root (``repo``, absolute, where it was), and a notebook's path when
    the run came from one. ``argv`` is empty for an interactive session; the values
    of options that look like secrets (``--api-key``, ``--password``) are ``REDACTED``."""

    argv: list[str]
    cwd: str
    repo: str | None = None
    script: str | None = None
    notebook: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntryPoint:
        return cls(
            argv=[str(a) for a in data.get("argv") or []],
            cwd=str(data.get("cwd") or "."),
            repo=data.get("repo"),
            script=data.get("script"),
            notebook=data.get("notebook"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "cwd": self.cwd,
            "repo": self.repo,
            "script": self.script,
            "notebook": self.notebook,
        }

    @property
    def redacted(self) -> list[str]:
        """The options whose values were not recorded."""
        found = []
        for index, arg in enumerate(self.argv):
            if arg == REDACTED and index > 0:
                found.append(self.argv[index - 1])
            elif arg.endswith(f"={REDACTED}"):
                found.append(arg.partition("=")[0])
        return found

    @property
    def runnable(self) -> bool:
        """A script, a module (``-m``) or a notebook; not an interactive session or ``-c``."""
        if self.notebook:
            return True
        return (
            bool(self.argv)
            and self.argv[0] not in ("", "-c", "-")
            and (self.argv[0] == "-m" or self.script is not None)
        )
