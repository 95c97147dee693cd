"""A server error is a page with an error id, never a stack trace: the store breaks
under a running server, and the page says what an administrator looks for in the log."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, prepare_store
from tests.e2e.conftest import Watched


@pytest.mark.slow
def test_a_server_error_is_a_page_with_its_error_id(browser: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = prepare_store(home)
    server = ServerProcess(home).start()
    context = browser.new_context()
    try:
        ui = Watched(context, server.url)
        ui.expected_statuses = {500}
        ui.sign_in(key)
        with sqlite3.connect(home / "modelyard.db") as db:  # the store breaks
            db.execute("ALTER TABLE experiments RENAME TO experiments_gone")
        answer = ui.page.goto(f"{server.url}/experiments")
        assert answer is not None and answer.status == 500
        text = ui.page.inner_text("main")
        found = re.search(r"error id ([0-9a-f]{12})", text)
        assert "Something went wrong" in text and found, text
        assert "Traceback" not in ui.page.content() and "sqlite3" not in ui.page.content()
        assert f"error id {found.group(1)}" in server.output()  # with the traceback
        assert "Traceback" in server.output()
        assert not ui.problems, ui.problems
    finally:
        context.close()
        server.stop()
