"""``modelyard reproduce``: a training script in a git repository, logged through the SDK,
run again from its record on a checkout of its commit, and compared."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.reproduce import (
    build_virtualenv,
    packages_of,
    requirements,
    run_entry_point,
)
from modelyard.client.yard import Yard, connect
from modelyard.domain.reproduction import REPRODUCES_TAG, compare_metrics
from modelyard.domain.runs import REDACTED, Environment, MetricPoint, Run, RunStatus
from modelyard.errors import InvalidInput, NotReproducible, ReproductionFailed
from modelyard.tracking.environment import environment_id, installed_packages
from tests.cli.test_cli import invoke
from tests.conftest import ServerProcess, embedded_yard, modelyard_command

pytestmark = pytest.mark.slow  # git, the training script and the CLI are processes

TRAIN = """\
import sys

import numpy as np
import pandas as pd

import modelyard

data = pd.read_csv(sys.argv[1])
weights = np.linalg.lstsq(data[["a", "b"]].to_numpy(), data["y"].to_numpy(), rcond=None)[0]
residual = data["y"].to_numpy() - data[["a", "b"]].to_numpy() @ weights
with modelyard.connect() as yard:
    with yard.start_run(experiment="repro", params={"solver": "lstsq"}) as run:
        run.log_dataset(sys.argv[1], name="train")
        run.log_metric("rmse", float(np.sqrt(np.mean(residual**2))))
        run.log_metric("weight_a", float(weights[0]))
        print("run", run.id)
"""


@dataclass
class Project:
    repo: Path
    data: Path
    home: Path
    run_id: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        return {**env, "MODELYARD_HOME": str(self.home)}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A repository with ``train.py``, data outside it, and one run of the script."""
    root = tmp_path_factory.mktemp("reproduce")
    repo, data, home = root / "repo", root / "data" / "train.csv", root / "home"
    repo.mkdir()
    data.parent.mkdir()
    rows = [f"{a},{b},{2 * a - b + (a * b) % 3}" for a in range(20) for b in range(3)]
    data.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    (repo / "train.py").write_text(TRAIN)
    git(repo, "init", "-q")
    git(repo, "add", "train.py")
    git(repo, "commit", "-qm", "train")
    project = Project(repo, data, home, "")
    done = subprocess.run(
        [sys.executable, "train.py", str(data)],
        cwd=repo,
        env=project.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    project.run_id = done.stdout.split()[-1]
    return project


@pytest.fixture
def yard(project: Project) -> Iterator[Yard]:
    opened = embedded_yard(project.home)
    yield opened
    opened.close()


def services_of(yard: Yard) -> Services:
    assert isinstance(yard.backend, LocalBackend)
    return yard.backend.services


def copy_run(yard: Yard, original: Run, environment: Environment | None, scale: float = 1.0) -> str:
    """A run recording what ``original`` did (metrics times ``scale``, datasets) under
    ``environment``."""
    services = services_of(yard)
    copy = services.tracking.create_run("repro", environment=environment)
    points = [MetricPoint(k, v * scale, 0, 1) for k, v in original.metrics.items()]
    services.tracking.log_batch(copy.id, metrics=points)
    for use in yard.backend.run_datasets(original.id):
        d = use.dataset
        services.datasets.log_dataset(
            copy.id,
            name=d.name,
            role=use.role,
            fingerprint=d.fingerprint,
            row_count=d.row_count,
            columns=d.columns,
            uri=d.uri,
        )
    services.tracking.finish_run(copy.id, RunStatus.FINISHED)
    return copy.id


def environment_of(yard: Yard, run_id: str) -> Environment:
    run = yard.runs.get(run_id)
    assert run.environment_id is not None
    return yard.backend.get_environment(run.environment_id)


def altered(environment: Environment, **changes: object) -> Environment:
    fields = {**environment.as_dict(), **changes}
    return Environment(id=environment_id(fields), **fields)  # type: ignore[arg-type]


def test_the_run_records_its_entry_point_and_commit(project: Project, yard: Yard) -> None:
    environment = environment_of(yard, project.run_id)
    entry = environment.entry
    assert entry is not None and entry.runnable
    assert entry.argv == ["train.py", str(project.data)]
    assert (entry.script, entry.cwd) == ("train.py", ".")
    assert entry.repo is not None and Path(entry.repo).resolve() == project.repo.resolve()
    assert environment.git_commit == git(project.repo, "rev-parse", "HEAD")
    assert environment.git_dirty is False
    assert yard.runs.reproducibility(project.run_id) == []


def test_reproduce_runs_the_script_again_and_every_metric_matches(
    project: Project, yard: Yard
) -> None:
    done = subprocess.run(
        modelyard_command("reproduce", project.run_id, "--tolerance", "1e-9"),
        cwd=project.repo.parent,  # not in the repository: the recorded one is found
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for line in ("metrics.rmse", "metrics.weight_a", "dataset:train (training)", "all match"):
        assert line in done.stdout
    assert "run " in done.stderr  # the script's own output, passed on
    copies = yard.runs.search(f"tags.{REPRODUCES_TAG} = '{project.run_id}'")
    assert len(copies) == 1
    copy = copies[0]
    original = yard.runs.get(project.run_id)
    assert copy.id != original.id and copy.status is RunStatus.FINISHED
    assert copy.metrics == original.metrics  # the same code on the same data
    assert copy.id[:12] in done.stdout or copy.id in done.stdout
    assert git(project.repo, "worktree", "list").count("\n") == 0  # the checkout is gone
    down = yard.lineage(f"run:{original.id}")
    assert [n.key for n in down.downstream("run")] == [copy.id]
    assert (f"run:{original.id}", f"run:{copy.id}", "reproduced") in [
        (e.source, e.target, e.relation) for e in down.edges
    ]
    assert [n.key for n in yard.lineage(f"run:{copy.id}").upstream("run")] == [original.id]


def test_reproduce_through_a_server(
    project: Project, server: ServerProcess, tmp_path: Path
) -> None:
    """The script logs to a server; the reproduction's entry point reaches the same one
    as the same key (``Backend.child_environment``)."""
    client = {
        "MODELYARD_URL": server.url,
        "MODELYARD_API_KEY": server.admin_key,
        "MODELYARD_HOME": str(tmp_path / "client"),
    }
    done = subprocess.run(
        [sys.executable, "train.py", str(project.data)],
        cwd=project.repo,
        env={**project.env(), **client},
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = done.stdout.split()[-1]
    with connect(server.url, api_key=server.admin_key, home=tmp_path / "client") as yard:
        result = yard.runs.reproduce(run_id, log=io.StringIO())
        assert result.ok and [c.key for c in result.checks] == [
            "metrics.rmse",
            "metrics.weight_a",
            "dataset:train (training)",
        ]
        copy = yard.runs.get(result.run_id)
        assert copy.tags[REPRODUCES_TAG] == run_id and copy.user == "admin"


def test_a_metric_that_differs_fails_the_table_and_exits_1(project: Project, yard: Yard) -> None:
    recorded = environment_of(yard, project.run_id)
    run_id = copy_run(yard, yard.runs.get(project.run_id), recorded, scale=1.01)
    code, out, err = invoke(project.home, "reproduce", run_id, "--tolerance", "0.001")
    assert code == 1, err
    cells = [[c.strip() for c in line.split("│") if c.strip()] for line in out.splitlines()]
    rows = {row[0]: row for row in cells if row and row[0].startswith(("metrics.", "dataset:"))}
    assert rows["metrics.rmse"][-1] == "NO" and rows["metrics.weight_a"][-1] == "NO"
    assert rows["dataset:train (training)"][-1] == "yes"
    assert float(rows["metrics.rmse"][3]) == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert "2 of 3 differ" in out  # the dataset still matches
    code, out, _ = invoke(project.home, "reproduce", run_id, "--tolerance", "0.02", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["ok"] is True and shown["original"] == run_id
    assert [(c["key"], c["ok"]) for c in shown["checks"]] == [
        ("metrics.rmse", True),
        ("metrics.weight_a", True),
        ("dataset:train (training)", True),
    ]
    code, out, _ = invoke(project.home, "reproduce", run_id, "--check")
    assert (code, out) == (0, f"{run_id}: code, data and entry point are all available\n")


def test_a_changed_data_file_is_refused(project: Project, yard: Yard) -> None:
    kept = project.data.read_bytes()
    project.data.write_bytes(kept.replace(b"\n0,0,0\n", b"\n0,0,1\n"))
    try:
        with pytest.raises(NotReproducible) as refused:
            yard.runs.reproduce(project.run_id)
        assert refused.value.problems == [
            f"data: dataset 'train' at {project.data} has changed "
            f"(sha256 {refused.value.problems[0].split('sha256 ')[1][:12]}, the run read "
            f"{yard.backend.run_datasets(project.run_id)[0].dataset.fingerprint[:12]})"
        ]
        code, out, err = invoke(project.home, "reproduce", project.run_id)
        assert code == 2 and out == ""
        assert err.startswith(f"error: run '{project.run_id}' cannot be reproduced: data: ")
        assert "has changed" in err and len(err.strip().splitlines()) == 1
    finally:
        project.data.write_bytes(kept)


def test_a_dirty_tree_is_refused_unless_allowed(project: Project, yard: Yard) -> None:
    original = yard.runs.get(project.run_id)
    dirty = altered(environment_of(yard, project.run_id), git_dirty=True)
    run_id = copy_run(yard, original, dirty)
    with pytest.raises(NotReproducible, match="uncommitted changes") as refused:
        yard.runs.reproduce(run_id)
    assert len(refused.value.problems) == 1 and "--allow-dirty" in refused.value.problems[0]
    log = io.StringIO()
    result = yard.runs.reproduce(run_id, allow_dirty=True, log=log)
    assert result.ok and result.original == run_id
    assert f"run {result.run_id}" in log.getvalue()
    assert yard.runs.get(result.run_id).tags[REPRODUCES_TAG] == run_id


def test_every_environment_difference_is_listed(project: Project, yard: Yard) -> None:
    recorded = environment_of(yard, project.run_id)
    packages = dict(recorded.packages)
    packages["numpy"] = "0.0.1"
    packages["a-package-never-installed"] = "1.0"
    del packages["pyarrow"]
    tampered = altered(recorded, packages=packages)
    run_id = copy_run(yard, yard.runs.get(project.run_id), tampered)
    with pytest.raises(NotReproducible) as refused:
        yard.runs.reproduce(run_id)
    numpy_now = recorded.packages["numpy"]
    assert refused.value.problems == [
        "environment: a-package-never-installed 1.0 is not installed",
        f"environment: numpy is {numpy_now}, the run had 0.0.1",
        f"environment: pyarrow {recorded.packages['pyarrow']} is installed but the run "
        "did not have it",
        "(allow_environment / --allow-environment runs it anyway)",
    ]


def test_a_run_without_code_or_data_lists_each_missing_piece(project: Project, yard: Yard) -> None:
    bare = services_of(yard).tracking.create_run("repro")  # no environment, data, metrics
    services_of(yard).tracking.finish_run(bare.id, RunStatus.FINISHED)
    code, out, err = invoke(project.home, "reproduce", bare.id)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: run '{bare.id}' cannot be reproduced: metrics: the run logged none, so "
        "there is nothing to compare; environment: not captured (the run was started "
        "without it); data: the run logged no dataset"
    )
    code, out, err = invoke(project.home, "reproduce", bare.id, "--check")
    assert code == 2 and out.splitlines() == [
        "metrics: the run logged none, so there is nothing to compare",
        "environment: not captured (the run was started without it)",
        "data: the run logged no dataset",
    ]
    recorded = environment_of(yard, project.run_id)
    no_git = altered(recorded, git_commit=None, git_dirty=None, entry_point=None)
    run_id = copy_run(yard, yard.runs.get(project.run_id), no_git)
    assert yard.runs.reproducibility(run_id) == [
        "entry point: not captured (the run is older than entry-point capture)",
        "code: no git commit recorded (the run did not start in a git repository)",
    ]
    interactive = altered(
        recorded, entry_point={**(recorded.entry_point or {}), "argv": ["-c", "x"]}
    )
    run_id = copy_run(yard, yard.runs.get(project.run_id), interactive)
    assert yard.runs.reproducibility(run_id) == [
        "entry point: the run came from -c x, not a script"
    ]
    secret = altered(
        recorded,
        entry_point={**(recorded.entry_point or {}), "argv": ["train.py", "--token", REDACTED]},
    )
    run_id = copy_run(yard, yard.runs.get(project.run_id), secret)
    assert yard.runs.reproducibility(run_id) == [
        "entry point: the value of --token was not recorded (it looks like a secret): pass "
        "it through an environment variable instead"
    ]


def test_a_version_without_a_run_says_so(project: Project, yard: Yard) -> None:
    with pytest.raises(NotReproducible, match="has no run here"):
        from tests.serving.models import Constant, cancer

        features, _ = cancer()
        version = yard.models.register(
            Constant(1), name="repro-model", input_example=features.head()
        )
        yard.runs.reproduce(version.ref)


def test_metrics_compare_within_a_relative_tolerance() -> None:
    checks = compare_metrics(
        {"auc": 0.9, "loss": 0.0, "gone": 1.0, "nan": float("nan")},
        {"auc": 0.90009, "loss": 0.0, "nan": float("nan")},
        1e-4,
    )
    assert [(c.key, c.ok) for c in checks] == [
        ("metrics.auc", True),
        ("metrics.gone", False),
        ("metrics.loss", True),
        ("metrics.nan", True),
    ]
    assert not compare_metrics({"auc": 0.9}, {"auc": 0.9002}, 1e-4)[0].ok
    assert dataclasses.asdict(checks[1])["reproduced"] is None


def test_another_interpreter_is_checked_by_its_own_packages(tmp_path: Path) -> None:
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    python, packages = packages_of(str(wrapper))  # listed by running it
    assert (python, packages) == (platform.python_version(), installed_packages())
    with pytest.raises(InvalidInput, match="python interpreter /no/python does not exist"):
        packages_of("/no/python")


def test_a_virtualenv_is_built_only_for_the_same_python_in_an_empty_folder(
    tmp_path: Path,
) -> None:
    recorded = Environment(
        id="e", python="2.7.18", platform="p", host="h", user="u", packages={"numpy": "1.16.6"}
    )
    assert requirements(recorded) == "numpy==1.16.6\n"
    with pytest.raises(InvalidInput, match="the run used Python 2.7.18; this interpreter"):
        build_virtualenv(recorded, tmp_path / "venv", io.StringIO())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InvalidInput, match="exists and is not empty"):
        build_virtualenv(recorded, tmp_path / "full", io.StringIO())


def test_an_entry_point_that_fails_or_hangs_is_reported(tmp_path: Path) -> None:
    log, env = io.StringIO(), {**os.environ, "PYTHONUNBUFFERED": "1"}
    failing = [sys.executable, "-c", "print('loading'); raise SystemExit('no data')"]
    with pytest.raises(ReproductionFailed, match=r"exited with 1: loading \| no data"):
        run_entry_point(failing, tmp_path, env, log, None)
    assert log.getvalue() == "loading\nno data\n"
    hanging = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ReproductionFailed, match="ran longer than 0.5 s and was stopped"):
        run_entry_point(hanging, tmp_path, env, log, 0.5)
