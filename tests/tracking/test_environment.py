from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from modelyard.tracking.environment import capture_environment, git_state, installed_packages


def test_environment_describes_this_process(tmp_path: Path) -> None:
    env = capture_environment(str(tmp_path))
    assert env.python == platform.python_version()
    assert "numpy" in env.packages and "scikit-learn" in env.packages
    assert env.user and env.host
    assert env.git_commit is None and env.git_dirty is None  # tmp_path is no repository
    assert len(env.id) == 64
    assert installed_packages() is installed_packages()  # listed once per process


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "train.py").write_text("print(1)\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "first")
    commit, dirty = git_state(str(tmp_path))
    assert commit is not None and len(commit) == 40 and dirty is False
    (tmp_path / "train.py").write_text("print(2)\n")
    git_state.cache_clear()
    assert git_state(str(tmp_path)) == (commit, True)
