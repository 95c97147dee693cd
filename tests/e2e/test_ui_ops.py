"""Parts 4-6 of the web UI: endpoints (routes, revisions, rollback, per-version figures,
shadow comparison, recent predictions), monitors (drift, distributions, performance,
quality, service levels, alerts, retraining requests) and lineage (an interactive
graph with sensitivity classes), with the role and workspace rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from modelyard.api.session import SESSION_COOKIE
from tests.e2e.conftest import Site, Watched

expect = pytest.importorskip("playwright.sync_api").expect

ENDPOINT = "breast-cancer"
OWN_ENDPOINT = "ops-triage"  # this module's endpoint: the rollback test changes it
OWN_MODEL = "ops-triage"
OWN_DATASET = "ops-patients"


def api(site: Site, user: str, path: str, **params: Any) -> Any:
    headers = {"authorization": f"Bearer {site.keys[user]}"}
    answer = httpx.get(f"{site.url}/api/v1{path}", headers=headers, params=params)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(scope="module")
def ops(site: Site) -> Iterator[Site]:
    """A dataset classed ``pii`` that fed a run, its model version, and an endpoint with
    two revisions serving it."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    with site.yard("maintainer") as yard:
        with yard.start_run("ops-lineage", name="triage") as run:
            run.log_dataset(features.assign(target=target), name=OWN_DATASET, role="training")
            model = LogisticRegression(max_iter=300).fit(features, target)
            run.log_model(model, name=OWN_MODEL, input_example=features.head(5))
        yard.datasets.classify(OWN_DATASET, ["pii"])
        yard.endpoints.create(OWN_ENDPOINT, routes=[f"{OWN_MODEL}/1=100"], comment="first")
        yard.endpoints.update(
            OWN_ENDPOINT, batching={"max_batch_size": 8}, comment="smaller batches"
        )
    yield site


def _logged(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the endpoint's prediction log, read as the viewer."""
    import pyarrow as pa

    headers = {"authorization": f"Bearer {site.keys['viewer']}"}
    path = f"{site.url}/api/v1/endpoints/{ENDPOINT}/predictions"
    answer = httpx.get(path, headers=headers, params=params)
    answer.raise_for_status()
    rows: list[dict[str, Any]] = pa.ipc.open_stream(answer.content).read_all().to_pylist()
    return rows


def _no_sideways_scroll(ui: Watched, name: str) -> None:
    ui.page.set_viewport_size({"width": 390, "height": 844})
    ui.page.wait_for_timeout(300)  # let the charts resize
    width = ui.page.evaluate("document.documentElement.scrollWidth")
    ui.shot(f"{name}-narrow")
    assert width <= 390, f"{name} scrolls sideways on a phone ({width} px)"
    ui.page.set_viewport_size({"width": 1280, "height": 900})


def _traces(ui: Watched, chart: str) -> list[str]:
    names: list[str] = ui.page.evaluate(
        f"(document.getElementById('{chart}').data || []).map(t => t.name)"
    )
    return names


def _mark(ui: Watched) -> None:
    """A mark in the page's window: still there after an action means no reload."""
    ui.page.evaluate("window.__stayed = true")


def _stayed(ui: Watched) -> bool:
    return bool(ui.page.evaluate("window.__stayed === true"))


# -- endpoints -----------------------------------------------------------------------


def test_the_endpoints_list_shows_routes_shadows_and_monitors(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["viewer"], then="/endpoints")
    row = page.locator("table.endpoints tr", has_text=ENDPOINT).first
    assert "breast-cancer v2 · 90%" in row.inner_text()
    assert "breast-cancer v1 · 10%" in row.inner_text()
    assert "breast-cancer v3" in row.locator(".badge.shadow").inner_text()
    assert "firing" in row.inner_text()  # its monitor has firing alerts
    assert OWN_ENDPOINT in page.inner_text("table.endpoints")
    ui.shot("endpoints")
    _no_sideways_scroll(ui, "endpoints")
    page.click(f"table.endpoints a:has-text('{ENDPOINT}')")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{ops.url}/endpoints/{ENDPOINT}"


def test_an_endpoint_page_shows_routes_revisions_figures_and_predictions(
    ui: Watched, ops: Site
) -> None:
    page = ui.sign_in(ops.keys["viewer"], then=f"/endpoints/{ENDPOINT}")
    routes = page.locator("table.routes tbody tr").all_inner_texts()
    assert len(routes) == 3
    assert "v2" in routes[0] and "90%" in routes[0]
    assert "shadow" in routes[2] and "v3" in routes[2]
    timeline = page.inner_text("ol.timeline")
    assert "quickstart: champion with a 10% canary and a shadow" in timeline
    assert "by root" in timeline and "routes" in timeline
    # per-version figures: the API's numbers, formatted
    compare = api(ops, "viewer", f"/endpoints/{ENDPOINT}/compare")
    rows = page.locator("#compare-table tbody tr").all_inner_texts()
    assert len(rows) == len(compare) == 3
    for shown, figures in zip(rows, compare, strict=True):
        assert f"v{figures['version']}" in shown
        assert f"{figures['requests']:,}" in shown
    shadow = next(f for f in compare if f["role"] == "shadow")
    assert f"{100 * shadow['agreement']:.1f}%" in page.inner_text("#shadow-summary")
    assert _traces(ui, "chart-traffic") == ["answered", "errors"]
    assert _traces(ui, "chart-latency") == ["p50", "p99"]
    # another range is read and drawn in the page, without a reload
    _mark(ui)
    page.select_option("#compare-range", "3600000")
    expect(page.locator("#compare-status")).to_contain_text("requests")
    assert _stayed(ui)
    assert page.locator("#compare-table tbody tr").count() == 3
    # recent predictions, newest first, each linked to its lineage
    logged = page.locator("table.predictions tbody tr")
    newest = _logged(ops, {"role": "primary", "limit": 20, "newest_first": "true"})
    assert logged.locator("td:first-child").all_inner_texts() == [r["id"] for r in newest]
    first = logged.first.locator("a").first
    prediction_id = first.inner_text()
    assert first.get_attribute("href") == "/lineage?node=" + quote(
        f"prediction:{ENDPOINT}/{prediction_id}", safe="/"
    )
    # what the shadow answered, for the ids shown, as the log has it
    ids = logged.locator("td:first-child a").all_inner_texts()
    shadowed = _logged(ops, {"role": "shadow", "id": ids})
    assert page.locator("table.predictions .badge.shadow").count() == len(shadowed)
    for row in shadowed[:3]:
        shown = page.locator("table.predictions tr", has_text=row["id"]).inner_text()
        assert f"v{row['version']}: {row['output']}" in shown
    assert page.locator("form.rollback").count() == 0  # a viewer cannot roll back
    ui.shot("endpoint")
    _no_sideways_scroll(ui, "endpoint")
    first.click()
    page.wait_for_load_state("networkidle")
    assert f"prediction:{ENDPOINT}/{prediction_id}" in page.inner_text("#lineage-root")
    assert page.locator(f"svg .node[data-node^='version:{ENDPOINT}/']").count() >= 1
    ui.shot("lineage-prediction")


def test_a_maintainer_rolls_back_from_the_timeline(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["maintainer"], then=f"/endpoints/{OWN_ENDPOINT}")
    before = api(ops, "maintainer", f"/endpoints/{OWN_ENDPOINT}")
    form = page.locator("form.rollback")
    assert form.locator("select[name=to] option").all_inner_texts()[-1].startswith("1")
    form.locator("select[name=to]").select_option(str(before["revision"] - 1))
    form.locator("input[name=comment]").fill("back to the first batching")
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert asked and "Roll back endpoint ops-triage" in asked[0]
    assert "Rolled back" in page.inner_text(".notice.ok")
    after = api(ops, "maintainer", f"/endpoints/{OWN_ENDPOINT}")
    assert after["revision"] == before["revision"] + 1
    first = api(ops, "maintainer", f"/endpoints/{OWN_ENDPOINT}/revisions")[0]
    assert after["spec"]["batching"] == first["spec"]["batching"]
    newest = page.locator("ol.timeline li").first.inner_text()
    assert f"revision {after['revision']}" in newest
    assert "by maintainer" in newest and "back to the first batching" in newest
    ui.shot("endpoint-rolled-back")


def test_a_viewer_sees_no_rollback_and_a_forged_one_is_refused(ui: Watched, ops: Site) -> None:
    ui.expected_statuses = {403}
    page = ui.sign_in(ops.keys["viewer"], then=f"/endpoints/{OWN_ENDPOINT}")
    assert page.locator("form.rollback").count() == 0
    assert page.locator("button:has-text('Roll back')").count() == 0
    before = api(ops, "viewer", f"/endpoints/{OWN_ENDPOINT}")["revision"]
    token = page.get_attribute("body", "data-csrf")
    cookies = {SESSION_COOKIE: ops.keys["viewer"]}
    with httpx.Client(base_url=ops.url, cookies=cookies) as forged:
        refused = forged.post(
            f"/endpoints/{OWN_ENDPOINT}/rollback",
            data={"csrf": token, "to": "1"},
            headers={"accept": "text/html"},
        )
        assert refused.status_code == 403
        assert "has the viewer role, which does not allow &#39;deploy&#39;" in refused.text
        missing = forged.post(f"/endpoints/{OWN_ENDPOINT}/rollback", data={"to": "1"})
        assert missing.status_code == 403 and "CSRF" in missing.text
    assert api(ops, "viewer", f"/endpoints/{OWN_ENDPOINT}")["revision"] == before


# -- monitors ------------------------------------------------------------------------


def test_the_monitors_list_groups_monitors_by_endpoint(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["viewer"], then="/monitors")
    assert f"Endpoint {ENDPOINT}" in page.inner_text("main h2")
    row = page.locator("main tr", has_text=ENDPOINT).first
    assert "drift · critical" in row.inner_text()
    assert page.locator(".windows-strip span.critical").count() >= 1
    ui.shot("monitors")
    _no_sideways_scroll(ui, "monitors")


def test_a_monitor_page_charts_drift_distributions_performance_and_slos(
    ui: Watched, ops: Site
) -> None:
    page = ui.sign_in(ops.keys["viewer"], then=f"/monitors/{ENDPOINT}")
    expect(page.locator("#dist-caption")).to_contain_text("Reference:")
    # alerts: firing and resolved, as the API has them; a viewer has no buttons
    alerts = api(ops, "viewer", "/alerts", monitor=ENDPOINT)
    shown = page.locator("table.alerts tbody tr")
    assert shown.count() == len(alerts)
    firing = [a for a in alerts if a["status"] == "firing"]
    assert page.locator("table.alerts .badge.firing").count() == len(firing)
    assert page.locator("button:has-text('Acknowledge')").count() == 0
    assert page.locator("button:has-text('Close')").count() == 0
    # drift over time: the most drifted features first; another feature and range in place
    assert _traces(ui, "chart-drift")[:2] == ["mean_texture", "worst_texture"]
    _mark(ui)
    page.select_option("#drift-feature", "worst_radius")
    assert _traces(ui, "chart-drift") == ["worst_radius"]
    windows = ui.page.evaluate("document.getElementById('chart-drift').data[0].x.length")
    page.select_option("#drift-range", "10")
    assert ui.page.evaluate("document.getElementById('chart-drift').data[0].x.length") <= 10
    assert windows == 4
    # the reference vs the window, for the feature chosen above
    assert page.input_value("#dist-feature") == "worst_radius"
    assert _traces(ui, "chart-distribution") == ["reference", "window"]
    page.select_option("#dist-feature", "mean_texture")
    assert "Reference: breast-cancer/2" in page.inner_text("#dist-caption")
    assert "rows 300\u2013400" in page.inner_text("#dist-caption")
    assert _stayed(ui)
    # realised performance per version with its reference; quality; service levels
    assert "breast-cancer/2" in _traces(ui, "chart-performance")
    assert "breast-cancer/2 reference" in _traces(ui, "chart-performance")
    quality = page.inner_text("table.quality")
    assert "mean_texture" in quality and "warn" in quality
    slos = page.inner_text("table.slos")
    assert "latency p99 ms" in slos and "250" in slos
    assert "open" in page.inner_text("table.requests")
    ui.shot("monitor")
    _no_sideways_scroll(ui, "monitor")


def test_a_monitor_without_windows_says_what_comes(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["viewer"], then=f"/monitors/{OWN_ENDPOINT}")
    assert "No alert so far" in page.inner_text("#alerts + *")
    assert "No drift results yet" in page.inner_text("#chart-drift")
    assert "No reference profile yet" in page.inner_text("#chart-distribution")
    assert "No performance figures yet" in page.inner_text("#chart-performance")
    assert "No service-level results" in page.inner_text("main")
    assert "No retraining request" in page.inner_text("main")


def test_a_maintainer_acknowledges_an_alert_and_closes_a_request(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["maintainer"], then=f"/monitors/{ENDPOINT}")
    alert = next(
        a
        for a in api(ops, "maintainer", "/alerts", monitor=ENDPOINT)
        if a["status"] == "firing" and not a["acknowledged_at"]
    )
    row = page.locator(f"#alert-{alert['id']}")
    row.locator("input[name=comment]").fill("looking at the texture feed")
    row.locator("button:has-text('Acknowledge')").click()
    page.wait_for_load_state("networkidle")
    assert "Alert acknowledged." in page.inner_text(".notice.ok")
    assert "by maintainer" in page.locator(f"#alert-{alert['id']}").inner_text()
    acknowledged = next(
        a for a in api(ops, "maintainer", "/alerts", monitor=ENDPOINT) if a["id"] == alert["id"]
    )
    assert acknowledged["acknowledged_by"] == "maintainer"
    assert acknowledged["acknowledge_comment"] == "looking at the texture feed"
    request = api(ops, "maintainer", "/retraining-requests", monitor=ENDPOINT, status="open")[0]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#request-{request['id']} button:has-text('Close')").click()
    page.wait_for_load_state("networkidle")
    assert "Retraining request closed." in page.inner_text(".notice.ok")
    closed = api(ops, "maintainer", "/retraining-requests", monitor=ENDPOINT, status="closed")
    assert request["id"] in {r["id"] for r in closed}


def test_a_forged_acknowledge_by_a_viewer_is_refused(ui: Watched, ops: Site) -> None:
    page = ui.sign_in(ops.keys["viewer"], then=f"/monitors/{ENDPOINT}")
    alert = api(ops, "viewer", "/alerts", monitor=ENDPOINT)[0]
    token = page.get_attribute("body", "data-csrf")
    with httpx.Client(base_url=ops.url, cookies={SESSION_COOKIE: ops.keys["viewer"]}) as forged:
        refused = forged.post(
            f"/monitors/{ENDPOINT}/alerts/{alert['id']}/acknowledge",
            data={"csrf": token, "comment": "not mine"},
        )
    assert refused.status_code == 403
    assert "which does not allow &#39;monitor&#39;" in refused.text
    after = next(a for a in api(ops, "viewer", "/alerts") if a["id"] == alert["id"])
    assert after["acknowledge_comment"] != "not mine"


# -- lineage -------------------------------------------------------------------------


def test_lineage_draws_the_graph_with_classes_and_recentres_in_place(
    ui: Watched, ops: Site
) -> None:
    page = ui.sign_in(ops.keys["viewer"], then=f"/lineage?node=dataset:{OWN_DATASET}")
    version = page.locator(f"svg .node[data-node='version:{OWN_MODEL}/1']")
    assert "pii" in (version.text_content() or "")  # the class reaches the version built from it
    endpoint = page.locator(f"svg .node[data-node='endpoint:{OWN_ENDPOINT}']")
    assert "pii" in (endpoint.text_content() or "")
    assert "pii" not in (page.locator("svg .node[data-node^='run:']").text_content() or "")
    assert page.locator("svg .node.root").get_attribute("data-node", timeout=2000) is not None
    ui.shot("lineage")
    _mark(ui)
    version.click()
    expect(page.locator("#lineage-root")).to_have_text(f"version:{OWN_MODEL}/1")
    assert _stayed(ui)
    assert page.url.endswith("/lineage?node=" + quote(f"version:{OWN_MODEL}/1", safe=""))
    root = page.locator("svg .node.root")
    assert root.get_attribute("data-node") == f"version:{OWN_MODEL}/1"
    assert "pii" in page.inner_text("#node-details")
    # a node typed in the entry box, drawn in place too
    page.fill("#lineage-node", f"endpoint:{ENDPOINT}")
    page.press("#lineage-node", "Enter")
    expect(page.locator("#lineage-root")).to_have_text(f"endpoint:{ENDPOINT}")
    assert _stayed(ui)
    assert page.locator("svg .node[data-node^='run:']").count() == 3
    assert page.locator("svg .node[data-node^='dataset:']").count() == 2
    # keyboard: a focused node re-centres with Enter
    page.focus(f"svg .node[data-node='version:{ENDPOINT}/3']")
    page.keyboard.press("Enter")
    expect(page.locator("#lineage-root")).to_have_text(f"version:{ENDPOINT}/3")
    ui.shot("lineage-version")
    _no_sideways_scroll(ui, "lineage")
    page.go_back()
    expect(page.locator("#lineage-root")).to_have_text(f"endpoint:{ENDPOINT}")


def test_lineage_explains_a_malformed_node_and_offers_starting_points(
    ui: Watched, ops: Site
) -> None:
    ui.expected_statuses = {422}
    page = ui.sign_in(ops.keys["viewer"], then="/lineage")
    assert f"endpoint:{ENDPOINT}" in page.inner_text("#lineage-start")
    assert page.locator("#lineage-view").is_hidden()
    ui.shot("lineage-start")
    _mark(ui)
    page.click(f"#lineage-start a[data-node='endpoint:{OWN_ENDPOINT}']")
    expect(page.locator("#lineage-root")).to_have_text(f"endpoint:{OWN_ENDPOINT}")
    assert _stayed(ui) and page.locator("#lineage-start").is_hidden()
    assert page.locator("svg .node").count() == 4
    page.fill("#lineage-node", "nonsense")
    page.press("#lineage-node", "Enter")
    page.wait_for_selector("#lineage-error .notice")
    assert "invalid lineage node 'nonsense'" in page.inner_text("#lineage-error")
    answer = page.goto(f"{ops.url}/lineage?node=nonsense")  # the same without the script
    assert answer is not None and answer.status == 422
    assert "expected KIND:KEY" in page.inner_text("#lineage-error")


def test_another_workspaces_member_gets_404_pages(ui: Watched, ops: Site) -> None:
    ui.expected_statuses = {404}
    page = ui.sign_in(ops.keys["outsider"], then="/endpoints")
    assert ENDPOINT not in page.inner_text("main")
    for path, what in (
        (f"/endpoints/{ENDPOINT}", f"endpoint '{ENDPOINT}'"),
        (f"/monitors/{ENDPOINT}", f"monitor '{ENDPOINT}'"),
        (f"/lineage?node=endpoint:{ENDPOINT}", f"endpoint:{ENDPOINT}"),
        (f"/lineage?node=dataset:{OWN_DATASET}", f"dataset:{OWN_DATASET}"),
    ):
        answer = page.goto(ops.url + path)
        assert answer is not None and answer.status == 404, path
        notice = page.inner_text(".notice")
        assert f"There is no {what} in your workspaces (team-b)" in notice, notice
        assert "default" not in notice  # whose it is stays unsaid
    answer = page.goto(f"{ops.url}/endpoints/no-such-endpoint")
    assert answer is not None and answer.status == 404
    assert "no-such-endpoint" in page.inner_text(".notice")
