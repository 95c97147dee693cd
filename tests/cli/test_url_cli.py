"""Every command honours ``--url`` / ``MODELYARD_URL`` or refuses it, and none makes a
``./.modelyard`` store in the working directory when given one.

The walk covers the whole click tree, so a new command is checked without adding it
here: with a forged key, a command that honours the URL reaches the server (which records
the refused request under the forged key's id) and exits 2; a command that works on the
store itself exits 2 naming why, before it touches anything.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pandas as pd
import pytest
from click.testing import CliRunner

from modelyard.cli.main import cli, main
from modelyard.packaging.package import write_package
from tests.conftest import ServerProcess
from tests.serving.models import Constant

# commands that work on the store itself: the first admin (no key exists yet), schema
# migrations, and the processes that run over the store (API server, data plane, worker)
STORE_ONLY = {"admin init", "db current", "db upgrade", "server", "serve", "ui", "worker"}
# reads only the file it is given: no yard, embedded or remote
NO_YARD = {"profile"}
# arguments that pass the command's own checks, so its first call reaches the server
ARGUMENTS = {
    "admin user add": ["ghost", "--role", "viewer"],
    "admin workspace add-member": ["default", "ghost", "--role", "viewer"],
    "alias set": ["nomodel", "champion", "1"],
    "dataset classify": ["nodata", "pii"],
    "endpoint create": ["noendpoint", "--route", "nomodel/1=100"],
    "endpoint label": ["noendpoint", "{labels}"],
    "endpoint replay": ["noendpoint", "--id", "x"],
    "endpoint retention": ["noendpoint", "--days", "3"],
    "endpoint subject": ["noendpoint", "customer"],
    "endpoint update": ["noendpoint", "--route", "nomodel/1=100"],
    "import mlflow": ["--tracking-uri", "sqlite:///{rows}"],
    "import mlflow-model": ["{work}", "--name", "nomodel"],
    "explain": ["nomodel/1", "{rows}"],
    "lineage": ["version:nomodel/1"],
    "models approval": ["request", "nomodel/1"],
    "models compare": ["nomodel", "1", "2"],
    "monitor create": ["nomonitor", "--endpoint", "noendpoint"],
    "models retire": ["nomodel/1"],
    "models tag": ["nomodel", "team=x"],
    "monitor reference": ["nomodel/1"],
    "monitor update": ["nomonitor", "--enable"],
    "package export": ["nomodel/1", "{work}/exported"],
    "package import": ["{package}", "--name", "nomodel"],
    "runs compare": ["a" * 32, "b" * 32],
    "score": ["nomodel/1", "{rows}", "{work}/scored.parquet"],
    "stage set": ["nomodel/1", "staging"],
    "stage transition": ["nomodel/1", "staging"],
}
PLACEHOLDER = "nothing"


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name))


def arguments(name: str, files: dict[str, str]) -> list[str]:
    if name in ARGUMENTS:
        return [value.format(**files) for value in ARGUMENTS[name]]
    command: click.Command = cli
    for part in name.split():
        assert isinstance(command, click.Group)
        command = command.commands[part]
    wanted = [p for p in command.params if isinstance(p, click.Argument) and p.required]
    return [PLACEHOLDER for _ in wanted]


def run(args: list[str], env: dict[str, str | None], stdin: str = "") -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(input=stdin, env=env) as streams:
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    return code, out, err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, the one a stray ``./.modelyard`` would appear in."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def files_for(tmp_path: Path) -> dict[str, str]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    frame.to_parquet(inputs / "rows.parquet")
    (inputs / "labels.csv").write_text("id,label\nabc,1\n")
    write_package(Constant(1), inputs / "package", input_example=frame)
    return {
        "rows": str(inputs / "rows.parquet"),
        "labels": str(inputs / "labels.csv"),
        "package": str(inputs / "package"),
        "work": str(tmp_path / "out"),
    }


def refused_under(server: ServerProcess, key_id: str) -> int:
    """How many requests with the forged key ``key_id`` the server refused and recorded."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    params: dict[str, str | int] = {"actor": "anonymous", "limit": 0}
    events = httpx.get(f"{server.url}/api/v1/audit", params=params, headers=headers).json()
    return sum(1 for e in events if e["key_id"] == key_id)


def test_every_command_reaches_the_server_or_refuses_the_url(
    server: ServerProcess, workdir: Path, tmp_path: Path
) -> None:
    files = files_for(tmp_path)
    key_id = uuid.uuid4().hex[:16]
    env: dict[str, str | None] = {
        "MODELYARD_HOME": None,
        "MODELYARD_DB_URL": None,
        "MODELYARD_URL": None,
        "MODELYARD_WORKSPACE": None,
        "MODELYARD_API_KEY": f"my_{key_id}_forged",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    found = list(commands())
    assert len(found) >= 70 and set(found) >= STORE_ONLY | NO_YARD
    unhonoured = []
    for name in found:
        if name in NO_YARD:
            continue
        before = refused_under(server, key_id)
        args = ["--url", server.url, *name.split(), *arguments(name, files)]
        code, _, err = run(args, env, stdin="value\n")
        if name in STORE_ONLY:
            wanted = (
                f"error: `modelyard {name}` works on the store itself "
                "(MODELYARD_HOME or MODELYARD_DB_URL), not through a server: drop --url\n"
            )
            if (code, err) != (2, wanted):
                unhonoured.append((name, code, err))
        elif (
            code != 2
            or not err.splitlines()[-1].startswith("error: ")  # after any progress bar
            or refused_under(server, key_id) == before
        ):
            unhonoured.append((name, code, err))
        assert not (workdir / ".modelyard").exists(), name
    assert not unhonoured, "\n".join(map(str, unhonoured))
    assert list(workdir.iterdir()) == []


def test_a_store_command_names_the_variable_when_the_url_comes_from_the_environment(
    workdir: Path, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {"MODELYARD_HOME": None, "MODELYARD_URL": "http://127.0.0.1:9"}
    for name in ("admin init", "db upgrade", "worker"):
        code, _, err = run(name.split(), env)
        assert code == 2 and err.endswith("not through a server: unset MODELYARD_URL\n"), name
    assert list(workdir.iterdir()) == []


def test_admin_and_audit_commands_act_through_the_server_as_the_keys_user(
    server: ServerProcess, workdir: Path, unique: str
) -> None:
    env: dict[str, str | None] = {
        "MODELYARD_HOME": None,
        "MODELYARD_URL": server.url,
        "MODELYARD_API_KEY": server.admin_key,
    }
    ana, team = f"{unique}-ana", f"{unique}-team"
    assert run(["admin", "user", "add", ana, "--role", "viewer"], env)[0] == 0
    code, out, _ = run(["admin", "user", "list", "--json"], env)
    assert code == 0 and ana in [u["name"] for u in json.loads(out)]

    code, out, _ = run(["admin", "workspace", "create", team, "--admin", ana], env)
    assert code == 0 and f"workspace '{team}' created; its admins: admin, {ana}\n" in out
    code, out, _ = run(["admin", "workspace", "create", f"{team}-2"], env)
    assert code == 0 and "its admins: admin (its creator, through the server)" in out

    code, out, _ = run(["admin", "key", "create", ana, "--name", "laptop"], env)
    key_id, token = out.split()[1], out.strip().splitlines()[-1]
    assert code == 0 and token.startswith(f"my_{key_id}_")
    code, out, _ = run(["admin", "key", "list", "--user", ana, "--json"], env)
    assert [(k["id"], k["name"], k["revoked_at"]) for k in json.loads(out)] == [
        (key_id, "laptop", None)
    ]
    code, out, _ = run(["admin", "key", "list", "--user", ana], env)
    assert code == 0 and key_id in out and "active" in out and token not in out

    viewer = {**env, "MODELYARD_API_KEY": token}
    code, _, err = run(["admin", "user", "list"], viewer)
    assert code == 2 and err.startswith(f"error: user '{ana}' has the viewer role")
    assert run(["admin", "key", "revoke", key_id], env)[0] == 0

    code, out, _ = run(["audit", "search", "--resource", f"keys/{key_id}", "--json"], env)
    events = json.loads(out)
    assert [(e["action"], e["actor"], e["client"]) for e in events] == [
        ("create key", "admin", "127.0.0.1"),
        ("revoke key", "admin", "127.0.0.1"),
    ]
    code, out, _ = run(["audit", "export", "--since", "2020-01-01"], env)
    exported = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {e["id"] for e in events} <= {e["id"] for e in exported}
    assert all(token not in line for line in out.splitlines())
    code, out, _ = run(["audit", "verify"], env)
    assert code == 0 and f"audit log intact: {len(exported)} events" in out
    assert list(workdir.iterdir()) == []


def test_artifacts_datasets_tags_and_alerts_through_the_server(
    server: ServerProcess, workdir: Path, unique: str, tmp_path: Path
) -> None:
    from modelyard.client.yard import connect

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    (tmp_path / "summary.txt").write_text("auc 0.97\n")
    with connect(server.url, api_key=server.admin_key, home=tmp_path / "client") as yard:
        with yard.start_run(unique) as logged:
            logged.log_artifact(tmp_path / "summary.txt", "notes/summary.txt")
            logged.log_dataset(frame, name=f"{unique}-train")
        yard.models.register(Constant(1), name=unique, input_example=frame)
    env: dict[str, str | None] = {
        "MODELYARD_HOME": None,
        "MODELYARD_URL": server.url,
        "MODELYARD_API_KEY": server.admin_key,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    code, out, _ = run(["runs", "artifacts", logged.id, "--json"], env)
    assert code == 0 and [a["path"] for a in json.loads(out)] == ["notes/summary.txt"]
    code, out, _ = run(["runs", "download", logged.id[:8], "notes/summary.txt"], env)
    assert code == 0 and (workdir / "summary.txt").read_text() == "auc 0.97\n"
    code, out, _ = run(["dataset", "download", f"{unique}-train", "-o", "train.parquet"], env)
    assert code == 0 and "to train.parquet" in out
    pd.testing.assert_frame_equal(pd.read_parquet(workdir / "train.parquet"), frame)

    code, out, _ = run(["models", "tag", unique, "team=growth", "tier=2"], env)
    assert code == 0 and f"{unique}: team=growth, tier=2" in out
    code, out, _ = run(["models", "tag", f"{unique}/1", "validated=yes"], env)
    assert code == 0 and "validated=yes" in out
    code, _, err = run(["models", "tag", unique, "no-equals"], env)
    assert code == 2 and err == "error: tag 'no-equals' is not key=value (e.g. team=retention)\n"
    code, _, err = run(["monitor", "ack", unique, "--comment", "on it"], env)
    assert code == 2 and err == f"error: alert '{unique}' does not exist\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["summary.txt", "train.parquet"]
