"""Part 3 of the web UI: the models list, a model's page and a version's page, and the
forms that move aliases and stages (through the approval gate), decide approvals, edit
the model-risk inventory and retire; with the role and workspace rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Site, Watched

GATED = "ui-gated"  # this module's own model: its stages, aliases and inventory may change
DESCRIPTION = "Sorts <img src=x> irises | for the <b>gate</b> tests"


@pytest.fixture(scope="module")
def gated(site: Site) -> Iterator[str]:
    """Three versions registered by the contributor (so a maintainer or an admin may
    review them), and no approval policy until a test sets one."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(features, target)
    with site.yard("contributor") as yard:
        for _ in range(3):
            yard.models.register(
                model, name=GATED, input_example=features.head(5), description=DESCRIPTION
            )
    yield GATED


@pytest.fixture
def approvals_required(site: Site) -> Iterator[int]:
    """The workspace needs one approval before production, for this test only."""
    with site.yard() as yard:
        yard.models.approval_policy(1)
        try:
            yield 1
        finally:
            yard.models.approval_policy(0)


def _narrow(ui: Watched, name: str) -> None:
    """The page at 390 px: no sideways scroll (wide tables scroll inside themselves)."""
    ui.page.set_viewport_size({"width": 390, "height": 844})
    width = ui.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} scrolls sideways on a phone ({width} px)"
    ui.shot(f"{name}-narrow")
    ui.page.set_viewport_size({"width": 1280, "height": 900})


def _submit(page: Any, form: str, **fields: str) -> None:
    """Fill a form's fields (selects by value) and submit it, waiting for the answer."""
    for name, value in fields.items():
        field = page.locator(f"{form} [name={name}]")
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").click()


def test_the_models_list_searches_by_name(ui: Watched, site: Site) -> None:
    page = ui.sign_in(site.keys["viewer"], then="/models")
    rows = page.locator("table.models tbody tr")
    assert "breast-cancer" in rows.all_inner_texts()[0] or rows.count() > 1
    cancer = page.locator("table.models tr", has_text="breast-cancer")
    assert "@champion → v" in cancer.inner_text()
    assert site.team_model not in page.inner_text("main")  # team-b's model is not listed
    ui.shot("models")
    _narrow(ui, "models")

    page.fill("#model-search", "cancer")
    with page.expect_navigation():
        page.press("#model-search", "Enter")
    assert page.url.endswith("/models?search=cancer")
    assert rows.all_inner_texts() and all("cancer" in row for row in rows.all_inner_texts())
    page.click("table.models a:has-text('breast-cancer')")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/models/breast-cancer"

    page = ui.open("/models?search=no-such-model")
    assert "No model's name contains “no-such-model”" in page.inner_text("main")


def test_a_model_page_shows_versions_inventory_approvals_and_card(ui: Watched, site: Site) -> None:
    with site.yard() as yard:
        versions = sorted(yard.models.versions("breast-cancer"), key=lambda v: -v.version)
        champion = yard.models.get("breast-cancer").aliases["champion"]
    page = ui.sign_in(site.keys["viewer"], then="/models/breast-cancer")
    assert page.inner_text("h1").startswith("breast-cancer")
    rows = page.locator("table.versions tbody tr")
    assert rows.count() == len(versions) == 3
    for row, version in zip(rows.all(), versions, strict=True):
        text = row.inner_text()
        assert f"v{version.version}" in text and version.stage.value in text
        assert version.package_digest[:12] in text
        assert version.created_by in text
        run_link = row.locator("a[href^='/runs/']")
        assert run_link.get_attribute("href") == f"/runs/{version.run_id}"
    champion_row = page.locator("table.versions tr", has_text=f"v{champion}").first
    assert "@champion" in champion_row.inner_text()
    assert "breast-cancer" in champion_row.locator("a[href^='/endpoints/']").first.inner_text()
    inventory = page.inner_text("#inventory")
    assert "risk tier" in inventory and "validation" in inventory
    assert "not required" in page.inner_text("table.versions")  # no policy in the quickstart
    card = page.locator("#card .model-card")
    assert f"of v{champion}" in page.inner_text("#card h2")
    for heading in ("Identity", "Purpose and ownership", "Training data", "Signature"):
        assert card.locator("h3", has_text=heading).count() == 1, heading
    assert card.locator("strong", has_text="breast-cancer").count() >= 1  # the card's marks
    signature = card.locator("details.long", has_text="inputs")  # 30 inputs: folded
    assert signature.locator("summary").inner_text() == "30 inputs"
    assert not signature.locator("table").is_visible()
    signature.locator("summary").click()
    assert signature.locator("td", has_text="mean_radius").is_visible()
    ui.shot("model")
    _narrow(ui, "model")

    page.click("#card nav a:has-text('v1')")
    page.wait_for_load_state("networkidle")
    assert "of v1" in page.inner_text("#card h2")
    assert "Model breast-cancer, version 1" in page.inner_text("#card .model-card")


def test_a_version_page_shows_signature_data_metrics_and_lineage(ui: Watched, site: Site) -> None:
    with site.yard() as yard:
        version = yard.models.version("breast-cancer/1")
        assert version.run_id is not None
        run = yard.runs.get(version.run_id)
    page = ui.sign_in(site.keys["viewer"], then="/models/breast-cancer/versions/1")
    assert page.inner_text("h1").startswith("breast-cancer v1")
    assert "mean_radius" in page.inner_text("#signature")
    assert page.locator("#signature tbody tr").count() >= len(version.signature["inputs"]) > 0  # type: ignore[index]
    training = page.inner_text("#training")
    assert "training" in training
    for metric in run.metrics:
        assert metric in training
    lineage = page.locator("a[href^='/lineage?node=']").first
    assert lineage.get_attribute("href") == "/lineage?node=version%3Abreast-cancer/1"
    assert page.locator(f"a[href='/runs/{version.run_id}']").count() >= 1
    assert version.package_digest in page.inner_text("main")
    assert page.locator("#card .model-card h3", has_text="Training run").count() == 1
    ui.shot("version")
    _narrow(ui, "version")


def test_a_viewer_sees_no_write_buttons_and_a_forged_post_is_refused(
    ui: Watched, site: Site
) -> None:
    ui.expected_statuses = {403}
    with site.yard() as yard:
        before = yard.models.get("breast-cancer").aliases
    page = ui.sign_in(site.keys["viewer"], then="/models/breast-cancer")
    assert page.locator("main form[method=post]").count() == 0
    assert page.locator("main button[type=submit]").count() == 0
    ui.open("/models/breast-cancer/versions/1")
    assert page.locator("main form[method=post]").count() == 0

    # the viewer writes the form the page would not show, with the session's own token
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = "/models/breast-cancer/aliases";
            for (const [name, value] of [["csrf", document.body.dataset.csrf],
                                         ["alias", "champion"], ["version", "1"]]) {
              const input = document.createElement("input");
              input.type = "hidden"; input.name = name; input.value = value;
              form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }"""
        )
    assert navigation.value.status == 403
    refusal = page.inner_text("#refusal")
    assert "viewer" in refusal and "promote" in refusal, refusal
    ui.shot("model-viewer-refused")
    with site.yard() as yard:
        assert yard.models.get("breast-cancer").aliases == before


def test_a_contributor_may_only_request_approval(ui: Watched, site: Site, gated: str) -> None:
    page = ui.sign_in(site.keys["contributor"], then=f"/models/{gated}")
    options = page.locator("form.decide select[name=decision] option").all_inner_texts()
    assert options == ["request approval"]
    for action in ("aliases", "stage", "inventory", "retire"):
        assert page.locator(f"form[action$='/{action}']").count() == 0, action


def test_an_outsider_cannot_open_another_workspaces_model(ui: Watched, site: Site) -> None:
    ui.expected_statuses = {404}
    page = ui.sign_in(site.keys["outsider"], then="/models")
    assert site.team_model in page.inner_text("main")
    assert "breast-cancer" not in page.inner_text("main")
    for path, what in (
        ("/models/breast-cancer", "model 'breast-cancer'"),
        ("/models/breast-cancer/versions/1", "model 'breast-cancer' version 1"),
    ):
        answer = page.goto(site.url + path)
        assert answer is not None and answer.status == 404
        notice = page.inner_text(".notice")
        assert f"There is no {what} in your workspaces (team-b)" in notice, notice
        assert "default" not in notice  # whose it is stays unsaid
    ui.shot("model-outsider-404")
    answer = page.goto(f"{site.url}/models/no-such-model")
    assert answer is not None and answer.status == 404
    assert "no-such-model" in page.inner_text(".notice")


def test_the_approval_gate_refuses_production_until_a_second_user_approves(
    ui: Watched, site: Site, gated: str, approvals_required: int, browser: Any
) -> None:
    ui.expected_statuses = {403, 422}
    page = ui.sign_in(site.keys["maintainer"], then=f"/models/{gated}")
    assert "1" in page.inner_text(".facts-row")  # approvals needed
    _submit(page, "form[action$='/stage']", version="1", stage="staging", comment="looks good")
    assert "stage was changed" in page.inner_text("#done")
    assert "staging" in page.locator("table.versions tr", has_text="v1").inner_text()

    _submit(page, "form[action$='/stage']", version="1", stage="production")
    refusal = page.inner_text("#refusal")
    assert "approval" in refusal and f"{gated}/1" in refusal, refusal
    ui.shot("model-gate-refused")
    with site.yard() as yard:
        assert yard.models.version(f"{gated}/1").stage.value == "staging"

    _submit(page, "form.decide", version="1", decision="request", comment="ready for review")
    assert "Approval was requested" in page.inner_text("#done")
    _submit(page, "form.decide", version="1", decision="approve")  # not one's own request
    assert "cannot approve" in page.inner_text("#refusal")

    # a second user reviews it on the version's page
    reviewer = Watched(browser.new_context(viewport={"width": 1280, "height": 900}), site.url)
    reviewer.expected_statuses = {422}
    try:
        second = reviewer.sign_in(site.keys["admin"], then=f"/models/{gated}/versions/1")
        _submit(second, "form.decide", decision="reject", comment="")
        assert "needs a comment" in second.inner_text("#refusal")
        _submit(second, "form.decide", decision="approve", comment="validated on holdout")
        assert second.url == f"{site.url}/models/{gated}/versions/1?done=approve"
        assert "approved" in second.inner_text("#approval h2")
        assert "validated on holdout" in second.inner_text("#approval")
        reviewer.shot("version-approved")
    finally:
        reviewer.context.close()
    assert not reviewer.problems, reviewer.problems

    ui.open(f"/models/{gated}")
    decisions = page.inner_text("#approvals table")
    assert (
        "admin" in decisions and "maintainer" in decisions and "validated on holdout" in decisions
    )
    _submit(page, "form[action$='/stage']", version="1", stage="production", comment="approved")
    assert "stage was changed" in page.inner_text("#done")
    assert "production" in page.locator("table.versions tr", has_text="v1").inner_text()
    _submit(page, "form[action$='/aliases']", alias="champion", version="1")
    assert "@champion → v1" in page.inner_text(".facts-row")
    ui.shot("model-gate-passed")
    _narrow(ui, "model-gate-passed")
    with site.yard() as yard:
        assert yard.models.version(f"{gated}/1").stage.value == "production"
        assert yard.models.get(gated).aliases == {"champion": 1}


def test_the_inventory_is_edited_and_shown(ui: Watched, site: Site, gated: str) -> None:
    page = ui.sign_in(site.keys["maintainer"], then=f"/models/{gated}")
    page.click("#inventory summary")
    _submit(
        page,
        "#inventory form",
        risk_tier="high",
        business_owner="botany-ops",
        next_validation="2027-03-01",
    )
    assert "inventory was saved" in page.inner_text("#done")
    shown = page.inner_text("#inventory dl")
    assert "high" in shown and "botany-ops" in shown and "2027-03-01" in shown
    assert "maintainer" in shown  # who changed it
    with site.yard() as yard:
        inventory = yard.models.inventory(gated)
    assert (inventory.risk_tier, inventory.business_owner) == ("high", "botany-ops")
    # the card says the same, with the description escaped, never markup
    card = page.locator("#card .model-card")
    assert "botany-ops" in card.inner_text()
    assert DESCRIPTION in card.inner_text()
    assert (
        page.locator("main img").count() == 0
        and page.locator("main b", has_text="gate").count() == 0
    )


def test_retiring_asks_first_and_shows_the_refusal(ui: Watched, site: Site, gated: str) -> None:
    ui.expected_statuses = {409}
    page = ui.sign_in(site.keys["maintainer"], then=f"/models/{gated}/versions/3")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("form[action$='/retire'] button")
    page.wait_for_timeout(200)
    assert page.url == f"{site.url}/models/{gated}/versions/3"  # not asked to the server
    with site.yard() as yard:
        assert yard.models.version(f"{gated}/3").stage.value == "candidate"
        yard.models.set_alias(gated, "challenger", 3)
    ui.open(f"/models/{gated}/versions/3")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("form[action$='/retire'] button")
    assert "challenger" in page.inner_text("#refusal")  # an alias still names it
    with site.yard() as yard:
        yard.models.delete_alias(gated, "challenger")
    ui.open(f"/models/{gated}/versions/3")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("form[action$='/retire'] button")
    assert "was retired" in page.inner_text("#done")
    assert "retired" in page.inner_text("h1")
    assert page.locator("main form[method=post]").count() == 0  # nothing more to do with it
    ui.shot("version-retired")
