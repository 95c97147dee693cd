"""OpenLineage events as OpenLineage's own client models judge them: a run STARTs, then
reports the state it is recorded in, at recorded times; an endpoint's event names the
versions that answered it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyard.governance.openlineage import to_openlineage
from tests.conftest import embedded_yard
from tests.serving.models import cancer, classifier

event_v2 = pytest.importorskip("openlineage.client.event_v2")
serde = pytest.importorskip("openlineage.client.serde")


def judged(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` rebuilt with OpenLineage's models (their validators check the time, the
    producer URI, the schema URL and the run id), then serialised by their Serde."""
    built = event_v2.RunEvent(
        eventType=event_v2.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=event_v2.Run(runId=event["run"]["runId"]),
        job=event_v2.Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        inputs=[event_v2.InputDataset(d["namespace"], d["name"]) for d in event["inputs"]],
        outputs=[event_v2.OutputDataset(d["namespace"], d["name"]) for d in event["outputs"]],
    )
    plain: dict[str, Any] = serde.Serde.to_dict(built)
    return plain


def without_empty_facets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not (k == "facets" and not v)}
    return value


def test_runs_start_then_report_their_recorded_state(home: Path) -> None:
    yard = embedded_yard(home)
    features, target = cancer()
    with yard.start_run("ol-states", name="trained") as done:
        done.log_dataset(features.assign(target=target), name="ol-data", role="training")
        done.log_model(classifier(), name="ol-states", input_example=features.head())
    with pytest.raises(RuntimeError), yard.start_run("ol-states", name="broken") as broken:
        broken.log_dataset(features, name="ol-data", role="training")
        raise RuntimeError("diverged")
    running = yard.start_run("ol-states", name="ongoing")
    running.log_dataset(features, name="ol-data", role="training")
    first = to_openlineage(yard.lineage("dataset:ol-data"))
    again = to_openlineage(yard.lineage("dataset:ol-data"))
    running.end()
    yard.close()

    assert first == again  # recorded times only: the same graph, the same events
    by_job: dict[str, list[dict[str, Any]]] = {}
    for event in first:
        by_job.setdefault(event["job"]["name"], []).append(event)
        rebuilt = judged(event)
        for key in ("eventType", "eventTime", "run", "job", "producer"):
            assert without_empty_facets(rebuilt[key]) == event[key], key
    states = {job: [e["eventType"] for e in events] for job, events in by_job.items()}
    assert states["trained"] == ["START", "COMPLETE"]
    assert states["broken"] == ["START", "FAIL"]
    assert states["ongoing"] == ["START", "RUNNING"]
    start, end = by_job["trained"]
    assert start["eventTime"] <= end["eventTime"]
    assert start["run"]["runId"] == end["run"]["runId"]
    assert start["outputs"] == [] and end["outputs"][0]["name"] == "models/ol-states/1"


def test_an_endpoint_event_names_the_version_that_answered(home: Path) -> None:
    yard = embedded_yard(home)
    features, _ = cancer()
    yard.models.register(classifier(), name="ol-served", input_example=features.head())
    yard.endpoints.create("ol-served", routes=["ol-served/1=100"])
    graph = yard.lineage("endpoint:ol-served")
    events = to_openlineage(graph)
    yard.close()
    [endpoint] = [e for e in events if e["job"]["name"] == "endpoint/ol-served"]
    assert endpoint["eventType"] == "RUNNING"
    assert [d["name"] for d in endpoint["inputs"]] == ["models/ol-served/1"]
    assert not endpoint["eventTime"].startswith("1970")  # the endpoint's own time, stable
    assert judged(endpoint)["eventTime"] == endpoint["eventTime"]
