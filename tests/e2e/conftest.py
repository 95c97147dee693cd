"""The browser tests' world: a real ``modelyard server`` over the quickstart's data, and
Debian's chromium driven by Playwright.

- ``site``: one server per test session (per xdist worker) on 127.0.0.1, its store
  filled by ``modelyard quickstart`` (runs, three versions, an endpoint with a canary
  and a shadow, labels, a monitor with alerts), with keys for an admin, a maintainer,
  a contributor and a viewer of ``default``, and a second workspace ``team-b`` with a
  model of its own and a member who sees only it;
- ``browser``: one headless chromium per test module;
- ``ui``: a fresh browser context per test (no cookies) with a page that records
  console errors, page errors and every request that leaves the server's origin; the
  test fails if any happened (unless it expects them);
- screenshots go to ``MODELYARD_UI_SHOTS`` (default: a temp folder), never the repo.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelyard.client.yard import Yard, connect
from tests.conftest import ServerProcess, modelyard_command

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(os.environ.get("MODELYARD_UI_SHOTS") or Path(tempfile.gettempdir()) / "modelyard-ui")
ROLES = ("maintainer", "contributor", "viewer")

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # make install-test installs it; say so rather than skip silently
    pytest.fail(f"{CHROMIUM} is missing: run make install-test", pytrace=False)


@dataclass
class Site:
    """The running server, its keys by user, and what the quickstart made."""

    server: ServerProcess
    keys: dict[str, str] = field(default_factory=dict)
    team_model: str = "team-b-scorer"

    @property
    def url(self) -> str:
        return self.server.url

    def yard(self, user: str = "admin", workspace: str | None = None) -> Yard:
        return connect(self.url, api_key=self.keys[user], workspace=workspace)


def _run(home: Path, *args: str) -> str:
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    done = subprocess.run(
        modelyard_command(*args), env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("ui-home")
    _run(home, "quickstart")
    admin_key = _run(home, "admin", "init", "--name", "admin").strip().splitlines()[-1]
    server = ServerProcess(home).start()
    site = Site(server, {"admin": admin_key})
    try:
        _populate(site)
        yield site
    finally:
        server.stop()


def _populate(site: Site) -> None:
    """Users of every role in ``default``, and a second team with its own model."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    with site.yard() as yard:
        for role in ROLES:
            yard.admin.create_user(role, role)
            site.keys[role] = yard.admin.create_key(role, name="ui tests")[1]
        yard.admin.create_workspace("team-b")
        yard.admin.create_user("outsider", "maintainer", workspace="team-b")
        site.keys["outsider"] = yard.admin.create_key("outsider", name="ui tests")[1]
    with site.yard("outsider") as team:
        features, target = load_iris(return_X_y=True, as_frame=True)
        model = LogisticRegression(max_iter=300).fit(features, target)
        team.models.register(model, name=site.team_model, input_example=features.head(20))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module: Playwright's sync API keeps an asyncio loop running
    while it is open, so it must be closed before another module's tests (which may call
    ``asyncio.run``) run in the same worker."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors, page errors and off-site requests are recorded."""

    def __init__(self, context: Any, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.page = context.new_page()
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("request", self._on_request)

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = str(message.text)
        if any(f"status of {status}" in text for status in self.expected_statuses):
            return
        self.problems.append(f"console error: {text}")

    def _on_request(self, request: Any) -> None:
        url = str(request.url)
        if not url.startswith((self.origin, "data:", "blob:", "about:")):
            self.problems.append(f"request left the server: {url}")

    def sign_in(self, key: str, then: str = "/") -> Any:
        self.page.goto(f"{self.origin}/signin?next={then}")
        self.page.fill("#key", key)
        self.page.click("#signin-form button[type=submit]")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def open(self, path: str) -> Any:
        self.page.goto(self.origin + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def ui(browser: Any, site: Site) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context, site.url)
    yield watched
    context.close()
    assert not watched.problems, "\n".join(watched.problems)
