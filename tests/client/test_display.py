"""What a notebook shows: runs, versions, run pages and the package's own names."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser

import pytest

from modelyard.domain.models import ModelVersion, Stage
from modelyard.domain.runs import Run, RunPage, RunStatus

SCRIPT = "<script>alert(1)</script>"


class Tags(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def a_run(name: str = "r1") -> Run:
    return Run(
        id="4f2a" * 8,
        experiment_id=1,
        experiment="churn",
        name=name,
        status=RunStatus.FINISHED,
        start_time=1_790_000_000_000,
        end_time=1_790_000_060_000,
        params={"C": "0.5", "note": SCRIPT},
        metrics={"auc": 0.91},
    )


def test_a_run_and_a_page_of_runs_render_escaped() -> None:
    run = a_run()
    html = run._repr_html_()
    assert "run r1" in html and "C=0.5" in html and "auc=0.91" in html
    assert "2026-09-21 14:13:20 UTC" in html
    assert SCRIPT not in html and "&lt;script&gt;" in html
    assert "script" not in Tags(html).tags

    page = RunPage([run, a_run("r2")], next_cursor="abc")
    assert [r.name for r in page] == ["r1", "r2"] and len(page) == 2
    shown = page._repr_html_()
    assert "2 runs (more: pass next_cursor)" in shown and "metrics.auc" in shown
    assert Tags(shown).tags.count("tr") == 3


def test_a_version_renders_its_stage_aliases_and_inputs() -> None:
    version = ModelVersion(
        model="churn",
        version=3,
        stage=Stage.STAGING,
        source="uploads/x",
        package_digest="ab" * 32,
        flavor="sklearn",
        created_at=1_790_000_000_000,
        updated_at=1_790_000_000_000,
        description=SCRIPT,
        signature={"inputs": [{"name": "age", "type": "float", "nullable": False}]},
        aliases=["champion"],
    )
    html = version._repr_html_()
    assert "model version churn/3" in html and "staging" in html and "champion" in html
    assert "age: float" in html and SCRIPT not in html


@pytest.mark.slow  # a fresh interpreter: make test-fast leaves it to make test
def test_dir_of_the_package_offers_its_public_names() -> None:
    code = (
        "import sys, modelyard; names = dir(modelyard); "
        "assert 'connect' in names and 'Yard' in names and 'NotFound' in names, names; "
        "assert 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
