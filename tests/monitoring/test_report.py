"""The monitor report over a real monitor's history.

A yard on SQLite: a classifier trained on generated data and registered from a run
that kept its training set (so its reference profile is built), an endpoint serving
it (which creates its default monitor), four hours of logged traffic of which the
last two have drifted and are not labelled yet, and one run of the monitor. The
report is rendered from what ``MonitorService.windows``/``results`` and
``AlertService.alerts`` return, as the CLI does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.monitors import Monitor
from modelyard.monitoring.distributions import numeric_bins
from modelyard.monitoring.drift import observe
from modelyard.monitoring.profile import profile_table
from modelyard.monitoring.reference import Reference
from modelyard.monitoring.report import render_report
from modelyard.serving.journal import canonical, record_line
from tests.conftest import sqlite_settings

HOUR = 3_600_000
START = 1_700_000_000_000 // HOUR * HOUR  # 2023-11-14 22:00 UTC
GENERATED = START + 10 * HOUR
SCRIPT = "<script>x</script>"
ESCAPED = "&lt;script&gt;x&lt;/script&gt;"
WINDOWS = ((400, False), (400, False), (400, True), (1200, True))  # (rows, drifted)


# -- a yard with a monitored endpoint ------------------------------------------------


def features(rng: np.random.Generator, rows: int, *, shifted: bool = False) -> pd.DataFrame:
    """Inputs; shifted, ``income``, ``plan`` and ``SCRIPT`` move and ``age`` does not."""
    plan_shares = [0.2, 0.3, 0.5] if shifted else [0.6, 0.3, 0.1]
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "income": rng.lognormal(10, 0.5, rows) * (1.8 if shifted else 1.0),
            "plan": rng.choice(["basic", "pro", "enterprise"], rows, p=plan_shares),
            SCRIPT: rng.normal(1.5 if shifted else 0.0, 1, rows),
        }
    )


def trained(training: pd.DataFrame, target: pd.Series) -> Any:
    encode = make_column_transformer(
        (OneHotEncoder(), ["plan"]), remainder=StandardScaler(), verbose_feature_names_out=False
    )
    return make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(training, target)


def log_traffic(services: Services, rng: np.random.Generator, model: Any) -> None:
    """Four hourly windows of primary traffic; the undrifted ones get labels, 80 % right."""
    journal = services.predictions.journal("churn")
    labels = []
    for index, (rows, shifted) in enumerate(WINDOWS):
        frame = features(rng, rows, shifted=shifted)
        scores, predicted = model.predict_proba(frame), model.predict(frame)
        lines = b""
        for n, record in enumerate(frame.to_dict(orient="records")):
            prediction_id = f"w{index}-{n}"
            lines += record_line(
                id=prediction_id,
                endpoint="churn",
                revision=1,
                model="churn",
                version=1,
                role="primary",
                ts=START + index * HOUR + n * (HOUR // rows),
                latency_ms=float(rng.gamma(2.0, 6.0)),
                input=canonical(record).encode(),
                output=canonical(predicted[n]).encode(),
                scores=canonical(scores[n].tolist()).encode(),
                error="timeout" if rng.uniform() < 0.01 else None,
            )
            if not shifted:
                right = rng.uniform() < 0.8
                answer = int(predicted[n])
                labels.append((prediction_id, answer if right else 1 - answer))
        journal.append(lines)
    journal.close()
    services.predictions.record_labels("churn", labels)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A yard whose endpoint "churn" served four hours, and whose monitor checked them."""
    built = bootstrap(sqlite_settings(tmp_path_factory.mktemp("report") / "home"))
    yard = Yard(LocalBackend(built))
    rng = np.random.default_rng(7)
    training = features(rng, 2000)
    target = (training["age"] + rng.normal(0, 10, len(training)) > 40).astype(int)
    model = trained(training, target)
    with yard.start_run("churn") as run:  # the reference is profiled as the version registers
        run.log_dataset(training.assign(target=target), name="churn-train", role="training")
        run.log_model(model, name="churn", input_example=training.head())
    yard.endpoints.create("churn", routes=["churn/1=100"])  # and its monitor, "churn"
    log_traffic(built, rng, model)
    built.monitors.run("churn", now=START + len(WINDOWS) * HOUR + 1)
    yield built
    built.close()


@dataclass
class History:
    """A monitor's history as the services return it."""

    monitor: Monitor
    references: dict[str, Reference]
    windows: list[dict[str, Any]]
    results: list[dict[str, Any]]
    alerts: list[dict[str, Any]]

    def render(self) -> str:
        return render_report(
            self.monitor,
            self.references,
            self.windows,
            self.results,
            self.alerts,
            generated_at=GENERATED,
        )


def history_of(services: Services, name: str) -> History:
    monitor = services.monitors.get(name)
    return History(
        monitor,
        {"churn/1": services.references.get("churn/1")},
        services.monitors.windows(name),
        services.monitors.results(name),
        services.alerts.alerts({monitor.id: name}),
    )


@pytest.fixture(scope="module")
def history(monitored: Services) -> History:
    return history_of(monitored, "churn")


@pytest.fixture(scope="module")
def page(history: History) -> str:
    return history.render()


# -- reading the page ----------------------------------------------------------------


class Page(HTMLParser):
    """Every start tag of the page, with its attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)

    def references(self) -> list[str]:
        """Every attribute that could fetch something or lead somewhere."""
        keys = ("src", "href", "xlink:href", "action", "data", "srcset", "poster")
        return [value or "" for _, attrs in self.tags for k, value in attrs.items() if k in keys]


def section(page: str, heading: str) -> str:
    """The HTML of the section under ``<h2>heading</h2>``."""
    start = page.index(f"<h2>{heading}</h2>")
    return page[start : page.index("</section>", start)]


def feature_order(page: str) -> list[str]:
    """The input names in the order their distribution figures appear."""
    grid = section(page, "Input distributions")
    return [part.split("</code>")[0] for part in grid.split("<figcaption><b><code>")[1:]]


def latest_drift_columns(page: str) -> list[str]:
    table = section(page, "Input drift").split("<h3>")[1]
    return [row.split("</code>")[0] for row in table.split("<tr><td><code>")[1:]]


# -- the whole page --------------------------------------------------------------------


def test_the_page_is_one_parsable_offline_file(page: str) -> None:
    parsed = Page(page)

    assert parsed.count("html") == 1 and parsed.count("title") == 1
    ids = [attrs["id"] for _, attrs in parsed.tags if attrs.get("id")]
    assert len(ids) == len(set(ids))  # seven inline SVGs share one id space
    assert {link[1:] for link in parsed.references()} <= set(ids)  # links only within it
    assert parsed.count("script") == parsed.count("link") == parsed.count("img") == 0
    policy = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert policy and "default-src 'none'" in (policy[0] or "")
    assert len(page) < 1_000_000


def test_one_plot_per_chart(page: str) -> None:
    # drift over time; one distribution per input (4); performance; latency and errors
    assert Page(page).count("svg") == 1 + 4 + 1 + 1
    assert section(page, "Input drift").count("<svg") == 1
    assert section(page, "Input distributions").count("<svg") == 4
    assert section(page, "Performance").count("<svg") == 1
    assert section(page, "Latency and errors").count("<svg") == 1


def test_the_header_says_what_is_watched_and_how_it_went(page: str, history: History) -> None:
    header = page[page.index("<header>") : page.index("</header>")]

    assert "<h1>Monitor <code>churn</code></h1>" in header
    assert "<th>Endpoint</th><td><code>churn</code>" in header
    assert "tumbling time windows of 1h" in header
    assert "<th>Generated</th><td>2023-11-15 08:00 UTC" in header
    assert "<th>Covering</th><td>2023-11-14 22:00 UTC to 2023-11-15 02:00 UTC" in header
    severities = [w["severity"] for w in history.windows]
    assert severities[2:] == ["critical", "critical"]
    assert f'4 windows: {severities.count("ok")} <span class="sev sev-ok">ok</span>' in header
    assert '2 <span class="sev sev-critical">critical</span>' in header
    firing = [a for a in history.alerts if a["status"] == "firing"]
    assert firing and f"<th>Open alerts</th><td>{len(firing)} (" in header
    assert "<code>churn/1</code> (training data &#x27;churn-train&#x27;" in header


def test_alerts_are_listed_newest_first_with_their_deliveries(page: str, history: History) -> None:
    table = section(page, "Alerts")
    rows = table.split("<tr><td>")[1:]

    assert len(rows) == len(history.alerts)
    for row, alert in zip(rows, history.alerts, strict=True):
        assert row.startswith(f"<code>{alert['check']}</code>")
        assert f">{alert['status']}</td>" in row
    drift = next(r for r in rows if r.startswith("<code>drift</code>"))
    assert "sev-critical" in drift and "drift: 3 columns past threshold: " in drift
    assert "fired: log modelyard.alerts sent" in drift


def test_drifted_columns_are_named_and_shown_first(page: str) -> None:
    drift = section(page, "Input drift")

    assert "Latest window (2023-11-15 01:00 UTC): 3 of 4 columns drifted." in drift
    assert latest_drift_columns(page)[-1] == "age"
    for column in ("income", "plan", ESCAPED):
        assert f">{column}</text>" in drift  # a line of the chart, named in its legend
    assert ">age</text>" not in drift

    order = feature_order(page)
    assert sorted(order[:3]) == sorted(["income", "plan", ESCAPED]) and order[3] == "age"
    grid = section(page, "Input distributions")
    assert grid.count('<figure class="feature drifted">') == 3
    assert grid.count(">latest window</text>") == 4


def test_user_strings_are_escaped_everywhere(page: str) -> None:
    assert SCRIPT not in page
    assert Page(page).count("script") == 0
    for heading in ("Alerts", "Input drift", "Input distributions"):
        assert ESCAPED in section(page, heading)


def test_alert_text_is_escaped_and_never_a_link(history: History) -> None:
    alert = dict(history.alerts[0], summary="moved <b>a lot</b>")
    alert["deliveries"] = [
        {
            "event": "fired",
            "channel": "webhook https://hooks.example/x",
            "status": "failed",
            "attempts": 3,
            "error": "<i>refused</i>",
            "at": START,
        }
    ]
    page = render_report(history.monitor, {}, [], [], [alert], generated_at=GENERATED)

    assert "moved &lt;b&gt;a lot&lt;/b&gt;" in page
    assert "fired: webhook https://hooks.example/x failed (&lt;i&gt;refused&lt;/i&gt;)" in page
    assert Page(page).references() == [] and Page(page).count("b") == 0


def test_performance_draws_realised_and_estimated_figures_per_version(page: str) -> None:
    performance = section(page, "Performance")

    for label in ("realised", "estimated", "reference"):
        assert f">churn/1 {label}</text>" in performance
    for label in (">accuracy</text>", ">roc_auc</text>", ">labelled</text>", ">rows</text>"):
        assert label in performance


def test_latency_and_errors_are_drawn_with_their_targets(page: str) -> None:
    technical = section(page, "Latency and errors")

    for label in ("p50", "p99", "p50 target", "p99 target", "error rate", "error rate target"):
        assert f">{label}</text>" in technical


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.S)


def axes_right_edges(svg: str) -> list[float]:
    """The right edge of each axes: the white rectangles after the figure's own."""
    boxes = re.findall(
        r'<path d="M ([\d.]+) [\d.]+ \nL ([\d.]+) [\d.]+ \nL [^"]*z\n" style="fill: #ffffff"', svg
    )
    return [max(float(a), float(b)) for a, b in boxes[1:]]


def legend_texts(svg: str) -> list[tuple[float, str]]:
    """(x, text) of every legend entry (the only 7px text of a chart)."""
    found = re.findall(r'<text style="font-size: 7px;[^"]*" x="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    return [(float(x), text) for x, text in found]


def line_points(svg: str, text: str) -> list[list[tuple[float, float]]]:
    """The vertices of every data line (clipped to its axes) in the colour of the legend
    entry ``text``."""
    color = re.findall(r"stroke: (#[0-9a-f]{6})", svg[: svg.index(f">{text}</text>")])[-1]
    paths = re.findall(
        r'<path d="([^"]*)" clip-path="[^"]*" style="fill: none; stroke: ' + color, svg
    )
    return [
        [(float(x), float(y)) for x, y in re.findall(r"[ML] ([\d.-]+) ([\d.-]+)", d)] for d in paths
    ]


def test_legends_sit_beside_the_axes_never_over_the_data(page: str) -> None:
    for svg in (svgs(section(page, heading))[0] for heading in ("Input drift", "Performance")):
        right = max(axes_right_edges(svg))
        entries = legend_texts(svg)
        assert entries and all(x > right for x, _ in entries), (right, entries)


def test_a_p_value_of_zero_is_drawn_at_the_floor_and_said_so(history: History) -> None:
    windows = sorted({r["window_start"] for r in history.results})
    results = [
        dict(r, details={**r["details"], "p_value": 0.0})
        if r["check"] == "drift" and r["column"] == "income" and r["window_start"] == windows[2]
        else r
        for r in history.results
    ]
    page = replace(history, results=results).render()
    drift = section(page, "Input drift")

    assert "A p-value below 1e-16 (or 0) is drawn at 1e-16, marked ▼" in drift
    [income] = [points for points in line_points(drift, "income") if len(points) == 3]
    assert income[2][1] > income[1][1] > 0  # down to the floor, lowest on the axes
    assert "Latest window (2023-11-15 01:00 UTC)" in drift


# -- partial histories -------------------------------------------------------------------


def test_a_monitor_with_nothing_yet_renders_a_clear_page(history: History) -> None:
    page = render_report(history.monitor, {}, [], [], [], generated_at=GENERATED)

    assert Page(page).count("svg") == 0
    assert "No windows computed yet: run the monitor to fill this page." in page
    assert "<th>Covering</th><td>no windows computed yet</td>" in page
    assert "<th>Open alerts</th><td>none</td>" in page
    assert "No reference profile: nothing to compare inputs with." in page
    for empty in ("No alerts.", "No drift results yet.", "No technical results yet."):
        assert empty in page


def test_a_reference_without_windows_is_drawn_alone(history: History) -> None:
    page = replace(history, windows=[], results=[], alerts=[]).render()

    assert "No window computed yet: the reference distributions of churn/1 are drawn" in page
    assert section(page, "Input distributions").count("<svg") == 4
    assert ">latest window</text>" not in page
    assert feature_order(page) == ["age", "income", "plan", ESCAPED]  # the profile's order


def test_the_estimate_alone_before_any_label(history: History) -> None:
    estimated = [r for r in history.results if r["check"] == "estimated_performance"]
    page = replace(history, references={}, results=estimated).render()
    performance = section(page, "Performance")

    assert "No window has enough labels yet: only the estimate is drawn." in performance
    assert ">churn/1 estimated</text>" in performance
    assert ">churn/1 realised</text>" not in performance


def test_rows_windows_failed_windows_and_missing_figures(monitored: Services) -> None:
    monitored.monitors.create("churn-rows", {"endpoint": "churn", "window": "600 rows"})
    monitored.monitors.run("churn-rows")
    rows = history_of(monitored, "churn-rows")
    failed = {
        "start": 2400,
        "end": 3000,
        "status": "failed",
        "rows": None,
        "labelled": None,
        "severity": None,
        "summary": None,
        "error": "ValueError: <broken>",
        "attempts": 3,
        "claimed_by": "worker",
        "computed_at": START,
    }
    drift = [i for i, r in enumerate(rows.results) if r["check"] == "drift"]
    rows.results[drift[0]] = dict(rows.results[drift[0]], value=None)
    rows.results[drift[1]] = dict(rows.results[drift[1]], value=1e308)  # stored infinity
    page = replace(rows, windows=[*rows.windows, failed]).render()

    assert [w["end"] for w in rows.windows] == [600, 1200, 1800, 2400]
    assert "tumbling windows of 600 rows" in page
    assert "rows 0 to 3000, traffic 2023-11-14 22:00 UTC to 2023-11-15 01:59 UTC" in page
    assert "1 failed, last error: <code>ValueError: &lt;broken&gt;</code>" in page
    assert "Latest window (rows from 1800)" in page
    assert "against the latest window (line), rows 1800 to 2399;" in page
    assert "1970" not in page  # a row position is not a time
    assert ">window (first row)</text>" in page
    assert Page(page).count("svg") == 1 + 4 + 1 + 1


def test_features_are_capped_with_a_note(history: History) -> None:
    # constant columns have no spread to draw, which keeps the figures cheap
    wide = pd.DataFrame({f"f{n:02d}": np.full(50, float(n)) for n in range(35)})
    reference = replace(history.references["churn/1"], inputs=profile_table(wide))
    page = render_report(history.monitor, {"churn/1": reference}, [], [], [])
    grid = section(page, "Input distributions")

    assert grid.count('<figure class="feature">') == 12
    assert grid.count("No spread to draw: the reference holds one value or none.") == 12
    assert "23 more input features not shown." in grid


def test_numeric_bins_are_densities_on_merged_reference_bins_with_tails() -> None:
    rng = np.random.default_rng(9)
    profile = profile_table(pd.DataFrame({"x": rng.normal(0, 1, 5000)})).columns["x"]
    current = rng.normal(0.5, 1.5, 800)
    observed = observe(profile, pa.array(current)).to_dict()

    bins = numeric_bins(profile, observed)

    assert bins is not None
    edges, reference_density, current_density = bins
    assert current_density is not None
    widths = np.diff(edges)
    assert float((reference_density * widths).sum()) == pytest.approx(1.0)
    assert float((current_density * widths).sum()) == pytest.approx(1.0)
    assert reference_density[0] == reference_density[-1] == 0  # the tails: none of it there
    merged = reference_density[1:-1] * widths[1:-1]
    assert merged == pytest.approx(np.full(20, 0.05), abs=0.011)  # 20 bins of equal mass
    assert profile.minimum is not None
    below = float((current < profile.minimum).sum()) / len(current)
    assert current_density[0] * widths[0] == pytest.approx(below)


@pytest.mark.slow  # starts a process
def test_importing_the_module_does_not_load_matplotlib() -> None:
    code = "import sys, modelyard.monitoring.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path.cwd())
