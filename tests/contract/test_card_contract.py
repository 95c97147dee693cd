"""Model cards, embedded and remote: generated from the catalog, runs, data and endpoints."""

from __future__ import annotations

import json

import pytest

from modelyard.client.yard import Yard
from modelyard.errors import InvalidInput, NotFound
from tests.serving.models import cancer, classifier


def test_a_card_says_what_the_platform_knows(yard: Yard, unique: str) -> None:
    features, target = cancer()
    with yard.start_run(unique, params={"C": 1.0}) as run:
        run.log_dataset(features.assign(target=target), name=f"{unique}-data", role="training")
        run.log_metric("auc", 0.991)
        version = run.log_model(
            classifier(),
            name=unique,
            input_example=features.head(),
            description="Flags <b>risky</b> cases | for review",
        )
    yard.datasets.classify(f"{unique}-data", ["pii"])
    yard.models.set_inventory(unique, risk_tier="high", business_owner="clinic-ops")
    yard.models.transition(version.ref, "staging", comment="passed review")
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])

    card = yard.models.card(version.ref)
    assert card.startswith(f"# Model card: {version.ref}\n")
    for needle in (
        "## Purpose and ownership",
        "Owned by workspace **default**.",
        "Flags <b>risky</b> cases | for review",
        "| high | clinic-ops |",
        f"| {unique}-data | training | {len(features)} | {len(features.columns) + 1} |",
        "| pii |",
        "| C | 1.0 |",
        "| auc | 0.991 |",
        "| mean radius | float | no |",
        f"| {unique} | primary 100% | since revision 1 |",
        "| candidate | staging |",
        "passed review",
        "State: not required (0 of 0 approvals)",
        f"Monitors: {unique} (endpoint {unique})",
        "No alerts.",
    ):
        assert needle in card, needle

    page = yard.models.card(
        f"{unique}@{version.aliases[0]}" if version.aliases else version.ref, "html"
    )
    assert page.startswith("<!doctype html>")
    assert "Flags &lt;b&gt;risky&lt;/b&gt; cases" in page and "<b>risky</b>" not in page
    assert "<td>pii</td>" in page

    shaped = json.loads(yard.models.card(version.ref, "json"))
    assert shaped["title"] == f"Model card: {version.ref}"
    sections = {section["title"]: section for section in shaped["sections"]}
    assert "Owned by workspace **default**." in sections["Purpose and ownership"]["lines"]
    inventory = sections["Purpose and ownership"]["tables"][0]
    assert inventory["columns"][:2] == ["risk tier", "business owner"]
    assert inventory["rows"][0][:2] == ["high", "clinic-ops"]
    assert ["auc", "0.991"] in sections["Training run"]["tables"][1]["rows"]


def test_card_errors_name_the_problem(yard: Yard, unique: str) -> None:
    version = yard.models.register(classifier(), name=unique, input_example=cancer()[0].head())
    with pytest.raises(InvalidInput, match="card format must be one of markdown, html, json"):
        yard.models.card(version.ref, "pdf")
    with pytest.raises(NotFound, match="has no version 9"):
        yard.models.card(f"{unique}/9")
    card = yard.models.card(version.ref)
    assert "Registered without a run" in card and "Not deployed behind any endpoint." in card
