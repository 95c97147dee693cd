from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.domain.runs import REDACTED
from modelyard.tracking.environment import (
    capture_environment,
    entry_point,
    git_state,
    installed_packages,
)


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


def test_the_entry_point_is_the_command_line_relative_to_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "jobs").mkdir()
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.setattr(sys, "argv", ["jobs/train.py", "--C", "0.5"])
    found = entry_point(str(tmp_path))
    assert found.argv == ["jobs/train.py", "--C", "0.5"] and found.script == "jobs/train.py"
    assert found.cwd == "." and found.runnable
    assert found.repo is not None and Path(found.repo).resolve() == tmp_path.resolve()
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key", "k1", "--db-password=p", "-v"])
    hidden = entry_point(str(tmp_path))
    assert hidden.argv == ["train.py", "--api-key", REDACTED, f"--db-password={REDACTED}", "-v"]
    assert hidden.redacted == ["--api-key", "--db-password"]
    monkeypatch.setattr(sys, "argv", ["../train.py"])
    inside = entry_point(str(tmp_path / "jobs"))
    assert (inside.cwd, inside.script) == ("jobs", "train.py")
    outside = tmp_path.parent / "elsewhere.py"
    monkeypatch.setattr(sys, "argv", [str(outside)])
    assert entry_point(str(tmp_path)).script == str(outside)  # absolute: outside the repo
    monkeypatch.setattr(main, "__spec__", importlib.util.find_spec("json.tool"))
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "tool.py"), "in.json"])
    module = entry_point(str(tmp_path))
    assert module.argv == ["-m", "json.tool", "in.json"] and module.runnable
    monkeypatch.setattr(main, "__spec__", None)
    monkeypatch.setattr(sys, "argv", ["-c", "x"])
    assert not entry_point(str(tmp_path)).runnable
    monkeypatch.setattr(sys, "argv", [""])
    interactive = entry_point(str(tmp_path))
    assert interactive.argv == [] and not interactive.runnable


def test_packages_a_library_puts_on_sys_path_are_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray adds its bundled copies of colorama and psutil to ``sys.path`` once started:
    a run's recorded environment (and the check before reproducing it) must not change
    with what a library did in this process."""
    from modelyard.tracking.environment import installed_packages

    bundled = tmp_path / "thirdparty_files" / "bundledthing-9.9.dist-info"
    bundled.mkdir(parents=True)
    (bundled / "METADATA").write_text("Metadata-Version: 2.1\nName: bundledthing\nVersion: 9.9\n")
    installed_packages.cache_clear()
    before = installed_packages()
    monkeypatch.syspath_prepend(str(tmp_path / "thirdparty_files"))
    installed_packages.cache_clear()
    after = installed_packages()
    installed_packages.cache_clear()
    assert "bundledthing" not in after and after == before
    assert "numpy" in after and "modelyard" in after
