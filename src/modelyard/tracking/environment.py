"""Capture where a run executes: Python, platform, packages, git state, host, user,
and the entry point (the command line, script or notebook the process runs), which
``modelyard reproduce`` runs again.

Package listing is the slow part (tens of milliseconds), so it is done once per
process; the result is stored once per distinct content, keyed by its hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import site
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

from modelyard.domain.actors import os_user
from modelyard.domain.runs import REDACTED, EntryPoint, Environment


@cache
def installed_packages() -> dict[str, str]:
    """The distributions installed in this interpreter's site directories: what a pip
    freeze would list. Paths a library adds at run time (Ray puts its own bundled copies
    of colorama and psutil on ``sys.path``) are not the environment."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=_site_directories()):
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def _site_directories() -> list[str]:
    found = [*site.getsitepackages(), site.getusersitepackages()]
    return [folder for folder in found if Path(folder).is_dir()]


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


@cache
def git_root(cwd: str) -> str | None:
    """The top folder of the repository containing ``cwd``, or None."""
    return _git(["rev-parse", "--show-toplevel"], Path(cwd))


def _inside(path: Path, root: str | None) -> str | None:
    """``path`` relative to ``root`` (POSIX separators), or None when outside it."""
    if root is None:
        return None
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


def _notebook() -> str | None:
    """The notebook this kernel runs, where the front end says (VS Code, Jupyter Server)."""
    if "ipykernel" not in sys.modules:
        return None
    main = sys.modules.get("__main__")
    named = getattr(main, "__vsc_ipynb_file__", None) or os.environ.get("JPY_SESSION_NAME")
    return str(named) if named else None


_SECRET_OPTION = re.compile(r"^--?[\w-]*(pass(word)?|secret|token|api[-_]?key|credential)", re.I)


def redacted(argv: list[str]) -> list[str]:
    """``argv`` with the values of options that look like secrets (``--api-key K``,
    ``--password=P``) replaced by ``REDACTED``: the record is readable by the team."""
    shown, hide_next = [], False
    for arg in argv:
        if hide_next:
            shown.append(REDACTED)
            hide_next = False
        elif _SECRET_OPTION.match(arg):
            name, equals, _ = arg.partition("=")
            shown.append(f"{name}={REDACTED}" if equals else arg)
            hide_next = not equals
        else:
            shown.append(arg)
    return shown


def entry_point(cwd: str) -> EntryPoint:
    """What this process runs: its arguments after the interpreter, with the script
    (or notebook) and working directory relative to the git repository when inside one."""
    root = git_root(cwd)
    where = _inside(Path(cwd), root) or str(Path(cwd).absolute())
    notebook = _notebook()
    if notebook is not None:
        shown = _inside(Path(cwd, notebook), root) or str(Path(cwd, notebook).absolute())
        return EntryPoint(argv=[], cwd=where, repo=root, notebook=shown)
    first, rest = (sys.argv[0] if sys.argv else ""), redacted(sys.argv[1:])
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and first not in ("", "-c"):
        module = spec.name.removesuffix(".__main__")
        return EntryPoint(argv=["-m", module, *rest], cwd=where, repo=root)
    if first in ("", "-c", "-"):
        return EntryPoint(argv=[first, *rest] if first else [], cwd=where, repo=root)
    script = Path(cwd, first)
    inside = _inside(script, root)
    return EntryPoint(
        argv=[first, *rest], cwd=where, repo=root, script=inside or str(script.absolute())
    )


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
        "entry_point": entry_point(cwd or os.getcwd()).as_dict(),
    }
    return Environment(id=environment_id(data), **data)  # type: ignore[arg-type]
