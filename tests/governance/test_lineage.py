"""Lineage over a real store: the same node carries the same attributes from any root."""

from __future__ import annotations

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.governance.lineage import LineageGraph
from modelyard.serving.journal import record_line
from tests.serving.models import cancer, classifier


def classes(graph: LineageGraph, ref: str) -> list[str]:
    return list(next(n for n in graph.nodes if n.ref == ref).attributes["sensitivity"])


def test_an_endpoint_has_the_same_sensitivity_from_a_prediction_as_on_its_own(
    services: Services,
) -> None:
    yard = Yard(LocalBackend(services))
    features, target = cancer()
    with yard.start_run("lineage") as run:
        run.log_dataset(features.assign(target=target), name="patients", role="training")
        version = run.log_model(classifier(), name="cancer", input_example=features.head())
    clean = yard.models.register(classifier(0.1), name="cancer", input_example=features.head())
    yard.datasets.classify("patients", ["pii"])
    yard.endpoints.create("triage", routes=[f"{clean.ref}=50", f"{version.ref}=50"])
    journal = services.predictions.journal("triage")
    journal.append(
        record_line(
            id="p-1",
            endpoint="triage",
            revision=1,
            model="cancer",
            version=clean.version,  # answered by the version trained on no classified data
            role="primary",
            ts=1_790_000_000_000,
            latency_ms=1.0,
            input=b"{}",
            output=b"0",
            scores=None,
        )
    )
    journal.close()

    on_its_own = services.lineage.of("endpoint:triage")
    from_prediction = services.lineage.of("prediction:triage/p-1")

    assert classes(on_its_own, "endpoint:triage") == ["pii"]
    assert classes(from_prediction, "endpoint:triage") == ["pii"]
    assert classes(from_prediction, "prediction:triage/p-1") == []  # its version's data
    assert classes(from_prediction, f"version:{clean.ref}") == []
