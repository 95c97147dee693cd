"""The Open Inference Protocol (V2) REST surface, as KServe and Triton clients speak it.

An endpoint is a V2 model named like the endpoint; its versions are the
versions it routes to or shadows, each named by its version number (or
``model:number`` when two targets share a number). ``/v2/models/{name}`` and
``/v2/models/{name}/infer`` answer from the route chosen by weight or sticky
key; ``/v2/models/{name}/versions/{version}[/infer]`` from exactly that version
(404 for a version the endpoint does not serve).

Inputs are the first route's signature, one tensor per column (shape ``[N]`` or
``[N, 1]``); a request may instead send one ``[N, F]`` tensor whose columns
follow the signature's order. Every V2 datatype is read (BOOL, UINT8..UINT64,
INT8..INT64, FP16, FP32, FP64, BYTES); one a column cannot take, an unknown one
or a shape that does not match the data is a 400 naming the input, as is an
infinity in binary float data (naming its position too). Outputs are ``predict``
(``[N]``, or ``[N, width]`` for a model with several outputs) and, for a
classifier, ``predict_proba`` ``[N, classes]``; the metadata declares exactly
what infer answers, and a request's ``outputs`` picks some of them, in its order.
The binary tensor data extension works both ways: a body whose first
``Inference-Header-Content-Length`` bytes are the JSON header, inputs with
``parameters.binary_data_size``, and outputs sent as raw bytes when asked
(``parameters.binary_data`` per output, or ``binary_data_output`` for all).
``parameters.prediction_ids`` holds one id per row, comma-separated. A sticky key
goes in the ``X-Sticky-Key`` header or ``parameters.sticky_key``. A body may come
gzip- or deflate-compressed (``Content-Encoding``). Every error on a V2 route is
``{"error": "..."}``.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelyard import __version__
from modelyard.errors import BadRequest, ModelyardError, NotFound, TooLarge
from modelyard.serving.models import Model
from modelyard.serving.predict import sticky_key
from modelyard.serving.runtime import EndpointState, Lane
from modelyard.serving.wire import raw_body, respond, runtime_of

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]

# the V2 datatype a column type is declared as, and every datatype it can be sent as
V2_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}
_NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = (*_NUMPY, "BYTES")
_INTEGERS = tuple(t for t in _NUMPY if "INT" in t)
_FLOATS = ("FP16", "FP32", "FP64")
ACCEPTS = {
    "float": frozenset((*_FLOATS, *_INTEGERS)),
    "integer": frozenset(_INTEGERS),
    "boolean": frozenset(("BOOL",)),
    "string": frozenset(("BYTES",)),
    "datetime": frozenset(("BYTES",)),
}


def error_answer(exc: ModelyardError) -> Response:
    """The spec's error body; input the model cannot take is a 400, as the spec has it."""
    status = 400 if exc.status_code == 422 else exc.status_code
    return respond({"error": exc.message}, status)


def error_of(status: int, message: str) -> Response:
    return respond({"error": message}, status)


# -- metadata and readiness ------------------------------------------------


async def server_metadata(request: Request) -> Response:
    return respond({"name": "modelyard", "version": __version__, "extensions": EXTENSIONS})


async def server_ready(request: Request) -> Response:
    ready = runtime_of(request).ready
    return respond({"ready": ready}, 200 if ready else 503)


async def model_metadata(request: Request) -> Response:
    state = runtime_of(request).endpoint(request.path_params["name"])
    lane = _lane(state, request.path_params.get("version"))
    await known_outputs([lane.model] if lane is not None else [r.model for r in state.routes])
    model = lane.model if lane is not None else state.contract
    versions = [version_of(state, lane)] if lane is not None else versions_of(state)
    outputs = outputs_of(lane.model) if lane is not None else common_outputs(state)
    return respond(
        {
            "name": state.name,
            "versions": versions,
            "platform": f"modelyard_{model.flavor.name}",
            "inputs": [
                {"name": c.name, "datatype": V2_TYPES[c.type], "shape": [-1]}
                for c in state.contract.signature.inputs
            ],
            "outputs": [
                {"name": name, "datatype": datatype, "shape": shape}
                for name, datatype, shape in outputs
            ],
        }
    )


async def model_ready(request: Request) -> Response:
    state = runtime_of(request).endpoint(request.path_params["name"])
    lane = _lane(state, request.path_params.get("version"))
    answer: dict[str, Any] = {"name": state.name, "ready": True}
    if lane is not None:
        answer["version"] = version_of(state, lane)
    return respond(answer)


def versions_of(state: EndpointState) -> list[str]:
    return [version_of(state, lane) for lane in state.routes + state.shadows]


def version_of(state: EndpointState, lane: Lane) -> str:
    """A target's V2 version: its number, or ``model:number`` if another target shares it."""
    number = lane.model.version
    lanes = state.routes + state.shadows
    if sum(1 for other in lanes if other.model.version == number) > 1:
        return f"{lane.model.model}:{number}"
    return str(number)


def _lane(state: EndpointState, version: str | None) -> Lane | None:
    if version is None:
        return None
    for lane in state.routes + state.shadows:
        if version_of(state, lane) == version:
            return lane
    served = ", ".join(versions_of(state))
    raise NotFound(f"endpoint '{state.name}' serves no version '{version}' (it serves {served})")


def outputs_of(model: Model) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of every output infer returns from ``model``: ``predict``
    (one label or value a row, or ``[N, width]`` for a model with several outputs) and a
    classifier's ``predict_proba``."""
    kind, width = model.output_form()
    predict = ("predict", V2_TYPES[kind], [-1] if width is None else [-1, width])
    classes = model.classes
    if classes is None:
        return [predict]
    return [predict, ("predict_proba", "FP64", [-1, len(classes)])]


async def known_outputs(models: list[Model]) -> None:
    """Learn what each of ``models`` answers (``Model.output_form``) off the event loop:
    the first time, it may call the model."""
    unknown = [model for model in models if not model.knows_output_form]
    if unknown:
        await run_in_threadpool(lambda: [model.output_form() for model in unknown])


def common_outputs(state: EndpointState) -> list[tuple[str, str, list[int]]]:
    """What an unversioned infer answers whichever route answers: the outputs every route
    has with one shape, as FP64 where the routes' numeric datatypes differ, else BYTES."""
    each = [
        {name: (t, shape) for name, t, shape in outputs_of(lane.model)} for lane in state.routes
    ]
    shared = []
    for name, (datatype, shape) in each[0].items():
        if not all(name in theirs and theirs[name][1] == shape for theirs in each):
            continue
        datatypes = {theirs[name][0] for theirs in each}
        if len(datatypes) > 1:
            datatype = "FP64" if datatypes <= {"BOOL", "INT64", "FP64"} else "BYTES"
        shared.append((name, datatype, shape))
    return shared


# -- inference -------------------------------------------------------------


async def infer(request: Request) -> Response:
    runtime = runtime_of(request)
    state = runtime.endpoint(request.path_params["name"])
    chosen = _lane(state, request.path_params.get("version"))
    raw = decoded(await raw_body(request), request.headers.get("content-encoding"), request)
    body, blob = parse_request(raw, request.headers.get(HEADER_LENGTH))
    rows = v2_rows(body, state, blob)
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    lane = chosen if chosen is not None else state.pick(sticky_key(request, parameters))
    await known_outputs([chosen.model] if chosen is not None else [r.model for r in state.routes])
    declared = outputs_of(lane.model) if chosen is not None else common_outputs(state)
    requested = _requested(body, parameters, declared)
    datatypes = {name: datatype for name, datatype, _ in declared}
    lane, ids, outputs, scores = await runtime.predict(state, rows, None, lane)
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in requested:
        datatype = datatypes[name]
        values = scores if name == "predict_proba" else outputs
        assert values is not None  # a classifier's outputs include its scores
        tensor, data = _tensor(name, datatype, values, binary)
        tensors.append(tensor)
        if data is not None:
            blobs.append(data)
    result: dict[str, Any] = {
        "model_name": state.name,
        "model_version": version_of(state, lane),
        "outputs": tensors,
        "parameters": {
            "prediction_ids": ",".join(ids),
            "model": lane.model.model,
            "revision": state.revision,
        },
    }
    if "id" in body:
        result["id"] = str(body["id"])
    headers = {"x-modelyard-version": lane.model.ref}
    if not blobs:
        return respond(result, headers=headers)
    header = orjson.dumps(result)
    headers[HEADER_LENGTH] = str(len(header))
    return Response(
        header + b"".join(blobs), media_type="application/octet-stream", headers=headers
    )


def decoded(raw: bytes, encoding: str | None, request: Request) -> bytes:
    """A body sent compressed (``Content-Encoding: gzip`` or ``deflate``, as Triton's client
    may), decompressed up to the process's body limit."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return raw
    if name not in ("gzip", "deflate"):
        raise BadRequest(f"Content-Encoding '{name}' is not read; send gzip, deflate or none")
    limit: int = request.app.state.max_body
    inflater = zlib.decompressobj(wbits=31 if name == "gzip" else 15)
    try:
        plain = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {name} data: {exc}") from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the decompressed request body is over the limit of {limit} bytes")
    return plain


def parse_request(raw: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """(the JSON header, the binary tensor data after it) of a request body."""
    if header_length is None:
        return _json(raw), b""
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise BadRequest(
            f"{HEADER_LENGTH} is '{header_length}'; it must be the JSON header's length "
            f"in bytes, at most the body's {len(raw)}"
        )
    size = int(header_length)
    return _json(raw[:size]), raw[size:]


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _requested(
    body: dict[str, Any], parameters: dict[str, Any], declared: list[tuple[str, str, list[int]]]
) -> list[tuple[str, bool]]:
    """(output name, as binary data) for every output to answer, in the request's order."""
    everything = bool(parameters.get("binary_data_output", False))
    names = [name for name, _, _ in declared]
    asked = body.get("outputs")
    if asked is None:
        return [(name, everything) for name in names]
    if not isinstance(asked, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in asked
    ):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    requested = []
    for output in asked:
        if output["name"] not in names:
            raise BadRequest(
                f"no output '{output['name']}'; this model's outputs are {', '.join(names)}"
            )
        own = output.get("parameters") if isinstance(output.get("parameters"), dict) else {}
        requested.append((output["name"], bool(own.get("binary_data", everything))))
    return requested


def _tensor(
    name: str, datatype: str, values: list[Any], binary: bool
) -> tuple[dict[str, Any], bytes | None]:
    array = np.asarray(values)
    shape = list(array.shape) if array.size else [len(values)]
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    flat = array.reshape(-1)
    if datatype == "BYTES":
        texts = [v if isinstance(v, str) else str(v) for v in flat.tolist()]
        if not binary:
            tensor["data"] = texts
            return tensor, None
        raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    else:
        typed = flat.astype(_NUMPY[datatype])
        if not binary:
            tensor["data"] = typed.tolist()
            return tensor, None
        raw = typed.tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


# -- reading tensors -------------------------------------------------------


def v2_rows(body: Any, state: EndpointState, blob: bytes = b"") -> list[dict[str, Any]]:
    """Rows from a V2 inference request: one tensor per column, or one [N, F] tensor."""
    inputs = _inputs(body)
    signature = state.contract.signature
    types = {c.name: c.type for c in signature.inputs}
    names = signature.input_names
    tensors = _read_all(inputs, blob)
    if len(tensors) == 1 and tensors[0][0] not in types:
        return _matrix_rows(tensors[0], names, types)
    columns: dict[str, list[Any]] = {}
    for name, datatype, shape, values in tensors:
        if name not in types:
            raise BadRequest(f"input '{name}' is not a column of this model ({', '.join(names)})")
        _check_type(name, datatype, types[name], values)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(f"input '{name}': a column's shape is [N] or [N, 1], not {shape}")
        columns[name] = values
    if len({len(v) for v in columns.values()}) != 1:
        sizes = ", ".join(f"'{k}': {len(v)}" for k, v in columns.items())
        raise BadRequest(f"V2 input tensors differ in length ({sizes})")
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    if not rows:
        raise BadRequest("the request has no rows")
    return rows


Tensor = tuple[str, str, list[int], list[Any]]  # name, datatype, shape, flat values


def _inputs(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest("expected a V2 inference request with a non-empty 'inputs' list")
    inputs: list[dict[str, Any]] = body["inputs"]
    for tensor in inputs:
        if not isinstance(tensor, dict) or not all(
            k in tensor for k in ("name", "shape", "datatype")
        ):
            raise BadRequest("every input needs 'name', 'shape', 'datatype' and 'data'")
    return inputs


def _read_all(inputs: list[dict[str, Any]], blob: bytes) -> list[Tensor]:
    tensors, offset = [], 0
    for tensor in inputs:
        name, datatype, shape = str(tensor["name"]), tensor["datatype"], tensor["shape"]
        if datatype not in DATATYPES:
            raise BadRequest(
                f"input '{name}': unknown datatype {datatype!r}; V2 datatypes are "
                f"{', '.join(DATATYPES)}"
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise BadRequest(f"input '{name}': 'shape' must be a list of sizes, not {shape!r}")
        own = tensor.get("parameters")
        size = own.get("binary_data_size") if isinstance(own, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(blob):
                raise BadRequest(
                    f"input '{name}': binary_data_size {size!r} is past the "
                    f"{len(blob)} bytes of binary data"
                )
            values = _from_bytes(name, datatype, blob[offset : offset + size], shape)
            offset += size
        elif "data" in tensor:
            values = _from_json(name, datatype, tensor["data"])
        else:
            raise BadRequest(f"input '{name}' has neither 'data' nor a binary_data_size")
        count = int(np.prod(shape)) if shape else 1
        if count != len(values):
            raise BadRequest(
                f"input '{name}': shape {shape} holds {count} values; got {len(values)}"
            )
        tensors.append((name, datatype, shape, values))
    if offset != len(blob):
        raise BadRequest(f"{len(blob) - offset} bytes of binary data belong to no input")
    return tensors


def _from_bytes(name: str, datatype: str, raw: bytes, shape: list[int]) -> list[Any]:
    if datatype == "BYTES":
        texts, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise BadRequest(f"input '{name}': BYTES data ends inside a length prefix")
            (length,) = struct.unpack_from("<I", raw, at)
            at += 4
            if at + length > len(raw):
                raise BadRequest(f"input '{name}': a BYTES element runs past its data")
            texts.append(_text(name, raw[at : at + length]))
            at += length
        return texts
    dtype = np.dtype(_NUMPY[datatype])
    if len(raw) % dtype.itemsize:
        raise BadRequest(
            f"input '{name}': {len(raw)} bytes is not a whole number of {datatype} values"
        )
    array = np.frombuffer(raw, dtype=dtype)
    if datatype in _FLOATS:
        _check_finite(name, datatype, array, shape)
    if datatype == "FP16":
        array = array.astype(np.float64)
    values: list[Any] = array.tolist()
    return values


def _check_finite(name: str, datatype: str, array: np.ndarray[Any, Any], shape: list[int]) -> None:
    """Refuse an infinity (JSON cannot hold one; binary data can): no model takes it. A NaN
    is a null, which the signature allows or refuses by column."""
    infinite = np.flatnonzero(np.isinf(array))
    if not infinite.size:
        return
    flat = int(infinite[0])
    fits = shape and int(np.prod(shape)) == array.size
    position = [int(i) for i in np.unravel_index(flat, shape)] if fits else [flat]
    raise BadRequest(
        f"input '{name}': {array[flat].item()} at position {position} is not a finite "
        f"{datatype} value"
    )


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise BadRequest(f"input '{name}': BYTES elements must be UTF-8 text") from None


def _from_json(name: str, datatype: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest(f"input '{name}': 'data' must be a list")
    values = _flatten(data)
    check = _CHECKS[datatype[:2]] if datatype != "BYTES" else _is_text
    for value in values:
        if value is not None and not check(value, datatype):
            raise BadRequest(f"input '{name}': {value!r} is not a {datatype} value")
    return values


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def _is_bool(value: Any, datatype: str) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any, datatype: str) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    info = np.iinfo(np.dtype(_NUMPY[datatype]))
    return int(info.min) <= value <= int(info.max)


def _is_float(value: Any, datatype: str) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_text(value: Any, datatype: str) -> bool:
    return isinstance(value, str)


_CHECKS = {"BO": _is_bool, "UI": _is_int, "IN": _is_int, "FP": _is_float}


_INT64 = np.iinfo(np.int64)


def _check_type(name: str, datatype: str, column_type: str, values: list[Any]) -> None:
    if datatype not in ACCEPTS[column_type]:
        takes = ", ".join(sorted(ACCEPTS[column_type]))
        raise BadRequest(
            f"input '{name}': the model's column '{name}' is {column_type} and cannot take "
            f"{datatype} (it takes {takes})"
        )
    if column_type == "integer" and datatype == "UINT64":
        for value in values:
            if value is not None and value > _INT64.max:
                raise BadRequest(
                    f"input '{name}': {value} is past the largest value of the model's "
                    f"integer column ({_INT64.max})"
                )


def _matrix_rows(tensor: Tensor, names: list[str], types: dict[str, str]) -> list[dict[str, Any]]:
    name, datatype, shape, data = tensor
    width = len(names)
    if len(shape) != 2 or shape[1] != width:
        raise BadRequest(
            f"input '{name}': expected one tensor per column ({', '.join(names)}) "
            f"or one tensor of shape [N, {width}], not {shape}"
        )
    for index, column in enumerate(names):
        _check_type(name, datatype, types[column], data[index::width])
    rows = [dict(zip(names, data[i : i + width], strict=True)) for i in range(0, len(data), width)]
    if not rows:
        raise BadRequest("the request has no rows")
    return rows
