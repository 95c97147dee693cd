"""``yard.runs.reproduce``: run a recorded run again and compare what it gives.

The work happens in the caller's process, embedded or remote: the yard only
answers reads (the run, its environment and datasets) and records the new run,
which the entry point logs itself as it did the first time::

    plan  = Plan.of(yard, "3f9c...")        # what is missing or changed, nothing run yet
    check = environment check (or a virtualenv built from the recorded packages)
    code  = git worktree of the recorded commit (the caller's checkout is untouched)
    run   = the recorded argv, with MODELYARD_REPRODUCES=<run> so the new run is linked
    diff  = metrics within a relative tolerance, datasets by content fingerprint

Refusals (``NotReproducible``) list every missing or changed piece at once.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import unquote, urlparse

from modelyard.domain.datasets import DatasetUse
from modelyard.domain.reproduction import (
    REPRODUCES_TAG,
    REPRODUCTION_TAG,
    EnvironmentDifference,
    Reproduction,
    compare_datasets,
    compare_metrics,
    environment_differences,
)
from modelyard.domain.runs import EntryPoint, Environment, Run, RunStatus
from modelyard.errors import InvalidInput, NotFound, NotReproducible, ReproductionFailed
from modelyard.tracking.datasets import file_fingerprint
from modelyard.tracking.environment import installed_packages

if TYPE_CHECKING:
    from modelyard.client.yard import Yard

REPRODUCES_VARIABLE = "MODELYARD_REPRODUCES"
REPRODUCTION_VARIABLE = "MODELYARD_REPRODUCTION"
# how the caller reaches its yard: replaced by the backend's own (``child_environment``)
_OWN_VARIABLES = (
    "MODELYARD_URL",
    "MODELYARD_API_KEY",
    "MODELYARD_WORKSPACE",
    "MODELYARD_HOME",
    "MODELYARD_DB_URL",
    "MODELYARD_ARTIFACTS",
    "MODELYARD_PREDICTIONS",
)


def reproduction_tags() -> dict[str, str]:
    """The tags ``start_run`` adds in a process ``reproduce`` started (else none)."""
    original = os.environ.get(REPRODUCES_VARIABLE)
    if not original:
        return {}
    return {REPRODUCES_TAG: original, REPRODUCTION_TAG: os.environ.get(REPRODUCTION_VARIABLE, "")}


def dataset_key(use: DatasetUse) -> str:
    return f"{use.dataset.name} ({use.role})"


@dataclass
class Plan:
    """What a run recorded, and every piece missing or changed to run it again."""

    run: Run
    environment: Environment | None
    datasets: list[DatasetUse]
    repo: Path | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, yard: Yard, ref: str, *, repo: str | os.PathLike[str] | None, allow_dirty: bool
    ) -> Plan:
        run = _run_of(yard, ref)
        environment = (
            yard.backend.get_environment(run.environment_id) if run.environment_id else None
        )
        plan = cls(run, environment, yard.backend.run_datasets(run.id))
        plan._check_run()
        plan._check_code(repo, allow_dirty)
        plan._check_data()
        return plan

    @property
    def entry(self) -> EntryPoint | None:
        return self.environment.entry if self.environment else None

    @property
    def commit(self) -> str:
        assert self.environment is not None and self.environment.git_commit is not None
        return self.environment.git_commit

    def refuse_if_incomplete(self) -> None:
        if self.problems:
            raise NotReproducible(f"run '{self.run.id}'", self.problems)

    def _check_run(self) -> None:
        if self.run.status is RunStatus.RUNNING:
            self.problems.append("status: the run is still RUNNING")
        if not self.run.metrics:
            self.problems.append("metrics: the run logged none, so there is nothing to compare")
        if self.environment is None:
            self.problems.append("environment: not captured (the run was started without it)")
            return
        entry = self.entry
        if entry is None:
            self.problems.append(
                "entry point: not captured (the run is older than entry-point capture)"
            )
        elif not entry.runnable:
            shown = " ".join(entry.argv) or "an interactive session"
            self.problems.append(f"entry point: the run came from {shown}, not a script")
        elif entry.redacted:
            self.problems.append(
                f"entry point: the value of {', '.join(entry.redacted)} was not recorded "
                "(it looks like a secret): pass it through an environment variable instead"
            )

    def _check_code(self, repo: str | os.PathLike[str] | None, allow_dirty: bool) -> None:
        environment, entry = self.environment, self.entry
        if environment is None:
            return
        commit = environment.git_commit
        if commit is None:
            self.problems.append(
                "code: no git commit recorded (the run did not start in a git repository)"
            )
            return
        if environment.git_dirty and not allow_dirty:
            self.problems.append(
                f"code: the run started from a working tree with uncommitted changes at "
                f"commit {commit[:12]}, so the commit is not the code that ran "
                "(allow_dirty / --allow-dirty runs the commit anyway)"
            )
        script = entry.script if entry is not None and entry.runnable else None
        if script is not None and Path(script).is_absolute():
            self.problems.append(f"code: the script {script} is outside the git repository")
        self.repo = _repository(repo, entry)
        if self.repo is None:
            self.problems.append(
                f"code: no git repository holding commit {commit[:12]} was found "
                "(pass repo= / --repo)"
            )
        elif not _has_commit(self.repo, commit):
            self.problems.append(f"code: commit {commit[:12]} is not in repository {self.repo}")

    def _check_data(self) -> None:
        if not self.datasets:
            self.problems.append("data: the run logged no dataset")
        for use in self.datasets:
            problem = _dataset_problem(use)
            if problem is not None:
                self.problems.append(f"data: {problem}")


def _run_of(yard: Yard, ref: str) -> Run:
    """The run ``ref`` names: a run id, or a model version (``churn/3``, ``churn@champion``)
    whose run it is."""
    try:
        return yard.backend.get_run(ref)
    except NotFound:
        if "/" not in ref and "@" not in ref:
            raise
    version = yard.backend.get_version(ref)
    if version.run_id is None:
        source = version.tags.get("source_run")
        where = f" (it was written by run {source} of another yard)" if source else ""
        raise NotReproducible(f"version {version.ref}", [f"run: it has no run here{where}"])
    return yard.backend.get_run(version.run_id)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )


def _repository(chosen: str | os.PathLike[str] | None, entry: EntryPoint | None) -> Path | None:
    """The given repository, else the one the run started in if it is still there, else
    the one holding the current directory."""
    candidates = [Path(chosen)] if chosen is not None else []
    if chosen is None and entry is not None and entry.repo:
        candidates.append(Path(entry.repo))
    if chosen is None:
        candidates.append(Path.cwd())
    for candidate in candidates:
        if candidate.is_dir():
            top = _git(candidate, "rev-parse", "--show-toplevel")
            if top.returncode == 0:
                return Path(top.stdout.strip())
    return None


def _has_commit(repo: Path, commit: str) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def _dataset_problem(use: DatasetUse) -> str | None:
    """Why ``use``'s content cannot be had as recorded, or None: a file logged by path
    must be there with the same bytes; a frame or table must be kept by the yard."""
    dataset = use.dataset
    path = _local_path(dataset.uri)
    if path is not None and not dataset.stored:
        if not path.is_file():
            return f"dataset '{dataset.name}' was read from {path}, which no longer exists"
        found = file_fingerprint(path)
        if found != dataset.fingerprint:
            return (
                f"dataset '{dataset.name}' at {path} has changed (sha256 {found[:12]}, "
                f"the run read {dataset.fingerprint[:12]})"
            )
        return None
    if dataset.stored:
        return None
    where = f" (logged from {dataset.uri}, which cannot be checked here)" if dataset.uri else ""
    return f"dataset '{dataset.name}' is neither kept by the yard nor a local file{where}"


def _local_path(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri) if not parsed.scheme else None


# -- the environment ------------------------------------------------------------------


def packages_of(python: str) -> tuple[str, dict[str, str]]:
    """(Python version, installed packages) of interpreter ``python``."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        return platform.python_version(), installed_packages()
    if shutil.which(python) is None:
        raise InvalidInput(f"python interpreter {python} does not exist or cannot be run")
    probe = (
        "import importlib.metadata as m, json, platform\n"
        "print(json.dumps([platform.python_version(), "
        "{d.metadata['Name'].lower(): d.version for d in m.distributions() "
        "if d.metadata['Name']}]))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InvalidInput(f"cannot list the packages of {python}: {done.stderr.strip()}")
    version, packages = json.loads(done.stdout)
    return str(version), dict(sorted(packages.items()))


def check_environment(environment: Environment, python: str) -> list[EnvironmentDifference]:
    """Every difference between the recorded environment and ``python``'s."""
    current_python, current = packages_of(python)
    return environment_differences(
        environment.python, environment.packages, current_python, current
    )


def requirements(environment: Environment) -> str:
    """The recorded packages as pinned requirements (``name==version`` lines)."""
    return "".join(f"{name}=={version}\n" for name, version in environment.packages.items())


def build_virtualenv(environment: Environment, target: Path, log: TextIO) -> str:
    """A virtualenv at ``target`` with the recorded packages installed by pip (from the
    package index pip is configured with); its interpreter."""
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"the virtualenv folder {target} exists and is not empty")
    if environment.python.rsplit(".", 1)[0] != platform.python_version().rsplit(".", 1)[0]:
        raise InvalidInput(
            f"the run used Python {environment.python}; this interpreter is "
            f"{platform.python_version()}: build the virtualenv with that Python"
        )
    _checked([sys.executable, "-m", "venv", str(target)], log, "creating the virtualenv")
    pinned = target / "requirements.txt"
    pinned.write_text(requirements(environment))
    python = str(target / "bin" / "python")
    _checked([python, "-m", "pip", "install", "-r", str(pinned)], log, "installing packages")
    return python


def _checked(command: list[str], log: TextIO, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    log.write(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise ReproductionFailed(f"{what} failed (exit {done.returncode}): {tail}")


# -- the code and the run -------------------------------------------------------------


@contextmanager
def checkout(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` in a temporary folder, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="modelyard-reproduce-"))
    tree = parent / "code"
    added = _git(repo, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise ReproductionFailed(
            f"cannot check out commit {commit[:12]} of {repo}: {added.stderr.strip()}"
        )
    try:
        yield tree
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
        _git(repo, "worktree", "prune")


def command_of(entry: EntryPoint, tree: Path, python: str, scratch: Path) -> list[str]:
    """The recorded entry point as a command in the checked-out ``tree``."""
    if entry.notebook:
        notebook = str(tree / entry.notebook)
        return [python, "-m", "nbconvert", "--to", "notebook", "--execute",
                "--output-dir", str(scratch), notebook]  # fmt: skip
    if entry.argv[0] == "-m":
        return [python, *entry.argv]
    assert entry.script is not None
    return [python, str(tree / entry.script), *entry.argv[1:]]


def run_entry_point(
    command: list[str], cwd: Path, env: dict[str, str], log: TextIO, timeout: float | None
) -> None:
    """Run ``command``, copying its output to ``log`` as it comes; a failure raises
    ``ReproductionFailed`` with its last lines, and so does running past ``timeout``
    seconds (the process is killed)."""
    tail: deque[str] = deque(maxlen=5)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None
        timer = threading.Timer(timeout, process.kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            for line in process.stdout:
                log.write(line)
                tail.append(line.rstrip())
            code = process.wait()
        finally:
            if timer is not None:
                timer.cancel()
    if timer is not None and code == -signal.SIGKILL:
        raise ReproductionFailed(f"the entry point ran longer than {timeout:g} s and was stopped")
    if code != 0:
        last = " | ".join(line for line in tail if line)
        raise ReproductionFailed(f"the entry point exited with {code}: {last}")


def working_directory(entry: EntryPoint, tree: Path) -> Path:
    """Where the entry point ran: the same folder of the checkout, or the same absolute
    folder when it ran outside the repository (relative paths in argv then mean the
    same files); the checkout's top when that folder is gone."""
    chosen = Path(entry.cwd) if Path(entry.cwd).is_absolute() else tree / entry.cwd
    return chosen if chosen.is_dir() else tree


def child_env(yard: Yard, original: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES}
    env.update(yard.backend.child_environment())
    env[REPRODUCES_VARIABLE] = original
    env[REPRODUCTION_VARIABLE] = token
    env.setdefault("PYTHONUNBUFFERED", "1")  # its output is passed on as it comes
    return env


def new_run(yard: Yard, plan: Plan, token: str) -> Run:
    """The run the entry point logged in this reproduction (the original's namesake
    when it logged several)."""
    found = yard.backend.search_runs(
        None, f"tags.{REPRODUCTION_TAG} = '{token}'", "start_time asc", 100, None
    ).runs
    if not found:
        raise ReproductionFailed(
            f"the entry point of run '{plan.run.id}' ran but logged no run to this yard"
        )
    same = [r for r in found if r.experiment == plan.run.experiment]
    return (same or found)[0]


def reproduce(
    yard: Yard,
    ref: str,
    *,
    tolerance: float,
    allow_dirty: bool = False,
    allow_environment: bool = False,
    virtualenv: str | os.PathLike[str] | None = None,
    python: str | os.PathLike[str] | None = None,
    repo: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    log: TextIO | None = None,
) -> Reproduction:
    """See ``RunsAPI.reproduce``."""
    if virtualenv is not None and python is not None:
        raise InvalidInput("give a virtualenv to build or a python to run with, not both")
    if not tolerance >= 0:
        raise InvalidInput(f"tolerance must be 0 or more (relative), got {tolerance}")
    out = log if log is not None else sys.stderr
    plan = Plan.of(yard, ref, repo=repo, allow_dirty=allow_dirty)
    plan.refuse_if_incomplete()
    environment, entry, tree_repo = plan.environment, plan.entry, plan.repo
    assert environment is not None and entry is not None and tree_repo is not None
    if virtualenv is not None:
        interpreter = build_virtualenv(environment, Path(virtualenv), out)
    else:
        interpreter = str(python) if python is not None else sys.executable
    differences = check_environment(environment, interpreter)
    if differences and not allow_environment:
        raise NotReproducible(
            f"run '{plan.run.id}'",
            [f"environment: {d}" for d in differences]
            + ["(allow_environment / --allow-environment runs it anyway)"],
        )
    token = secrets.token_hex(8)
    with checkout(tree_repo, plan.commit) as tree:
        command = command_of(entry, tree, interpreter, tree.parent)
        env = child_env(yard, plan.run.id, token)
        run_entry_point(command, working_directory(entry, tree), env, out, timeout)
    reproduced = new_run(yard, plan, token)
    datasets = yard.backend.run_datasets(reproduced.id)
    checks = compare_metrics(plan.run.metrics, reproduced.metrics, tolerance)
    checks += compare_datasets(
        {dataset_key(u): u.dataset.fingerprint for u in plan.datasets},
        {dataset_key(u): u.dataset.fingerprint for u in datasets},
    )
    return Reproduction(
        original=plan.run.id,
        run_id=reproduced.id,
        commit=plan.commit,
        checks=checks,
        tolerance=tolerance,
        environment=differences,
    )
