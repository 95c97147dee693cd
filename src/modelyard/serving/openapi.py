"""``/openapi.json`` of the serving process, built from its route table.

Every operation carries the permission it needs (``x-permission``, as the API
server's do) and the bearer-key security requirement unless it answers without
a key; the prediction routes document the sticky key, as the ``X-Sticky-Key``
header and as a body field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelyard import __version__
from modelyard.serving.predict import STICKY_FIELD, STICKY_HEADER, STICKY_HELP

if TYPE_CHECKING:
    from modelyard.serving.app import ServedRoute

_ERRORS = {
    "400": "The body is not JSON",
    "401": "No valid API key",
    "403": "The key may not call this route",
    "404": "No such endpoint",
    "413": "The body is over the process's limit",
    "422": "The rows break the endpoint's signature; the message names the column",
    "503": "The endpoint is still loading, or its answer could not be logged",
}
_READINESS = ("/readyz", "/v2/health/ready")
_STICKY_FIELD_HELP = f"The sticky key, if no {STICKY_HEADER} header is sent. {STICKY_HELP}"


def document(routes: Iterable[ServedRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelyard serving",
            "version": __version__,
            "description": "The data plane: predictions, the Open Inference Protocol (V2), "
            "probes and metrics. Send 'Authorization: Bearer <key>'.",
        },
        "paths": paths,
        "components": {"securitySchemes": _SECURITY, "schemas": _SCHEMAS},
    }


def _operation(route: ServedRoute) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary, "operationId": _operation_id(route)}
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema:
        operation["requestBody"] = {"required": True, "content": _json(route.request_schema)}
    operation["responses"] = _responses(route)
    if route.permission is not None:
        operation["security"] = [{"apiKey": []}]
        operation["x-permission"] = route.permission.value
    return operation


def _operation_id(route: ServedRoute) -> str:
    path = route.path.replace("{name}", "name").replace("{version}", "version")
    words = path.replace(".", "_").strip("/").split("/")
    return "_".join([route.method.lower(), *words])


def _parameters(route: ServedRoute) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    if "{name}" in route.path:
        parameters.append(
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "The endpoint",
                "schema": {"type": "string"},
            }
        )
    if "{version}" in route.path:
        parameters.append(
            {
                "name": "version",
                "in": "path",
                "required": True,
                "description": "A version the endpoint routes to or shadows: its number, "
                "or model:number when two of its targets share a number",
                "schema": {"type": "string"},
            }
        )
    if route.sticky:
        parameters.append(
            {
                "name": STICKY_HEADER,
                "in": "header",
                "required": False,
                "description": STICKY_HELP,
                "schema": {"type": "string"},
            }
        )
    return parameters


def _responses(route: ServedRoute) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if route.response_schema:
        answer["content"] = _json(route.response_schema)
    responses: dict[str, Any] = {"200": answer}
    v2 = route.path.startswith("/v2")
    for status, description in _ERRORS.items():
        if v2 and status == "422":
            continue  # the protocol answers 400 for input the model cannot take
        if v2 and status == "400":
            description = "Bad JSON, datatype, shape or binary data, or rows the model cannot take"
        if _may_answer(route, status):
            schema = "V2Error" if v2 else "Error"
            responses[status] = {"description": description, "content": _json(schema)}
    if route.path in _READINESS:
        responses["503"] = {
            "description": "Some endpoint is still loading, or its prediction log cannot be "
            "written (same body; the endpoint's log_error says why)"
        }
    return responses


def _may_answer(route: ServedRoute, status: str) -> bool:
    if status in ("401", "403"):
        return route.permission is not None
    if status in ("400", "413", "422"):
        return route.request_schema is not None
    return "{name}" in route.path  # 404 and 503


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


_SECURITY = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A modelyard API key: a user's key, or an endpoint key for one endpoint",
    }
}
_ANY_ARRAY: dict[str, Any] = {"type": "array", "items": {}}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["kind", "message"],
                "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "PredictRequest": {
        "type": "object",
        "description": "Rows as 'records' (one object per row) or 'columns' (one list each)",
        "properties": {
            "records": {"type": "array", "items": {"type": "object"}},
            "columns": {"type": "object", "additionalProperties": _ANY_ARRAY},
            "scores": {"type": "boolean", "description": "Add a classifier's class scores"},
            STICKY_FIELD: {"type": "string", "description": _STICKY_FIELD_HELP},
        },
    },
    "PredictResponse": {
        "type": "object",
        "properties": {
            "endpoint": {"type": "string"},
            "revision": {"type": "integer"},
            "model": {"type": "string"},
            "version": {"type": "integer", "description": "The version that answered"},
            "ids": {"type": "array", "items": {"type": "string"}, "description": "One per row"},
            "predictions": _ANY_ARRAY,
            "scores": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        },
    },
    "ExplainRequest": {
        "type": "object",
        "description": "Rows as for predict; 'version' names a route or shadow (N or MODEL/N)",
        "properties": {
            "records": {"type": "array", "items": {"type": "object"}},
            "columns": {"type": "object", "additionalProperties": _ANY_ARRAY},
            "version": {"type": ["integer", "string"], "description": "Explain with this one"},
            "top": {"type": "integer", "description": "Contributions listed per row (5)"},
            STICKY_FIELD: {"type": "string", "description": _STICKY_FIELD_HELP},
        },
    },
    "ExplainResponse": {
        "type": "object",
        "properties": {
            "endpoint": {"type": "string"},
            "revision": {"type": "integer"},
            "model": {"type": "string"},
            "version": {"type": "integer", "description": "The version that explained"},
            "method": {"type": "string", "description": "tree, linear or model-agnostic"},
            "features": {"type": "array", "items": {"type": "string"}},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "values": {
                            "type": "object",
                            "additionalProperties": {"type": "number"},
                            "description": "SHAP value per feature",
                        },
                        "base_value": {"type": "number"},
                        "output": {"type": "number", "description": "base_value + sum(values)"},
                        "explained": {"type": "string", "description": "What output is"},
                        "top": {"type": "array", "items": {"type": "object"}},
                        "text": {"type": "string", "description": "The row in plain words"},
                    },
                },
            },
        },
    },
    "V2Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "description": "'data', or parameters.binary_data_size bytes of the binary data "
        "after the JSON header (Inference-Header-Content-Length)",
        "properties": {
            "name": {"type": "string"},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "FP16",
                    "FP32",
                    "FP64",
                    "BYTES",
                ],
            },
            "shape": {"type": "array", "items": {"type": "integer"}},
            "parameters": {"type": "object"},
            "data": _ANY_ARRAY,
        },
    },
    "InferParameters": {
        "type": "object",
        "properties": {
            STICKY_FIELD: {"type": "string", "description": _STICKY_FIELD_HELP},
            "binary_data_output": {
                "type": "boolean",
                "description": "Send every output as binary data (unless it says otherwise)",
            },
        },
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "description": "One tensor per column, or one [N, F] tensor in the signature's order",
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "parameters": {"$ref": "#/components/schemas/InferParameters"},
            "outputs": {
                "type": "array",
                "description": "The outputs to answer (predict, predict_proba), in this order; "
                "parameters.binary_data sends one as binary data",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    },
    "InferResponse": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "model_name": {"type": "string", "description": "The endpoint"},
            "model_version": {"type": "string", "description": "The version that answered"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "parameters": {
                "type": "object",
                "properties": {
                    "prediction_ids": {
                        "type": "string",
                        "description": "One id per row, comma-separated",
                    },
                    "model": {"type": "string"},
                    "revision": {"type": "integer"},
                },
            },
        },
    },
}
