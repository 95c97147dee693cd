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
from modelyard.serving.v2 import DATATYPES, HEADER_LENGTH

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
_V2_BAD_REQUEST = (
    "Bad JSON, datatype, shape or binary data, an infinity, or rows the model cannot take"
)
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
        content = _json(route.request_schema)
        if route.request_schema == "InferRequest":  # inputs sent as binary data
            content["application/octet-stream"] = _BINARY_REQUEST
        operation["requestBody"] = {"required": True, "content": content}
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
    if route.request_schema == "InferRequest":
        parameters.append({"name": HEADER_LENGTH, "in": "header", **_HEADER_LENGTH_HELP})
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
    answer = _answer_of(route)
    responses: dict[str, Any] = {"200": answer}
    v2 = route.path.startswith("/v2")
    for status, description in _ERRORS.items():
        if v2 and status == "422":
            continue  # the protocol answers 400 for input the model cannot take
        if v2 and status == "400":
            description = _V2_BAD_REQUEST
        if _may_answer(route, status):
            error = "V2Error" if v2 else "Error"
            responses[status] = {"description": description, "content": _json(error)}
    if route.path in _READINESS:
        responses["503"] = {
            **answer,
            "description": "Some endpoint is still loading, or its prediction log cannot be "
            "written (same body; the endpoint's log_error says why)",
        }
    return responses


def _answer_of(route: ServedRoute) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if route.response_schema is None:
        return answer
    answer["content"] = {route.media_type: {"schema": _ref(route.response_schema)}}
    if route.response_schema == "InferResponse":  # outputs asked for as binary data
        answer["content"]["application/octet-stream"] = _BINARY_ANSWER
        answer["headers"] = {HEADER_LENGTH: _HEADER_LENGTH_HELP}
    return answer


def _may_answer(route: ServedRoute, status: str) -> bool:
    if status in ("401", "403"):
        return route.permission is not None
    if status in ("400", "413", "422"):
        return route.request_schema is not None
    return "{name}" in route.path  # 404 and 503


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema)}}


_HEADER_LENGTH_HELP: dict[str, Any] = {
    "required": False,
    "description": "With binary tensor data: the length in bytes of the JSON header the "
    "body starts with; the binary data of each tensor follows it, in order",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_BINARY_REQUEST: dict[str, Any] = {
    "schema": {"type": "string", "format": "binary"},
    "description": "An InferRequest as JSON (its first Inference-Header-Content-Length "
    "bytes), then the binary data of the inputs with parameters.binary_data_size",
}
_BINARY_ANSWER: dict[str, Any] = {
    "schema": {"type": "string", "format": "binary"},
    "description": "An InferResponse as JSON (its first Inference-Header-Content-Length "
    "bytes), then the binary data of the outputs asked for as binary data",
}
_SECURITY = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A modelyard API key: a user's key, or an endpoint key for one endpoint",
    }
}
_ANY_ARRAY: dict[str, Any] = {"type": "array", "items": {}}
_TEXT: dict[str, Any] = {"type": "string"}
_TEXTS: dict[str, Any] = {"type": "array", "items": _TEXT}
_INTEGER: dict[str, Any] = {"type": "integer"}
_NUMBER: dict[str, Any] = {"type": "number"}
_FLAG: dict[str, Any] = {"type": "boolean"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(properties: dict[str, Any], *optional: str, **extra: Any) -> dict[str, Any]:
    """An answer's schema: every property is sent unless named ``optional``, and no other."""
    required = [name for name in properties if name not in optional]
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_ROWS = {
    "records": {"type": "array", "items": {"type": "object"}, "description": "One object a row"},
    "columns": {
        "type": "object",
        "additionalProperties": _ANY_ARRAY,
        "description": "One list a column, all as long",
    },
}
_CONTRIBUTION = _answer(
    {
        "feature": _TEXT,
        "value": {"description": "The row's input value"},
        "contribution": _NUMBER,
    }
)
_ROW_EXPLANATION = _answer(
    {
        "values": {
            "type": "object",
            "additionalProperties": _NUMBER,
            "description": "SHAP value per feature",
        },
        "base_value": _NUMBER,
        "output": {**_NUMBER, "description": "base_value + sum(values)"},
        "explained": {**_TEXT, "description": "What output is"},
        "top": {"type": "array", "items": _CONTRIBUTION},
        "text": {**_TEXT, "description": "The row in plain words"},
    }
)
_ENDPOINT_STATUS = _answer(
    {
        "name": _TEXT,
        "revision": _nullable(_INTEGER),
        "status": {**_TEXT, "description": "loading, serving revision N, or why it cannot"},
        "routes": {
            "type": "array",
            "items": _answer({"version": {**_TEXT, "description": "MODEL/N"}, "weight": _INTEGER}),
        },
        "shadows": _TEXTS,
        "log_error": _nullable(
            {**_TEXT, "description": "Why its prediction log cannot be written, if it cannot"}
        ),
    }
)
_METADATA_TENSOR = _answer(
    {
        "name": _TEXT,
        "datatype": {"type": "string", "enum": list(DATATYPES)},
        "shape": {"type": "array", "items": _INTEGER, "description": "-1: any size"},
    }
)
_SCHEMAS: dict[str, Any] = {
    "Error": _answer(
        {"error": _answer({"kind": _TEXT, "message": _TEXT})},
        description="What went wrong: its kind (not_found, signature_error, ...) and a message "
        "naming the thing and the bad value",
    ),
    "Health": _answer({"status": {"const": "ok"}, "version": _TEXT}),
    "Readiness": _answer(
        {"ready": _FLAG, "endpoints": {"type": "array", "items": _ENDPOINT_STATUS}}
    ),
    "Endpoints": _answer({"endpoints": {"type": "array", "items": _ENDPOINT_STATUS}}),
    "Document": {"type": "object", "description": "An OpenAPI 3.1 document"},
    "Metrics": {**_TEXT, "description": "The Prometheus text exposition format"},
    "PredictRequest": {
        "type": "object",
        "description": "Rows as 'records' (one object per row) or 'columns' (one list each)",
        "properties": {
            **_ROWS,
            "scores": {**_FLAG, "description": "Add a classifier's class scores"},
            STICKY_FIELD: {**_TEXT, "description": _STICKY_FIELD_HELP},
        },
    },
    "PredictResponse": _answer(
        {
            "endpoint": _TEXT,
            "revision": _INTEGER,
            "model": _TEXT,
            "version": {**_INTEGER, "description": "The version that answered"},
            "ids": {**_TEXTS, "description": "One per row"},
            "predictions": {**_ANY_ARRAY, "description": "One per row"},
            "scores": {
                "type": "array",
                "items": {"type": "array", "items": _NUMBER},
                "description": "A classifier's class scores, one list per row, when asked",
            },
        },
        "scores",
    ),
    "ExplainRequest": {
        "type": "object",
        "description": "Rows as for predict; 'version' names a route or shadow (N or MODEL/N)",
        "properties": {
            **_ROWS,
            "version": {"type": ["integer", "string"], "description": "Explain with this one"},
            "top": {**_INTEGER, "description": "Contributions listed per row (5)"},
            STICKY_FIELD: {**_TEXT, "description": _STICKY_FIELD_HELP},
        },
    },
    "ExplainResponse": _answer(
        {
            "endpoint": _TEXT,
            "revision": _INTEGER,
            "model": _TEXT,
            "version": {**_INTEGER, "description": "The version that explained"},
            "method": {**_TEXT, "description": "tree, linear or model-agnostic"},
            "features": _TEXTS,
            "rows": {"type": "array", "items": _ROW_EXPLANATION},
            "prediction_id": _nullable(_TEXT),
            "created_by": _nullable(_TEXT),
            "created_at": _nullable(_INTEGER),
        }
    ),
    "V2Error": _answer({"error": _TEXT}),
    "V2ServerMetadata": _answer({"name": _TEXT, "version": _TEXT, "extensions": _TEXTS}),
    "V2Ready": _answer({"ready": _FLAG}),
    "V2ModelMetadata": _answer(
        {
            "name": {**_TEXT, "description": "The endpoint"},
            "versions": {**_TEXTS, "description": "N, or MODEL:N when two share a number"},
            "platform": _TEXT,
            "inputs": {"type": "array", "items": _METADATA_TENSOR},
            "outputs": {
                "type": "array",
                "items": _METADATA_TENSOR,
                "description": "Exactly the outputs infer answers",
            },
        }
    ),
    "V2ModelReady": _answer({"name": _TEXT, "ready": _FLAG, "version": _TEXT}, "version"),
    "Tensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "description": "'data', or parameters.binary_data_size bytes of the binary data "
        "after the JSON header (Inference-Header-Content-Length)",
        "properties": {
            "name": _TEXT,
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
            "data": _ANY_ARRAY,
        },
    },
    "OutputTensor": _answer(
        {
            "name": _TEXT,
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "parameters": _answer({"binary_data_size": {"type": "integer", "minimum": 0}}),
            "data": {**_ANY_ARRAY, "description": "Absent when sent as binary data"},
        },
        "parameters",
        "data",
    ),
    "InferParameters": {
        "type": "object",
        "properties": {
            STICKY_FIELD: {**_TEXT, "description": _STICKY_FIELD_HELP},
            "binary_data_output": {
                **_FLAG,
                "description": "Send every output as binary data (unless it says otherwise)",
            },
        },
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "description": "One tensor per column, or one [N, F] tensor in the signature's order",
        "properties": {
            "id": _TEXT,
            "inputs": {"type": "array", "minItems": 1, "items": _ref("Tensor")},
            "parameters": _ref("InferParameters"),
            "outputs": {
                "type": "array",
                "description": "The outputs to answer (predict, predict_proba), in this order; "
                "parameters.binary_data sends one as binary data",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": _TEXT,
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data": _FLAG},
                        },
                    },
                },
            },
        },
    },
    "InferResponse": _answer(
        {
            "id": {**_TEXT, "description": "The request's id, when it sent one"},
            "model_name": {**_TEXT, "description": "The endpoint"},
            "model_version": {**_TEXT, "description": "The version that answered"},
            "outputs": {"type": "array", "items": _ref("OutputTensor")},
            "parameters": _answer(
                {
                    "prediction_ids": {**_TEXT, "description": "One id per row, comma-separated"},
                    "model": _TEXT,
                    "revision": _INTEGER,
                }
            ),
        },
        "id",
    ),
}
