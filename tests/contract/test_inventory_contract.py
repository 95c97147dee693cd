"""Model-risk inventory fields, embedded and remote: typed, searchable, overdue listed."""

from __future__ import annotations

import datetime as dt

import pytest

from modelyard.client.yard import Yard
from modelyard.errors import InvalidInput, NotFound
from tests.serving.models import cancer, classifier


def test_inventory_fields_are_typed_partial_and_searchable(yard: Yard, unique: str) -> None:
    example = cancer()[0].head()
    for name in (unique, f"{unique}-b"):
        yard.models.register(classifier(), name=name, input_example=example)
    empty = yard.models.inventory(unique)
    assert (empty.risk_tier, empty.validation_status, empty.next_validation) == (
        None,
        "not_validated",
        None,
    )
    first = yard.models.set_inventory(
        unique,
        risk_tier="high",
        business_owner=f"{unique}-owner",
        validator="risk-team",
        validation_status="validated",
        last_validated=dt.date(2026, 5, 1),
        next_validation="2026-11-01",
    )
    assert (first.risk_tier, first.last_validated, first.next_validation) == (
        "high",
        "2026-05-01",
        "2026-11-01",
    )
    kept = yard.models.set_inventory(unique, validation_status="in_progress")
    assert kept.risk_tier == "high" and kept.validation_status == "in_progress"  # others kept
    yard.models.set_inventory(f"{unique}-b", risk_tier="low", next_validation="2027-06-01")

    overdue = {i.model for i in yard.models.overdue(dt.date(2026, 12, 1))}
    assert unique in overdue and f"{unique}-b" not in overdue
    assert f"{unique}-b" in {i.model for i in yard.models.overdue("2027-07-01")}
    by_owner = yard.models.inventory_search(owner=f"{unique}-owner")
    assert [i.model for i in by_owner] == [unique]
    assert unique not in {i.model for i in yard.models.inventory_search(risk_tier="low")}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"risk_tier": "extreme"}, "risk_tier must be one of low, medium, high, critical"),
        ({"validation_status": "done"}, "validation_status must be one of"),
        ({"next_validation": "next spring"}, "next_validation must be a date like 2026-11-23"),
        ({"colour": "red"}, "unknown inventory field(s): colour"),
    ],
)
def test_bad_inventory_values_name_the_field(
    yard: Yard, unique: str, fields: dict[str, str], message: str
) -> None:
    yard.models.register(classifier(), name=unique, input_example=cancer()[0].head())
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        yard.models.set_inventory(unique, **fields)
    assert yard.models.inventory(unique).risk_tier is None  # nothing stored


def test_a_bad_overdue_date_names_the_date_asked_for(yard: Yard) -> None:
    with pytest.raises(InvalidInput, match="^on must be a date like 2026-11-23, got 'notadate'$"):
        yard.models.overdue("notadate")


def test_inventory_of_an_unknown_model_is_not_found(yard: Yard) -> None:
    with pytest.raises(NotFound, match="model 'no-such-model' does not exist"):
        yard.models.inventory("no-such-model")
    with pytest.raises(NotFound, match="model 'no-such-model' does not exist"):
        yard.models.set_inventory("no-such-model", risk_tier="low")
