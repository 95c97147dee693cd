"""``modelyard ui``: the web UI on the embedded store, signed in by the address it prints."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.api.session import SESSION_COOKIE
from tests.conftest import free_port, modelyard_command
from tests.e2e.conftest import Watched


@pytest.mark.slow
def test_modelyard_ui_signs_in_by_its_address_and_revokes_the_key(
    browser: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = {**os.environ, "MODELYARD_HOME": str(home), "USER": "ana", "LOGNAME": "ana"}
    env.pop("MODELYARD_URL", None)
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            modelyard_command("ui", "--port", str(port)), env=env, stdout=out, stderr=out
        )
    try:
        address = _address(process, log)
        key = address.split("#key=")[1]
        context = browser.new_context()
        watched = Watched(context, f"http://127.0.0.1:{port}")
        watched.page.goto(address)
        watched.page.wait_for_load_state("networkidle")
        assert watched.page.url == f"http://127.0.0.1:{port}/"  # the key left the address
        assert "ana · admin" in watched.page.inner_text("header .user")
        assert SESSION_COOKIE in {c["name"] for c in context.cookies()}
        assert watched.page.evaluate("history.length") >= 1
        assert "#key" not in watched.page.evaluate("location.href")
        context.close()
        assert not watched.problems, watched.problems
    finally:
        process.terminate()
        process.wait(timeout=20)
    # the session's key is revoked once the command stops
    from modelyard.bootstrap import bootstrap
    from tests.conftest import sqlite_settings

    services = bootstrap(sqlite_settings(home), create_if_empty=False)
    try:
        answer = [k for k in services.identity.list_keys("ana") if key.startswith(f"my_{k.id}_")]
        assert answer and answer[0].revoked_at is not None
    finally:
        services.close()


def _address(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        found = re.search(r"open (http://\S+#key=\S+)", log.read_text())
        if found:
            base = found.group(1).split("/signin")[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"modelyard ui did not start: {log.read_text()}")
