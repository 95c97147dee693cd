"""A lineage graph as OpenLineage run events (JSON), for catalogs that speak it.

Each run in the graph becomes a COMPLETE event of job ``<run name>`` whose inputs
are the datasets it read (with their content fingerprint as the dataset version)
and whose outputs are the model versions it produced. Each endpoint becomes an
event of job ``endpoint/<name>`` whose inputs are the versions it serves or
served. Model versions carry a custom ``modelyard_model`` facet (model, version,
stage, package digest).
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
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else datetime.now(tz=UTC)
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


def _event(
    job: str, run_id: str, at: Any, inputs: list[Node], outputs: list[Node]
) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": _time(at),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": job},
        "inputs": [_dataset(n) for n in inputs],
        "outputs": [_dataset(n) for n in outputs],
    }


def to_openlineage(graph: LineageGraph) -> list[dict[str, Any]]:
    """One event per run, batch job and endpoint in ``graph``."""
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

    events = []
    for node in graph.nodes:
        if node.kind == "run":
            run_id = str(uuid.UUID(node.key)) if len(node.key) == 32 else str(uuid.uuid4())
            events.append(
                _event(
                    node.label,
                    run_id,
                    node.attributes.get("started"),
                    sources(node.ref, "dataset"),
                    targets(node.ref, "version"),
                )
            )
        elif node.kind == "job":  # a batch job reads its input and a version, writes its output
            scored = sources(node.ref, "version")
            name = f"batch/{scored[0].key}" if scored else f"batch/{node.key}"
            run_id = str(uuid.UUID(node.key)) if len(node.key) == 32 else str(uuid.uuid4())
            events.append(
                _event(
                    name,
                    run_id,
                    node.attributes.get("finished") or node.attributes.get("started"),
                    [*sources(node.ref, "dataset"), *scored],
                    targets(node.ref, "dataset"),
                )
            )
        elif node.kind == "endpoint":
            run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelyard:endpoint:{node.key}"))
            events.append(
                _event(f"endpoint/{node.key}", run_id, None, sources(node.ref, "version"), [])
            )
    return events
