"""The Open Inference Protocol (V2): server and model metadata, readiness, inference.

An endpoint is a V2 model named like the endpoint. Its inputs are the first
route's signature, one tensor per column; a request may instead send one
``[N, F]`` tensor whose columns follow the signature's order. The answer's
``predict`` output holds the predictions, ``predict_proba`` the class scores of a
classifier, and ``parameters.prediction_ids`` one id per row. A sticky key goes
in the ``X-Sticky-Key`` header or ``parameters.sticky_key``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard import __version__
from modelyard.errors import InvalidInput
from modelyard.serving.predict import sticky_key
from modelyard.serving.runtime import EndpointState
from modelyard.serving.wire import json_body, respond, runtime_of

V2_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}


async def server_metadata(request: Request) -> Response:
    return respond({"name": "modelyard", "version": __version__, "extensions": []})


async def server_ready(request: Request) -> Response:
    ready = runtime_of(request).ready
    return respond({"ready": ready}, 200 if ready else 503)


async def model_metadata(request: Request) -> Response:
    state = runtime_of(request).endpoint(request.path_params["name"])
    return respond(
        {
            "name": state.name,
            "versions": [lane.model.ref for lane in state.routes],
            "platform": "modelyard",
            "inputs": [
                {"name": c.name, "datatype": V2_TYPES[c.type], "shape": [-1]}
                for c in state.contract.signature.inputs
            ],
            "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
            "parameters": {"revision": state.revision},
        }
    )


async def model_ready(request: Request) -> Response:
    state = runtime_of(request).endpoint(request.path_params["name"])
    return respond({"name": state.name, "ready": True})


async def infer(request: Request) -> Response:
    runtime = runtime_of(request)
    state = runtime.endpoint(request.path_params["name"])
    body = await json_body(request)
    rows = v2_rows(body, state)
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    lane, ids, outputs, scores = await runtime.predict(state, rows, sticky_key(request, parameters))
    result: dict[str, Any] = {
        "model_name": state.name,
        "model_version": str(lane.model.version),
        "outputs": [_tensor("predict", outputs)],
        "parameters": {
            "prediction_ids": ids,
            "model": lane.model.model,
            "revision": state.revision,
        },
    }
    if "id" in body:
        result["id"] = body["id"]
    if scores is not None:
        result["outputs"].append(_scores_tensor(scores))
    return respond(result, headers={"x-modelyard-version": lane.model.ref})


def _tensor(name: str, outputs: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": _v2_type(outputs), "shape": [len(outputs)], "data": outputs}


def _scores_tensor(scores: list[list[float]]) -> dict[str, Any]:
    return {
        "name": "predict_proba",
        "datatype": "FP64",
        "shape": [len(scores), len(scores[0]) if scores else 0],
        "data": [value for row in scores for value in row],
    }


def v2_rows(body: Any, state: EndpointState) -> list[dict[str, Any]]:
    """Rows from a V2 inference request: one tensor per column, or one [N, F] tensor."""
    inputs = _inputs(body)
    names = state.contract.names
    if len(inputs) == 1 and inputs[0]["name"] not in names:
        return _matrix_rows(inputs[0], names)
    columns = {str(t["name"]): _flat(t["data"]) for t in inputs}
    if len({len(v) for v in columns.values()}) != 1:
        raise InvalidInput("V2 input tensors differ in length")
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    if not rows:
        raise InvalidInput("the request has no rows")
    return rows


def _inputs(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("expected a V2 inference request with a non-empty 'inputs' list")
    inputs: list[dict[str, Any]] = body["inputs"]
    for tensor in inputs:
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise InvalidInput("every input needs 'name', 'shape', 'datatype' and 'data'")
        if not isinstance(tensor["data"], list):
            raise InvalidInput(f"input '{tensor['name']}': 'data' must be a list")
    return inputs


def _matrix_rows(tensor: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    shape = tensor.get("shape") or []
    data = _flat(tensor["data"])
    width = len(names)
    if len(shape) != 2 or shape[1] != width or shape[0] * shape[1] != len(data):
        raise InvalidInput(
            f"input '{tensor['name']}': expected one tensor per column ({', '.join(names)}) "
            f"or one tensor of shape [N, {width}]"
        )
    return [dict(zip(names, data[i : i + width], strict=True)) for i in range(0, len(data), width)]


def _flat(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        return [value for row in data for value in (row if isinstance(row, list) else [row])]
    return data


def _v2_type(outputs: list[Any]) -> str:
    first = outputs[0] if outputs else None
    if isinstance(first, bool):
        return "BOOL"
    if isinstance(first, int):
        return "INT64"
    if isinstance(first, float):
        return "FP64"
    return "BYTES"
