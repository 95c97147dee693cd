"""Part 7 of the web UI: the audit log for admins of ``default``: the hash chain's
verification, and the events filtered by actor, action, resource, workspace and time,
a page at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Site, Watched


def _rows(ui: Watched) -> list[dict[str, str]]:
    """The events table as dicts of its cells' text, by column name."""
    table = ui.page.locator("table.audit")
    columns = table.locator("thead th").all_inner_texts()
    return [
        dict(zip(columns, row.locator("td").all_inner_texts(), strict=True))
        for row in table.locator("tbody tr").all()
    ]


def _filter(ui: Watched, **fields: str) -> list[dict[str, str]]:
    page = ui.page
    for name, value in fields.items():
        page.fill(f"form.audit-filters [name={name}]", value)
    with page.expect_navigation():
        page.click("form.audit-filters button[type=submit]")
    return _rows(ui) if page.locator("table.audit").count() else []


def test_only_admins_of_default_see_the_audit_log(ui: Watched, site: Site) -> None:
    ui.expected_statuses = {403}
    for user, reason in (
        ("maintainer", "has the maintainer role, which does not allow 'admin'"),
        ("outsider", "is not a member of workspace 'default'"),
    ):
        ui.context.clear_cookies()
        page = ui.sign_in(site.keys[user])
        assert page.locator("header nav a", has_text="Audit").count() == 0
        answer = page.goto(f"{site.url}/audit")
        assert answer is not None and answer.status == 403
        assert reason in page.inner_text(".notice"), page.inner_text(".notice")
        assert page.locator("table.audit").count() == 0
    ui.shot("audit-refused")


def test_the_audit_log_shows_the_chain_and_filters_events(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["admin"])
    page.click("header nav a:has-text('Audit')")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/audit"
    chain = page.inner_text("#chain")
    assert "Hash chain intact" in chain
    with site.yard() as yard:
        counted = yard.audit.verify()
    assert f"all {counted:,} events verified" in chain, chain
    rows = _rows(ui)
    assert 0 < len(rows) <= 50
    ui.shot("audit")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the audit page scrolls sideways on a phone ({width} px)"
    ui.shot("audit-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    rows = _filter(ui, actor="outsider")
    assert rows and {row["actor"].split()[0] for row in rows} == {"outsider"}
    assert any(row["resource"].startswith(f"models/{site.team_model}") for row in rows)
    rows = _filter(ui, actor="", workspace="team-b")
    assert rows and {row["workspace"] for row in rows} == {"team-b"}
    rows = _filter(ui, workspace="", resource=f"models/{site.team_model}")
    assert rows and all(row["resource"].startswith(f"models/{site.team_model}") for row in rows)
    rows = _filter(ui, resource="", action="create user")
    created = {row["resource"] for row in rows}
    assert {"users/maintainer", "users/viewer", "users/outsider"} <= created, created

    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    assert _filter(ui, action="", until=yesterday) == []
    assert "No events match" in page.inner_text("main")
    assert _filter(ui, until="", since=today.isoformat())  # everything happened today
    assert f"since={today.isoformat()}" in page.url


def test_the_audit_log_pages_on(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["admin"], then="/audit?limit=25")
    first = [int(row["#"]) for row in _rows(ui)]
    assert len(first) == 25 and first == sorted(first)
    with page.expect_navigation():
        page.click("nav.pager a[rel=next]")
    second = [int(row["#"]) for row in _rows(ui)]
    assert second and min(second) > max(first)
    assert "limit=25" in page.url and f"after={first[-1]}" in page.url
    with page.expect_navigation():
        page.click("nav.pager a:has-text('First page')")
    assert [int(row["#"]) for row in _rows(ui)] == first


@contextmanager
def _edited_event(site: Site, event_id: int) -> Iterator[None]:
    """Someone with the database file rewrites one event's actor; put back afterwards."""
    database = site.server.home / "modelyard.db"
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        (actor,) = conn.execute(
            "SELECT actor FROM audit_events WHERE id = ?", (event_id,)
        ).fetchone()
        with conn:
            conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = ?", (event_id,))
        try:
            yield
        finally:
            with conn:
                conn.execute("UPDATE audit_events SET actor = ? WHERE id = ?", (actor, event_id))


def test_a_broken_chain_is_shown_naming_the_event(ui: Watched, site: Site) -> None:
    ui.sign_in(site.keys["admin"], then="/audit")
    assert "Hash chain intact" in ui.page.inner_text("#chain")
    with _edited_event(site, 3):
        page = ui.open("/audit")
        chain = page.inner_text("#chain")
        assert "Hash chain broken" in chain and "audit event 3 was edited" in chain, chain
        assert page.locator("#chain[role=alert]").count() == 1
        ui.shot("audit-broken")
    assert "Hash chain intact" in ui.open("/audit").inner_text("#chain")
