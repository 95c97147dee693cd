"""Schemathesis against the live ``/openapi.json`` of ``modelyard serve``: every operation
(probes, listings, plain JSON predict and explain, the Open Inference Protocol V2), with
an endpoint key, a bounded number of generated requests each. No answer may be a server
error, an undocumented status or content type, or a body that breaks its documented schema.

The endpoint splits a classifier with a canary of a second version and shadows a third,
so the versioned V2 paths have versions to name. The document is generic (one process
serves many endpoints, each with its own columns, and names none of them to a caller
without a key), so most generated bodies would name no column of the endpoint and stop
at a 400 or 422. To reach the model as well, the fuzzer reads a copy of the live
document whose request bodies are narrowed to this endpoint's columns (and carry an
example of each); the answers are checked against the document's response schemas as
served, unchanged.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.domain.endpoints import TargetRequest
from modelyard.domain.identity import Permission
from modelyard.serving.app import ROUTES
from tests.conftest import prepare_store
from tests.integration.fuzzing import fuzz
from tests.serving.models import cancer, classifier
from tests.serving.process import ServeProcess
from tests.serving.test_serve import Stack, routes

pytest.importorskip("schemathesis")

EXAMPLES = 10


@dataclass
class Served:
    serve: ServeProcess
    endpoint_key: str  # predicts on the endpoint, nothing else
    user_key: str  # a contributor's: also reads the listings and metrics


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serving-fuzz") / "home"
    prepare_store(home)
    stack = Stack(home)
    features, target = cancer()
    for strength in (1.0, 0.01, 0.001):  # each with its training data, to explain against
        with stack.yard.start_run("fuzz") as run:
            run.log_dataset(features.assign(target=target), name="cancer", role="training")
            run.log_model(classifier(strength), name="cancer", input_example=features.head())
    stack.services.endpoints.create(
        "fuzzed",
        routes=routes("cancer/1=90", "cancer/2=10"),
        shadows=[TargetRequest.parse("cancer/3", shadow=True)],
    )
    identity = stack.services.identity
    identity.create_user("caller", "contributor")
    endpoint_key = identity.create_key("caller", endpoint="fuzzed")[1]
    user_key = identity.create_key("caller")[1]
    stack.serve = ServeProcess(home).start()
    try:
        _explain_once(stack.serve, endpoint_key, list(features.columns))
        yield Served(stack.serve, endpoint_key, user_key)
    finally:
        stack.serve.stop()
        stack.services.close()


def _explain_once(serve: ServeProcess, key: str, columns: list[str]) -> None:
    """The first explanation imports shap: done here, not inside a fuzzed request."""
    answer = httpx.post(
        f"{serve.url}/endpoints/fuzzed/explain",
        json={"records": [dict.fromkeys(columns, 1.5)]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text


def _narrowed(document: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """``document`` with its request bodies narrowed to rows of ``columns`` (floats)."""
    narrowed = copy.deepcopy(document)
    schemas = narrowed["components"]["schemas"]
    number: dict[str, Any] = {"type": "number"}
    record = {"type": "object", "required": columns, "properties": dict.fromkeys(columns, number)}
    rows = {"type": "array", "minItems": 1, "maxItems": 3, "items": record}
    one_each = {"type": "array", "minItems": 1, "maxItems": 1, "items": number}
    by_column = {
        "type": "object",
        "required": columns,
        "properties": dict.fromkeys(columns, one_each),
    }
    example = {"records": [dict.fromkeys(columns, 1.5)]}
    for name in ("PredictRequest", "ExplainRequest"):
        schemas[name]["properties"].update(records=rows, columns=by_column)
        schemas[name]["example"] = example
    schemas["ExplainRequest"]["properties"]["version"] = {"enum": [1, 2, 3, "cancer/2"]}
    matrix = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"enum": ["FP64", "FP32", "INT64", "UINT8"]},
            "shape": {"const": [1, len(columns)]},
            "data": {**one_each, "minItems": len(columns), "maxItems": len(columns)},
        },
    }
    infer = schemas["InferRequest"]
    infer["properties"]["inputs"] = {"type": "array", "minItems": 1, "maxItems": 1, "items": matrix}
    output = infer["properties"]["outputs"]["items"]["properties"]
    output["name"] = {"enum": ["predict", "predict_proba"]}
    output["parameters"] = {
        "type": "object",
        "properties": {"binary_data": {"type": "boolean"}},
        "additionalProperties": False,
    }
    infer["example"] = {
        "inputs": [
            {
                "name": "rows",
                "datatype": "FP64",
                "shape": [1, len(columns)],
                "data": [1.5] * len(columns),
            }
        ]
    }
    return narrowed


def _fuzz(location: Path, url: str, key: str, *selection: str) -> int:
    """Run schemathesis over the operations of ``location`` (or a ``selection``): how many
    it tested; asserts it found nothing."""
    config = location.with_name("schemathesis.toml")
    config.write_text('[parameters]\nname = "fuzzed"\nversion = "2"\n')
    options = ("--url", url, "--request-timeout", "60", *selection)
    tested, selected, _ = fuzz(config, str(location), key, EXAMPLES, *options, timeout=300)
    assert tested == selected
    return tested


@pytest.mark.slow
def test_every_serving_operation_answers_as_documented(served: Served, tmp_path: Path) -> None:
    document = httpx.get(f"{served.serve.url}/openapi.json", timeout=30).json()
    location = tmp_path / "openapi.json"
    location.write_text(json.dumps(_narrowed(document, list(cancer()[0].columns))))
    assert _fuzz(location, served.serve.url, served.endpoint_key) == len(ROUTES)
    # what an endpoint key may not call, again with a key that may
    reads = [r.path for r in ROUTES if r.permission is Permission.READ]
    pattern = f"^({'|'.join(map(re.escape, reads))})$"
    tested = _fuzz(location, served.serve.url, served.user_key, "--include-path-regex", pattern)
    assert tested == len(reads)
    # and the generated rows reached the model, by every route the endpoint has
    metrics = httpx.get(
        f"{served.serve.url}/metrics",
        headers={"Authorization": f"Bearer {served.user_key}"},
        timeout=30,
    ).text
    answered = {
        version: float(count)
        for version, count in re.findall(
            r'modelyard_predictions_requests_total\{[^}]*version="([^"]+)"[^}]*\} (\S+)', metrics
        )
    }
    assert {"cancer/1", "cancer/2"} <= set(answered), metrics
