"""The modelyard command, on a real embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli.main import cli, main
from modelyard.client.yard import connect
from modelyard.store.migrate import head_revision
from tests.conftest import modelyard_command


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process through ``main`` (the real error mapping) and capture output."""
    runner = CliRunner()
    with runner.isolation(env={"MODELYARD_HOME": str(home), "MODELYARD_URL": None}) as streams:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return code, stdout.decode(), stderr.decode()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after one quickstart."""
    home = tmp_path_factory.mktemp("cli-home")
    code, out, err = invoke(home, "quickstart")
    assert code == 0, err
    assert "champion" in out
    return home


def test_quickstart_aliases_the_best_version(filled: Path) -> None:
    yard = connect(home=filled)
    try:
        versions = yard.models.versions("breast-cancer")
        aucs = {v.version: yard.runs.get(v.run_id or "").metrics["roc_auc"] for v in versions}
        champion = yard.models.version("breast-cancer@champion")
        assert aucs[champion.version] == max(aucs.values())
        assert champion.stage.value == "staging"
        run = yard.runs.get(champion.run_id or "")
        assert len(yard.runs.history(run.id, "val_loss")) >= 40
        roles = {u.role for u in yard.backend.run_datasets(run.id)}
        assert roles == {"training", "test"}
    finally:
        yard.close()


def test_runs_commands(filled: Path) -> None:
    code, out, _ = invoke(filled, "runs", "list", "--json", "-o", "metrics.roc_auc desc")
    runs = json.loads(out)["runs"]
    assert code == 0 and len(runs) == 3
    assert runs[0]["metrics"]["roc_auc"] >= runs[-1]["metrics"]["roc_auc"]
    code, out, _ = invoke(filled, "runs", "list", "-f", 'params.model = "gradient-boosting"')
    assert code == 0 and "gbm-60" in out and "sgd-alpha" not in out
    code, out, _ = invoke(filled, "runs", "show", runs[0]["id"][:10])
    assert code == 0 and runs[0]["id"] in out and "evaluation/confusion_matrix.json" in out
    assert "breast-cancer-train" in out and "environment: Python" in out
    code, out, _ = invoke(filled, "runs", "compare", runs[0]["id"], runs[1]["id"], "--json")
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = invoke(filled, "experiments", "list", "--json")
    assert [e["name"] for e in json.loads(out)] == ["quickstart"]


def test_model_commands(filled: Path, tmp_path: Path) -> None:
    code, out, _ = invoke(filled, "models", "list", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "breast-cancer"
    code, out, _ = invoke(filled, "models", "show", "breast-cancer")
    assert code == 0 and "champion" in out
    code, out, _ = invoke(filled, "alias", "set", "breast-cancer", "challenger", "1", "--json")
    assert code == 0 and json.loads(out)["aliases"] == ["challenger"]
    code, out, _ = invoke(
        filled, "models", "versions", "breast-cancer", "--stage", "staging", "--json"
    )
    assert code == 0 and len(json.loads(out)) == 1
    code, out, _ = invoke(filled, "stage", "transition", "breast-cancer/1", "staging")
    assert code == 0 and "breast-cancer/1 is now staging" in out
    code, out, _ = invoke(
        filled, "package", "export", "breast-cancer@challenger", str(tmp_path / "pkg")
    )
    assert code == 0 and (tmp_path / "pkg" / "manifest.json").is_file()
    code, out, _ = invoke(
        filled, "package", "import", str(tmp_path / "pkg"), "--name", "imported", "--json"
    )
    assert code == 0 and json.loads(out)["model"] == "imported"
    code, out, _ = invoke(filled, "alias", "delete", "breast-cancer", "challenger")
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "feedbeef"), "error: run 'feedbeef' does not exist"),
        (("models", "show", "nope"), "error: model 'nope' does not exist"),
        (("runs", "list", "-f", "metrics.auc >"), "error: invalid filter at position 14"),
        (("stage", "set", "breast-cancer/2", "archived"), None),
        (
            ("stage", "set", "breast-cancer/3", "production"),
            "cannot move from candidate to production",
        ),
        (("alias", "set", "breast-cancer", "latest", "1"), "error: invalid alias 'latest'"),
        (("alias", "set", "breast-cancer", "x", "99"), "has no version 99"),
        (("package", "import", "/"), "error: '/' is not a model package"),
        (("runs", "list", "--limit", "0"), "Invalid value for '--limit'"),
        (("nonsense",), "No such command 'nonsense'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    filled: Path, args: tuple[str, ...], message: str | None
) -> None:
    code, out, err = invoke(filled, *args)
    if message is None:
        assert code == 0
        return
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err + out
    if err.startswith("error:"):
        assert err.count("\n") == 1


def test_a_version_from_a_run_imports_into_another_home(filled: Path, tmp_path: Path) -> None:
    code, _, err = invoke(filled, "package", "export", "breast-cancer/2", str(tmp_path / "pkg"))
    assert code == 0, err
    code, out, err = invoke(tmp_path / "other", "package", "import", str(tmp_path / "pkg"))
    assert code == 0, err
    assert "imported" in out and "breast-cancer/1" in out
    code, out, _ = invoke(tmp_path / "other", "models", "versions", "breast-cancer", "--json")
    source = connect(home=filled)
    try:
        run_id = source.models.version("breast-cancer/2").run_id
    finally:
        source.close()
    [version] = json.loads(out)
    assert version["run_id"] is None and version["tags"]["source_run"] == run_id


def test_models_overdue_names_the_on_date_when_it_is_not_one(filled: Path) -> None:
    code, _, err = invoke(filled, "models", "overdue", "--on", "notadate")
    assert code == 2
    assert err == "error: on must be a date like 2026-11-23, got 'notadate'\n"


def test_exported_files_follow_the_umask(filled: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        code, _, err = invoke(filled, "package", "export", "breast-cancer/1", str(tmp_path / "p"))
    finally:
        os.umask(previous)
    assert code == 0, err
    written = [p for p in (tmp_path).rglob("*") if p.is_file()]
    assert len(written) >= 3  # the package's files and the record beside them
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}


def test_export_refuses_a_non_empty_folder(filled: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    code, _, err = invoke(filled, "package", "export", "breast-cancer/1", str(tmp_path / "busy"))
    assert code == 2 and "exists and is not empty" in err


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    code, out, _ = invoke(tmp_path, "db", "upgrade")
    assert code == 0 and f"from empty to {head_revision()}" in out
    code, out, _ = invoke(tmp_path, "db", "current", "--json")
    assert code == 0 and json.loads(out)["at_head"] is True
    code, out, _ = invoke(tmp_path, "db", "upgrade")
    assert f"already at {head_revision()}" in out


@pytest.mark.slow  # starts a process
def test_console_script_quickstart_twice(tmp_path: Path) -> None:
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path / "home")}
    env.pop("MODELYARD_URL", None)
    for _ in range(2):
        done = subprocess.run(
            modelyard_command("quickstart"), env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "breast-cancer@champion" in done.stdout
    listed = subprocess.run(
        modelyard_command("runs", "list", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(json.loads(listed.stdout)["runs"]) == 6


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("quickstart", "server", "runs", "models", "alias", "stage", "package", "db"):
        assert command in result.output
