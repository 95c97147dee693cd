"""Retirement, embedded and remote: only when nothing serves it; never undone; history kept."""

from __future__ import annotations

import pytest

from modelyard.client.yard import Yard
from modelyard.errors import Conflict, InvalidInput
from tests.serving.models import cancer, classifier


def register(yard: Yard, name: str, count: int) -> None:
    for _ in range(count):
        yard.models.register(classifier(), name=name, input_example=cancer()[0].head())


def test_a_version_retires_only_once_nothing_serves_or_names_it(yard: Yard, unique: str) -> None:
    register(yard, unique, 2)
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    yard.models.set_alias(unique, "champion", 1)
    with pytest.raises(Conflict, match=f"still deployed on endpoint\\(s\\) {unique}"):
        yard.models.retire(f"{unique}/1")
    yard.endpoints.update(unique, routes=[f"{unique}/2=100"])
    with pytest.raises(Conflict, match="named by alias\\(es\\) champion"):
        yard.models.retire(f"{unique}/1")
    yard.models.delete_alias(unique, "champion")
    retired = yard.models.retire(f"{unique}/1", comment="replaced by 2")
    assert retired.stage.value == "retired"
    history = yard.models.stage_history(f"{unique}/1")
    assert (history[-1]["to"], history[-1]["comment"]) == ("retired", "replaced by 2")

    with pytest.raises(Conflict, match="is retired: its stage never changes"):
        yard.models.transition(f"{unique}/1", "candidate")
    with pytest.raises(Conflict, match="is retired: no alias may point at it"):
        yard.models.set_alias(unique, "champion", 1)
    with pytest.raises(Conflict, match="is retired and cannot receive traffic"):
        yard.endpoints.update(unique, routes=[f"{unique}/1=50", f"{unique}/2=50"])
    with pytest.raises(Conflict, match="already retired"):
        yard.models.retire(f"{unique}/1")
    with pytest.raises(Conflict, match="retire model .* with `modelyard models retire"):
        yard.models.transition(f"{unique}/2", "retired")
    with pytest.raises(InvalidInput, match="name one version to retire"):
        yard.models.retire(unique)
    assert yard.models.load(f"{unique}/1").predict(cancer()[0].head(2)) is not None  # kept


def test_retiring_a_model_is_all_or_nothing_and_stops_new_versions(yard: Yard, unique: str) -> None:
    register(yard, unique, 3)
    yard.endpoints.create(unique, routes=[f"{unique}/3=100"])
    with pytest.raises(Conflict, match=f"{unique}/3 is still deployed"):
        yard.models.retire_model(unique)
    assert {v.stage.value for v in yard.models.versions(unique)} == {"candidate"}  # none moved

    other = f"{unique}-b"
    register(yard, other, 2)
    retired = yard.models.retire_model(other, comment="product closed")
    assert [v.stage.value for v in retired] == ["retired", "retired"]
    with pytest.raises(Conflict, match=f"model '{other}' is retired and takes no new versions"):
        register(yard, other, 1)
