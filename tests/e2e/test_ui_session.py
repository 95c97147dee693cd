"""Part 1 of the web UI: signing in and out, the session cookie, CSRF, roles and
workspaces, and the error pages."""

from __future__ import annotations

from typing import Any

import httpx

from modelyard.api.session import SESSION_COOKIE
from tests.e2e.conftest import Site, Watched


def _cookie(ui: Watched, name: str) -> dict[str, Any]:
    cookies = {c["name"]: c for c in ui.context.cookies()}
    return dict(cookies[name])


def test_sign_in_keeps_the_key_in_an_httponly_strict_cookie(ui: Watched, site: Site) -> None:
    ui.open("/?since=1")
    assert ui.page.url.startswith(f"{site.url}/signin")  # no session: sent to sign in
    ui.shot("signin")
    page = ui.sign_in(site.keys["viewer"], then="/?since=1")
    assert page.url == f"{site.url}/?since=1"  # and back where it was going
    cookie = _cookie(ui, SESSION_COOKIE)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find(SESSION_COOKIE) == -1  # scripts cannot read it
    assert "viewer" in page.inner_text("header .user")


def test_a_wrong_key_is_refused_with_the_reason(ui: Watched, site: Site) -> None:
    ui.expected_statuses = {401}
    page = ui.sign_in("my_0000000000000000_not-a-key")
    assert page.url.startswith(f"{site.url}/signin")
    assert "is not valid" in page.inner_text(".notice")
    assert SESSION_COOKIE not in {c["name"] for c in ui.context.cookies()}


def test_an_expired_key_sends_the_user_back_to_sign_in(ui: Watched, site: Site) -> None:
    with site.yard() as yard:
        record, key = yard.admin.create_key("viewer", name="short-lived")
        ui.sign_in(key)
        assert ui.page.url == f"{site.url}/"
        yard.admin.revoke_key(record.id)
    page = ui.open("/?since=2")
    assert page.url.startswith(f"{site.url}/signin")
    assert "was revoked" in page.inner_text(".notice")
    assert "next=%2F%3Fsince%3D2" in page.url


def test_sign_out_forgets_the_key(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["viewer"])
    page.click("header button:has-text('Sign out')")
    page.wait_for_load_state("networkidle")
    assert "signed out" in page.inner_text(".notice")
    assert SESSION_COOKIE not in {c["name"] for c in ui.context.cookies()}
    ui.open("/")
    assert ui.page.url.startswith(f"{site.url}/signin")


def test_a_form_or_api_write_without_the_csrf_token_is_refused(ui: Watched, site: Site) -> None:
    ui.sign_in(site.keys["admin"])
    key = _cookie(ui, SESSION_COOKIE)["value"]
    cookies = {SESSION_COOKIE: key}
    with httpx.Client(base_url=site.url, cookies=cookies) as browser_like:
        # another site's form posting to sign out, or to an API write, has no token
        refused = browser_like.post("/signout", data={"csrf": "forged"})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        write = browser_like.post("/api/v1/experiments", json={"name": "csrf-probe"})
        assert write.status_code == 403
        assert "CSRF token" in write.json()["error"]["message"]
        assert browser_like.get("/api/v1/experiments/csrf-probe").status_code == 404
        # the page's own token makes the same write pass
        token = ui.page.get_attribute("body", "data-csrf")
        made = browser_like.post(
            "/api/v1/experiments", json={"name": "csrf-probe"}, headers={"x-csrf-token": token}
        )
        assert made.status_code == 201, made.text


def test_the_workspace_switcher_lists_the_users_workspaces(ui: Watched, site: Site) -> None:
    with site.yard() as yard:
        yard.admin.add_member("team-b", "viewer", "viewer")
    page = ui.sign_in(site.keys["viewer"])
    options = page.locator("#workspace-choice option").all_inner_texts()
    assert options == ["default (viewer)", "team-b (viewer)"]
    assert site.team_model not in page.inner_text("main")
    with page.expect_navigation():  # choosing submits the switcher's form
        page.select_option("#workspace-choice", "team-b")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/"
    assert site.team_model in page.inner_text("main")
    ui.shot("models-team-b")


def test_an_unknown_page_is_a_404_page_naming_it(ui: Watched, site: Site) -> None:
    ui.expected_statuses = {404}
    ui.sign_in(site.keys["viewer"])
    answer = ui.page.goto(f"{site.url}/no-such-page")
    assert answer is not None and answer.status == 404
    assert "/no-such-page" in ui.page.inner_text("main")
    assert "Traceback" not in ui.page.content()


def test_the_overview_at_1280_and_on_a_narrow_screen(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["admin"])
    assert "breast-cancer" in page.inner_text("main") or page.locator(".card").count() >= 4
    ui.shot("overview")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the overview scrolls sideways on a phone ({width} px)"
    ui.shot("overview-narrow")


def test_every_control_is_reachable_by_keyboard(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["admin"])
    reached = []
    for _ in range(15):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "Skip to content" in reached[0]
    assert {"Runs", "Models", "Endpoints", "Monitors", "Lineage", "Audit", "Sign out"} <= set(
        reached
    )
