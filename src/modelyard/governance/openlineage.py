"""A lineage graph as OpenLineage run events (JSON), for catalogs that speak it.

Each run in the graph becomes a START event of job ``<run name>`` at its start,
then one with its recorded state (COMPLETE, FAIL, ABORT at its end, or RUNNING),
whose inputs are the datasets it read (with their content fingerprint as the
dataset version) and whose outputs are the model versions it produced; a batch
job likewise. Each endpoint becomes a RUNNING event of job ``endpoint/<name>``
at its last change, whose inputs are the versions it serves or served and those
that answered its predictions. Model versions carry a custom ``modelyard_model``
facet (model, version, stage, package digest).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from modelyard import __version__
from modelyard.governance.lineage import LineageGraph, Node

NAMESPACE = "modelyard"
PRODUCER = f"urn:modelyard:{__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMA = "urn:modelyard:facets:model:1"


def _time(ms: Any) -> str:
    moment = datetime.fromtimestamp((ms or 0) / 1000, tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _dataset(node: Node) -> dict[str, Any]:
    if node.kind == "version":
        return {
            "namespace": NAMESPACE,
            "name": f"models/{node.key}",
            "facets": {
                "modelyard_model": {
                    "_producer": PRODUCER,
                    "_schemaURL": FACET_SCHEMA,
                    "model": node.key.rsplit("/", 1)[0],
                    "version": int(node.key.rsplit("/", 1)[1]),
                    "stage": node.attributes.get("stage"),
                    "packageDigest": node.attributes.get("digest"),
                }
            },
        }
    return {
        "namespace": NAMESPACE,
        "name": f"datasets/{node.label}",
        "facets": {
            "version": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
                "datasetVersion": node.attributes.get("fingerprint") or node.key,
            }
        },
    }


# a run's or batch job's recorded status, as the state its last event reports
TERMINAL = {
    "FINISHED": "COMPLETE",
    "FAILED": "FAIL",
    "KILLED": "ABORT",
    "succeeded": "COMPLETE",
    "failed": "FAIL",
}


def _event(
    state: str, job: str, run_id: str, at: Any, inputs: list[Node], outputs: list[Node]
) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": _time(at),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": job},
        "inputs": [_dataset(n) for n in inputs],
        "outputs": [_dataset(n) for n in outputs],
    }


def _lifecycle(
    node: Node, job: str, run_id: str, inputs: list[Node], outputs: list[Node]
) -> list[dict[str, Any]]:
    """START when it began, then the state it is recorded in: COMPLETE, FAIL or ABORT when
    it ended (at its end), RUNNING while it runs. Times are the recorded ones, so the same
    graph exports the same events whenever it is asked."""
    started = node.attributes.get("started")
    ended = node.attributes.get("ended") or node.attributes.get("finished")
    state = TERMINAL.get(str(node.attributes.get("status")), "RUNNING")
    last = _event(state, job, run_id, ended if state != "RUNNING" else started, inputs, outputs)
    return [_event("START", job, run_id, started, inputs, []), last]


def _run_id(key: str) -> str:
    """A run's or job's own id as a UUID; any other key as a stable UUID derived from it."""
    if len(key) == 32:
        try:
            return str(uuid.UUID(key))
        except ValueError:
            pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelyard:{key}"))


def to_openlineage(graph: LineageGraph) -> list[dict[str, Any]]:
    """The events of every run, batch job and endpoint in ``graph``: a run and a batch job
    each START, then report their recorded state; an endpoint is a RUNNING service whose
    inputs are the versions it serves, served, or that answered its predictions."""
    nodes = {n.ref: n for n in graph.nodes}

    def sources(target: str, kind: str) -> list[Node]:
        return [
            nodes[e.source]
            for e in graph.edges
            if e.target == target and e.source in nodes and nodes[e.source].kind == kind
        ]

    def targets(source: str, kind: str) -> list[Node]:
        return [
            nodes[e.target]
            for e in graph.edges
            if e.source == source and e.target in nodes and nodes[e.target].kind == kind
        ]

    def answering(endpoint: Node) -> list[Node]:
        """The versions that answered (or shadowed) this endpoint's predictions."""
        found = []
        for prediction in graph.nodes:
            if prediction.kind == "prediction" and prediction.attributes.get("endpoint") == (
                endpoint.key
            ):
                found += sources(prediction.ref, "version")
        return found

    events: list[dict[str, Any]] = []
    for node in graph.nodes:
        if node.kind == "run":
            inputs, outputs = sources(node.ref, "dataset"), targets(node.ref, "version")
            events += _lifecycle(node, node.label, _run_id(node.key), inputs, outputs)
        elif node.kind == "job":  # a batch job reads its input and a version, writes its output
            scored = sources(node.ref, "version")
            name = f"batch/{scored[0].key}" if scored else f"batch/{node.key}"
            inputs = [*sources(node.ref, "dataset"), *scored]
            events += _lifecycle(
                node, name, _run_id(node.key), inputs, targets(node.ref, "dataset")
            )
        elif node.kind == "endpoint":
            served = _unique([*sources(node.ref, "version"), *answering(node)])
            at = node.attributes.get("updated") or node.attributes.get("created")
            run_id = _run_id(f"endpoint:{node.key}")
            events.append(_event("RUNNING", f"endpoint/{node.key}", run_id, at, served, []))
    return events


def _unique(found: list[Node]) -> list[Node]:
    return list({node.ref: node for node in found}.values())
