"""Capture where a run executes: Python, platform, packages, git state, host, user.

Package listing is the slow part (tens of milliseconds), so it is done once per
process; the result is stored once per distinct content, keyed by its hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from functools import cache
from pathlib import Path

from modelyard.domain.actors import os_user
from modelyard.domain.runs import Environment


@cache
def installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def current_user() -> str:
    """The OS user (the actor of embedded mode; see ``domain.actors``)."""
    return os_user()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def git_state(cwd: str) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository containing ``cwd``, or (None, None)."""
    commit = _git(["rev-parse", "HEAD"], Path(cwd))
    if commit is None:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], Path(cwd))
    return commit, bool(status)


def environment_id(data: dict[str, object]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@cache
def capture_environment(cwd: str | None = None) -> Environment:
    """The environment of this process (cached: it does not change within a process)."""
    commit, dirty = git_state(cwd or os.getcwd())
    data: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "user": current_user(),
        "packages": installed_packages(),
        "git_commit": commit,
        "git_dirty": dirty,
    }
    return Environment(id=environment_id(data), **data)  # type: ignore[arg-type]
