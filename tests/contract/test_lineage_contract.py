"""Lineage in one call, embedded and remote: datasets -> runs -> versions -> endpoints."""

from __future__ import annotations

import pytest

from modelyard.client.yard import Yard
from modelyard.errors import InvalidInput, NotFound
from modelyard.governance.lineage import LineageGraph
from tests.serving.models import cancer, classifier


def keys(nodes: list) -> set[str]:  # type: ignore[type-arg]
    return {n.ref for n in nodes}


def test_lineage_walks_both_ways(yard: Yard, unique: str) -> None:
    features, target = cancer()
    train = features.iloc[:400].assign(target=target.iloc[:400])
    with yard.start_run(unique) as run:
        used = run.log_dataset(train, name=f"{unique}-train", role="training")
        version = run.log_model(classifier(), name=unique, input_example=features.head())
    other = yard.models.register(classifier(0.1), name=unique, input_example=features.head())
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    yard.endpoints.update(unique, routes=[f"{unique}/2=100"])

    up = yard.lineage(f"version:{version.ref}")
    assert up.root == f"version:{version.ref}"
    assert keys(up.upstream()) == {f"run:{run.id}", f"dataset:{used.id}"}
    assert keys(up.downstream()) == {f"endpoint:{unique}"}
    served = next(e for e in up.edges if e.target == f"endpoint:{unique}")
    assert served.relation == "served"  # an earlier revision routed to it, the current does not

    down = yard.lineage(f"dataset:{unique}-train")
    assert f"version:{version.ref}" in keys(down.downstream("version"))
    assert f"version:{other.ref}" not in keys(down.downstream())  # trained on nothing logged
    assert keys(down.downstream("endpoint")) == {f"endpoint:{unique}"}

    endpoint = yard.lineage(f"endpoint:{unique}")
    assert keys(endpoint.upstream("version")) == {f"version:{version.ref}", f"version:{other.ref}"}
    relations = {e.source: e.relation for e in endpoint.edges if e.target == endpoint.root}
    assert relations == {f"version:{version.ref}": "served", f"version:{other.ref}": "serves"}
    assert keys(endpoint.upstream("dataset")) == {f"dataset:{used.id}"}

    from_run = yard.lineage(f"run:{run.id}")
    assert keys(from_run.upstream()) == {f"dataset:{used.id}"}
    assert f"version:{version.ref}" in keys(from_run.downstream())


@pytest.mark.parametrize(
    ("node", "error", "message"),
    [
        ("nothing", InvalidInput, "expected KIND:KEY"),
        ("table:x", InvalidInput, "expected KIND:KEY"),
        ("run:" + "0" * 32, NotFound, "does not exist"),
        ("version:nomodel/1", NotFound, "has no version 1"),
        ("dataset:no-such-data", NotFound, "does not exist"),
        ("endpoint:nowhere", NotFound, "does not exist"),
        ("prediction:nowhere", InvalidInput, "prediction:<endpoint>/<prediction id>"),
    ],
)
def test_lineage_of_a_bad_node_names_the_problem(
    yard: Yard, node: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        yard.lineage(node)


def test_sensitivity_classes_propagate_to_versions_and_endpoints(yard: Yard, unique: str) -> None:
    features, target = cancer()
    with yard.start_run(unique) as run:
        run.log_dataset(features.assign(target=target), name=f"{unique}-pii", role="training")
        run.log_dataset(features.head(50), name=f"{unique}-ref", role="test")
        version = run.log_model(classifier(), name=unique, input_example=features.head())
    clean = yard.models.register(classifier(0.1), name=unique, input_example=features.head())
    yard.endpoints.create(unique, routes=[f"{unique}/1=90", f"{unique}/2=10"])
    assert yard.datasets.classes(f"{unique}-pii") == []
    assert yard.datasets.classify(f"{unique}-pii", ["pii", "confidential", "pii"]) == [
        "confidential",
        "pii",
    ]
    yard.datasets.classify(f"{unique}-ref", ["internal"])

    def classes(graph: LineageGraph, ref: str) -> list[str]:
        return list(next(n for n in graph.nodes if n.ref == ref).attributes["sensitivity"])

    graph = yard.lineage(f"endpoint:{unique}")
    assert classes(graph, f"version:{version.ref}") == ["confidential", "internal", "pii"]
    assert classes(graph, f"version:{clean.ref}") == []
    assert classes(graph, f"endpoint:{unique}") == ["confidential", "internal", "pii"]
    yard.datasets.classify(f"{unique}-pii", [])  # cleared
    graph = yard.lineage(f"version:{version.ref}")
    assert classes(graph, f"version:{version.ref}") == ["internal"]
    with pytest.raises(InvalidInput, match="invalid sensitivity class 'PII!'"):
        yard.datasets.classify(f"{unique}-ref", ["PII!"])
    with pytest.raises(NotFound, match="dataset 'no-such-data' does not exist"):
        yard.datasets.classify("no-such-data", ["pii"])
    assert yard.datasets.classes(f"{unique}-ref") == ["internal"]
    found = [v.ref for v in yard.models.versions(unique, sensitivity="internal")]
    assert found == [version.ref]
    assert yard.models.versions(unique, sensitivity="pii") == []  # cleared above
    with pytest.raises(InvalidInput, match="invalid sensitivity class"):
        yard.models.versions(unique, sensitivity="Not A Class")
