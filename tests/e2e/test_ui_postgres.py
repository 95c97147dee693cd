"""The web UI once over PostgreSQL: the quickstart's data in a throwaway database, every
main page opened in the browser by an admin, each answering 200 with no console error."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, modelyard_command
from tests.e2e.conftest import Watched

PAGES = (
    "/",
    "/experiments",
    "/experiments/quickstart",
    "/models",
    "/models/breast-cancer",
    "/models/breast-cancer/versions/1",
    "/endpoints",
    "/endpoints/breast-cancer",
    "/monitors",
    "/monitors/breast-cancer",
    "/lineage?node=endpoint:breast-cancer",
    "/audit",
)


@pytest.fixture(scope="module")
def pg_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    from tests.stores import throwaway_postgres

    with throwaway_postgres() as url:
        home = tmp_path_factory.mktemp("ui-pg") / "home"
        store = {"MODELYARD_DB_URL": url, "MODELYARD_ARTIFACTS": str(home / "artifacts")}
        env = {**os.environ, "MODELYARD_HOME": str(home), **store}
        env.pop("MODELYARD_URL", None)
        for args in (("db", "upgrade"), ("quickstart",), ("admin", "init", "--name", "admin")):
            done = subprocess.run(
                modelyard_command(*args), env=env, check=True, capture_output=True, text=True
            )
        key = done.stdout.strip().splitlines()[-1]
        server = ServerProcess(home, env=store).start()
        try:
            yield server, key
        finally:
            server.stop()


@pytest.mark.slow
@pytest.mark.postgres
def test_every_main_page_over_postgresql(
    browser: Any, pg_site: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, key = pg_site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    ui = Watched(context, server.url)
    try:
        ui.sign_in(key)
        for path in PAGES:
            answer = ui.page.goto(server.url + path)
            ui.page.wait_for_load_state("networkidle")
            assert answer is not None and answer.status == 200, (path, answer and answer.status)
            assert "breast-cancer" in ui.page.inner_text("main") or path in (
                "/experiments",
                "/audit",
                "/experiments/quickstart",
            ), path
            name = path.strip("/").replace("/", "-").replace("?", "-") or "overview"
            ui.shot(f"postgres-{name}")
    finally:
        context.close()
    assert not ui.problems, ui.problems
