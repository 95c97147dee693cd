"""Part 2 of the web UI: experiments, an experiment's runs table (filter, sort, columns,
cursor paging), a run's page and the comparison of runs, in a real browser."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.conftest import Site, Watched

PAGED = "ui-runs-paging"  # this module's own experiment: 23 runs
PAGED_RUNS = 23
CUSTOMERS = "ui-runs-customers"  # a dataset of one of them, classified pii


@dataclass
class Seeded:
    run_ids: list[str] = field(default_factory=list)  # in the order they were started
    detailed: str = ""  # the run with a dataset, tags, an artifact and metric history
    artifact: bytes = b""


@pytest.fixture(scope="module")
def seeded(site: Site) -> Seeded:
    """PAGED_RUNS runs with a param ``i`` and a metric ``score`` (i / 10, so they sort
    in reverse start order), the last one with a classified dataset and history."""
    import pandas as pd

    made = Seeded()
    with site.yard() as yard:
        for index in range(PAGED_RUNS):
            params = {"i": index, "family": "even" if index % 2 == 0 else "odd"}
            with yard.start_run(PAGED, name=f"paged-{index:02d}", params=params) as run:
                run.log_batch({"score": [index / 10]})
                made.run_ids.append(run.id)
        with yard.start_run(PAGED, name="detailed", params={"i": 99}, capture_env=True) as run:
            run.log_batch({"score": [0.2, 0.5, 0.9], "loss": [0.9, 0.4, 0.1]})
            run.set_tags({"team": "<b>risk</b>"})
            frame = pd.DataFrame({"age": [31, 45, 27], "income": [1.0, 2.5, 3.0]})
            run.log_dataset(frame, name=CUSTOMERS, role="training")
            made.artifact = b'{"threshold": 0.5}\n'
            run.log_text(made.artifact.decode(), "evaluation/report.json")
            made.detailed = run.id
        yard.datasets.classify(CUSTOMERS, ["pii"])
    return made


def _sign_in(ui: Watched, site: Site, user: str, path: str) -> Any:
    """Sign in as ``user`` and land on ``path`` (its query string kept whole)."""
    return ui.sign_in(site.keys[user], then=quote(path, safe="/"))


def _texts(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def _column(page: Any, header: str) -> list[str]:
    """The cells of the runs table's column whose header reads ``header``."""
    headers = _texts(page, "table.runs thead th")
    index = next(
        i for i, text in enumerate(headers) if text.split(" ▲")[0].split(" ▼")[0] == header
    )
    return _texts(page, f"table.runs tbody tr td:nth-child({index + 1})")


def _no_sideways_scroll(page: Any, what: str, drawn: str = "") -> None:
    """Open the page again as a phone would (390 px wide), charts drawn at that width."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    if drawn:
        page.wait_for_selector(drawn)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{what} scrolls sideways on a phone ({width} px)"


def test_a_viewer_finds_the_experiments_and_their_runs(ui: Watched, site: Site) -> None:
    page = _sign_in(ui, site, "viewer", "/experiments")
    assert page.url == f"{site.url}/experiments"
    row = page.locator("table.experiments tbody tr", has_text="quickstart")
    assert row.locator("td.num").inner_text() == "3"
    assert "val_loss" in row.inner_text()
    ui.shot("runs-experiments")
    page.click("header nav a:has-text('Runs')")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/experiments"
    page.click("table.experiments a:has-text('quickstart')")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/experiments/quickstart"
    assert sorted(_column(page, "run")[i].split()[0] for i in range(3)) == [
        "gbm-60",
        "sgd-alpha-0.0001",
        "sgd-alpha-0.01",
    ]
    assert _column(page, "status") == ["finished"] * 3
    ui.shot("runs-table")
    _no_sideways_scroll(page, "the runs table")
    ui.shot("runs-table-narrow")


def test_a_filter_narrows_the_runs_and_a_malformed_one_shows_where(ui: Watched, site: Site) -> None:
    page = _sign_in(ui, site, "viewer", "/experiments/quickstart")
    page.fill("#run-filter", 'params.model = "gradient-boosting"')
    page.press("#run-filter", "Enter")
    page.wait_for_load_state("networkidle")
    assert [name.split()[0] for name in _column(page, "run")] == ["gbm-60"]
    assert "filter=params.model" in page.url

    broken = "metrics.accuracy > and status = 'FINISHED'"
    page.fill("#run-filter", broken)
    page.press("#run-filter", "Enter")
    page.wait_for_load_state("networkidle")
    problem = page.inner_text("#filter-problem")
    assert "invalid filter at position 20: expected a value after '>', found 'and'" in problem
    assert page.inner_text("#filter-problem mark") == "a"  # the caret under the API's position
    assert page.locator("table.runs").count() == 0
    field_state = page.evaluate(
        "(() => { const box = document.getElementById('run-filter');"
        " return [document.activeElement === box, box.selectionStart,"
        " box.getAttribute('aria-invalid')]; })()"
    )
    assert field_state == [True, 19, "true"]  # the cursor waits at the mistake
    assert page.input_value("#run-filter") == broken
    ui.shot("runs-filter-error")

    page.fill("#run-filter", "metrics.accuracy > 'high'")
    page.press("#run-filter", "Enter")
    page.wait_for_load_state("networkidle")
    assert "metrics.accuracy is numeric" in page.inner_text("#filter-problem")


def test_clicking_a_header_sorts_by_it_both_ways(ui: Watched, site: Site) -> None:
    columns = "picked=1&col=params.model&col=metrics.accuracy"
    page = _sign_in(ui, site, "viewer", f"/experiments/quickstart?{columns}")
    page.click("table.runs th a:has-text('accuracy')")  # a metric sorts best first
    page.wait_for_load_state("networkidle")
    descending = [float(value) for value in _column(page, "metric accuracy")]
    assert descending == sorted(descending, reverse=True) and len(set(descending)) > 1
    assert page.get_attribute("th[aria-sort]", "aria-sort") == "descending"
    page.click("table.runs th a:has-text('accuracy')")
    page.wait_for_load_state("networkidle")
    assert [float(v) for v in _column(page, "metric accuracy")] == sorted(descending)
    assert "order=metrics.accuracy" in page.url
    page.click("table.runs th a:has-text('run')")  # an attribute sorts ascending first
    page.wait_for_load_state("networkidle")
    names = [cell.split()[0] for cell in _column(page, "run")]
    assert names == sorted(names)
    page.click("table.runs th a:has-text('model')")
    page.wait_for_load_state("networkidle")
    models = _column(page, "param model")
    assert models == sorted(models) and len(set(models)) == 2
    assert columns in page.url  # sorting keeps the chosen columns


def test_cursor_paging_with_a_small_page_size(ui: Watched, site: Site, seeded: Seeded) -> None:
    page = _sign_in(ui, site, "viewer", f"/experiments/{PAGED}?size=10&order=name")
    seen: list[str] = []
    for expected in (10, 10, 4):  # "detailed" and the 23 others
        names = [cell.split()[0] for cell in _column(page, "run")]
        assert len(names) == expected
        seen += names
        if expected == 10:
            page.click("nav.pager a[rel=next]")
            page.wait_for_load_state("networkidle")
    assert page.locator("nav.pager a[rel=next]").count() == 0
    assert "page 3 · runs 21\u201324" in page.inner_text("nav.pager")
    assert seen == ["detailed", *(f"paged-{i:02d}" for i in range(PAGED_RUNS))]
    page.click("nav.pager a[rel=prev]")
    page.wait_for_load_state("networkidle")
    assert [c.split()[0] for c in _column(page, "run")] == seen[10:20]
    page.click("nav.pager a[rel=prev]")
    page.wait_for_load_state("networkidle")
    assert [c.split()[0] for c in _column(page, "run")] == seen[:10]
    assert page.locator("nav.pager a[rel=prev]").count() == 0
    ui.shot("runs-paging")


def test_the_column_picker_chooses_param_and_metric_columns(
    ui: Watched, site: Site, seeded: Seeded
) -> None:
    page = _sign_in(ui, site, "viewer", f"/experiments/{PAGED}?filter=params.i+<+3")
    headers = _texts(page, "table.runs thead th")
    assert "param family" in headers and "metric score" in headers
    page.click(".picker summary")
    for box in page.locator(".picker input[name=col]").all():
        box.set_checked(box.get_attribute("value") in ("metrics.loss", "params.family"))
    ui.shot("runs-column-picker")
    page.click(".picker button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert _texts(page, "table.runs thead th")[6:] == ["param family", "metric loss"]
    assert sorted(_column(page, "param family")) == ["even", "even", "odd"]  # filter kept
    assert "col=params.family" in page.url and "filter=params.i" in page.url
    page.click("table.runs th a:has-text('family')")  # sorting keeps the chosen columns
    page.wait_for_load_state("networkidle")
    assert _texts(page, "table.runs thead th")[6:] == ["param family ▲", "metric loss"]


def test_the_run_page_shows_what_the_run_recorded(ui: Watched, site: Site, seeded: Seeded) -> None:
    page = _sign_in(ui, site, "viewer", f"/runs/{seeded.detailed}")
    main = page.inner_text("main")
    assert "detailed" in page.inner_text("h1") and seeded.detailed in main
    assert _texts(page, "section:has(h2:has-text('Params')) table th") == ["i"]
    assert page.inner_text("section:has(h2:has-text('Tags')) td") == "<b>risk</b>"  # escaped
    dataset = page.locator("table.datasets tbody tr", has_text=CUSTOMERS)
    with site.yard() as yard:
        fingerprint = yard.datasets.versions(CUSTOMERS)[0].fingerprint
    assert dataset.locator("td.mono").get_attribute("title") == fingerprint
    assert _texts(dataset, "td.num") == ["3", "2"]  # rows, columns
    assert dataset.locator(".badge.pii").inner_text() == "pii"
    environment = page.inner_text("section:has(h2:has-text('Environment'))")
    assert "python" in environment and "installed packages" in environment
    # two metrics with history: one chart each, drawn from the metric history route
    page.wait_for_selector("#metric-charts .metric-chart .main-svg")
    assert _texts(page, "#metric-charts figcaption") == ["loss · 3 steps", "score · 3 steps"]
    ui.shot("runs-run-page")
    link = page.locator("table.artifacts a", has_text="evaluation/report.json")
    sha256 = page.locator("table.artifacts td.mono").first.get_attribute("title")
    with page.expect_download() as download:
        link.click()
    saved = Path(download.value.path())
    assert saved.read_bytes() == seeded.artifact
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha256
    _no_sideways_scroll(page, "the run page", "#metric-charts .main-svg")
    ui.shot("runs-run-page-narrow")


def test_the_quickstart_run_links_to_its_model_and_data(ui: Watched, site: Site) -> None:
    page = _sign_in(ui, site, "viewer", "/experiments/quickstart")
    page.click("table.runs a:has-text('gbm-60')")
    page.wait_for_load_state("networkidle")
    assert re.fullmatch(rf"{site.url}/runs/[0-9a-f]{{32}}", page.url)
    assert page.locator("dd a.badge", has_text="breast-cancer v").count() == 1
    roles = _texts(page, "table.datasets tbody td:first-child")
    assert roles == ["test", "training"]
    page.wait_for_selector("#metric-charts .metric-chart .main-svg")
    captions = _texts(page, "#metric-charts figcaption")
    assert [caption.split(" · ")[0] for caption in captions] == ["train_loss", "val_loss"]
    assert "Logged at one step" in page.inner_text("#metric-charts .single-metrics")


def test_comparing_two_runs_ticked_in_the_table(ui: Watched, site: Site) -> None:
    page = _sign_in(ui, site, "viewer", "/experiments/quickstart?order=name")
    assert page.is_disabled("#compare-button")
    boxes = page.locator("table.runs input[name=runs]")
    boxes.nth(0).check()
    assert page.is_disabled("#compare-button")  # one run is not a comparison
    boxes.nth(1).check()
    assert page.inner_text("#compare-count") == "2 ticked"
    ids = [boxes.nth(i).get_attribute("value") for i in range(2)]
    page.click("#compare-button")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{site.url}/compare?runs={ids[0]},{ids[1]}"
    assert _texts(page, "table.compare thead th a") == ["gbm-60", "sgd-alpha-0.0001"]
    differing = _texts(page, "table.compare tr.diff th")
    assert {"model", "accuracy", "val_loss", "started"} <= set(differing)
    assert "seed" in _texts(page, "table.compare tr.same th")  # both used seed 7
    assert "experiment" not in differing
    page.check("#only-differences")
    assert page.locator("table.compare tr.same").first.is_hidden()
    # the chart overlays the chosen metric of both runs; choosing another does not reload
    page.wait_for_selector("#compare-chart .main-svg")
    page.evaluate("window.keptAcrossChanges = true")
    page.select_option("#compare-metric", "val_loss")
    page.wait_for_selector("#compare-chart[data-metric='val_loss']")
    assert page.get_attribute("#compare-chart", "data-traces") == "2"
    assert page.locator("#compare-chart .scatterlayer .trace").count() == 2
    assert page.evaluate("window.keptAcrossChanges") is True
    ui.shot("runs-compare")
    _no_sideways_scroll(page, "the comparison", "#compare-chart .main-svg")
    ui.shot("runs-compare-narrow")


def test_compare_needs_two_to_ten_runs_it_can_see(ui: Watched, site: Site) -> None:
    ui.expected_statuses = {404, 422}
    ui.sign_in(site.keys["viewer"])
    answer = ui.page.goto(f"{site.url}/compare?runs=abc")
    assert answer is not None and answer.status == 422
    assert "compare needs 2 to 10 runs, not 1" in ui.page.inner_text("main")
    answer = ui.page.goto(f"{site.url}/compare?runs=abc,def")
    assert answer is not None and answer.status == 404
    assert "run 'abc' does not exist" in ui.page.inner_text("main")
    answer = ui.page.goto(f"{site.url}/experiments/no-such-experiment")
    assert answer is not None and answer.status == 404
    assert "experiment 'no-such-experiment' does not exist" in ui.page.inner_text("main")


def test_a_member_of_another_team_cannot_see_defaults_runs(
    ui: Watched, site: Site, seeded: Seeded
) -> None:
    ui.expected_statuses = {403, 404}
    page = _sign_in(ui, site, "outsider", "/experiments")
    assert page.locator("a[href^='/experiments/']").count() == 0
    assert "quickstart</a>" not in page.content() and PAGED not in page.inner_text("main")
    for path in (
        "/experiments/quickstart",
        f"/runs/{seeded.detailed}",
        f"/compare?runs={seeded.run_ids[0]},{seeded.run_ids[1]}",
    ):
        answer = page.goto(site.url + path)
        assert answer is not None and answer.status == 404, path
        text = page.inner_text("main")
        assert "in your workspaces (team-b)" in text and "default" not in text, path
        assert "paged-" not in text and "detailed" not in text
    assert page.request.get(f"{site.url}/api/v1/runs/{seeded.detailed}").status == 403
