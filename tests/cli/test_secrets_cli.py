"""``modelyard secret``: values come from stdin or a hidden prompt, never argv, never printed."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from modelyard.bootstrap import bootstrap
from modelyard.cli.main import main
from modelyard.client.yard import connect
from tests.conftest import modelyard_command, sqlite_settings
from tests.liveapp import LiveApp, live_app

VALUE = "smtp-pw-9b7d5e3c1a-secret"


def invoke(home: Path, *args: str, stdin: str = "", **env: str | None) -> tuple[int, str, str]:
    """Run the CLI in-process through ``main`` with ``stdin``; (exit code, stdout, stderr)."""
    runner = CliRunner()
    environment = {
        "MODELYARD_HOME": str(home),
        "MODELYARD_URL": None,
        "MODELYARD_SECRET_KEY": None,
        **env,
    }
    with runner.isolation(input=stdin, env=environment) as streams:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return code, stdout.decode(), stderr.decode()


def test_set_list_delete_embedded_and_the_value_is_never_printed(tmp_path: Path) -> None:
    outputs = []
    for args, stdin in (
        (("secret", "set", "smtp-password"), VALUE + "\n"),
        (("secret", "set", "hook.token"), VALUE + "-2"),
        (("secret", "list"), ""),
        (("secret", "list", "--json"), ""),
        (("secret", "delete", "hook.token"), ""),
        (("audit", "export"), ""),
    ):
        code, out, err = invoke(tmp_path, *args, stdin=stdin)
        assert code == 0, (args, err)
        outputs.append(out + err)
    assert outputs[0].strip() == "secret smtp-password set"
    assert "smtp-password" in outputs[2] and "hook.token" in outputs[2]
    listed = json.loads(outputs[3])
    assert [s["name"] for s in listed] == ["hook.token", "smtp-password"]
    assert "value" not in listed[0]
    events = [json.loads(line) for line in outputs[5].splitlines()]
    assert [(e["action"], e["resource"], e["client"]) for e in events] == [
        ("set secret", "secrets/smtp-password", "embedded"),
        ("set secret", "secrets/hook.token", "embedded"),
        ("delete secret", "secrets/hook.token", "embedded"),
    ]
    assert all(VALUE not in text for text in outputs)
    assert (tmp_path / "secret.key").exists()  # embedded fallback key, made on first use
    # the trailing newline of `echo` is not part of the value
    with connect(home=tmp_path) as yard:
        assert yard.backend.services.secrets.reveal("smtp-password") == VALUE  # type: ignore[attr-defined]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    cases = [
        (("secret", "set", "bad/name"), VALUE, "error: invalid secret name 'bad/name'"),
        (("secret", "set", "hook"), "", "error: no value for secret 'hook' on standard input"),
        (("secret", "set", "hook", VALUE), "", "error: give the value on standard input"),
        (("secret", "set", "hook", "--value", VALUE), "", "error: give the value on standard"),
        (("secret", "delete", "missing"), "", "error: secret 'missing' does not exist"),
    ]
    for args, stdin, expected in cases:
        code, out, err = invoke(tmp_path, *args, stdin=stdin)
        assert code == 2, (args, out, err)
        assert err.startswith(expected) and len(err.strip().splitlines()) == 1, err
        assert VALUE not in out + err


def test_a_malformed_key_is_refused_by_name(tmp_path: Path) -> None:
    code, _, err = invoke(
        tmp_path, "secret", "set", "hook", stdin=VALUE, MODELYARD_SECRET_KEY="nope-not-a-key"
    )
    assert code == 2 and err.startswith("error: MODELYARD_SECRET_KEY is not a Fernet key")
    assert "nope-not-a-key" not in err


@pytest.mark.slow  # starts a process
def test_a_terminal_gets_a_hidden_prompt(tmp_path: Path) -> None:
    """On a real pseudo-terminal: the value is typed twice and never echoed."""
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path)}
    env.pop("MODELYARD_URL", None)
    env.pop("MODELYARD_SECRET_KEY", None)
    terminal, child_side = pty.openpty()
    with subprocess.Popen(  # a new session: no controlling terminal but this pty on stdin
        modelyard_command("secret", "set", "typed"),
        stdin=child_side,
        stdout=child_side,
        stderr=child_side,
        env=env,
        start_new_session=True,
    ) as child:
        os.close(child_side)
        seen = b""
        try:
            for prompt in (b"value of secret typed", b"Repeat for confirmation"):
                seen += _read_until(terminal, seen, prompt)
                os.write(terminal, VALUE.encode() + b"\n")
            seen += _read_until(terminal, seen, b"secret typed set")
            assert child.wait(timeout=10) == 0, seen
        finally:
            child.kill()
            os.close(terminal)
    assert VALUE.encode() not in seen
    _, out, _ = invoke(tmp_path, "secret", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["typed"]


def _read_until(terminal: int, seen: bytes, wanted: bytes, timeout: float = 15) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen + got:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} in {seen + got!r}"
        ready, _, _ = select.select([terminal], [], [], remaining)
        if ready:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
    return got


@contextmanager
def server_over(home: Path, secret_key: str | None) -> Iterator[tuple[LiveApp, str]]:
    """A migrated store with an admin, served as `modelyard server` builds it; (app, key)."""
    settings = sqlite_settings(home)
    store = bootstrap(settings)
    admin = store.identity.create_user("admin", "admin")
    _, admin_key = store.identity.create_key(admin.name)
    store.close()
    services = bootstrap(replace(settings, secret_key=secret_key), create_if_empty=False)
    try:
        with live_app(services) as running:
            yield running, admin_key
    finally:
        services.close()


def test_the_same_commands_through_a_server(tmp_path: Path) -> None:
    with server_over(tmp_path / "server", Fernet.generate_key().decode()) as (app, admin_key):
        remote = ("--url", app.url, "--api-key", admin_key)
        home = tmp_path / "client"  # the client needs no key: the server encrypts
        outputs = [
            invoke(home, *remote, "secret", "set", "remote-hook", stdin=VALUE),
            invoke(home, *remote, "secret", "list", "--json"),
            invoke(home, *remote, "secret", "delete", "remote-hook"),
            invoke(home, *remote, "secret", "delete", "remote-hook"),
        ]
        assert [code for code, _, _ in outputs] == [0, 0, 0, 2]
        assert [s["name"] for s in json.loads(outputs[1][1])] == ["remote-hook"]
        assert outputs[3][2].strip() == "error: secret 'remote-hook' does not exist"
        assert all(VALUE not in out + err for _, out, err in outputs)
        assert VALUE not in app.output()
    assert not home.exists() or not (home / "secret.key").exists()


def test_a_server_without_the_key_refuses_in_one_line(tmp_path: Path) -> None:
    with server_over(tmp_path / "server", None) as (app, admin_key):
        remote = ("--url", app.url, "--api-key", admin_key)
        code, out, err = invoke(tmp_path, *remote, "secret", "set", "hook", stdin=VALUE)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: secrets need MODELYARD_SECRET_KEY")
    assert VALUE not in out + err
