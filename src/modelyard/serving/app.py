"""The serving data plane's HTTP app: predict, Open Inference Protocol V2, probes, metrics.

A plain Starlette app (no request models): the prediction path parses JSON with
orjson and checks input against the version's signature itself, so framework
overhead stays small. Every route names what it needs in ``ROUTE_RULES``; the
prediction routes take a key that may predict on *that* endpoint (a user key
with the predict permission, or an endpoint key). ``/healthz``, ``/readyz`` and
the V2 health probes answer without a key.

Bad input never reaches a model and never yields a 500: malformed JSON is 400,
a body over the limit 413, input that breaks the signature 422 naming the column,
an unknown endpoint 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard import __version__
from modelyard.domain.identity import DEFAULT_WORKSPACE, Permission, Principal
from modelyard.errors import BadRequest, InvalidInput, ModelyardError, PermissionDenied, TooLarge
from modelyard.serving.runtime import EndpointState, Runtime

log = logging.getLogger("modelyard.serving")
DEFAULT_MAX_BODY = 4 * 1024 * 1024
V2_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}

# method, path, what the caller needs (None: no key)
ROUTE_RULES: list[tuple[str, str, Permission | None]] = [
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/v2/health/live", None),
    ("GET", "/v2/health/ready", None),
    ("GET", "/v2", Permission.READ),
    ("GET", "/metrics", Permission.READ),
    ("GET", "/endpoints", Permission.READ),
    ("POST", "/endpoints/{name}/predict", Permission.PREDICT),
    ("GET", "/v2/models/{name}", Permission.PREDICT),
    ("GET", "/v2/models/{name}/ready", Permission.PREDICT),
    ("POST", "/v2/models/{name}/infer", Permission.PREDICT),
]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error(exc: ModelyardError) -> Response:
    return _json({"error": {"kind": exc.kind, "message": exc.message}}, exc.status_code)


def create_serving_app(runtime: Runtime, *, max_body: int = DEFAULT_MAX_BODY) -> Starlette:
    """The data plane over ``runtime``; starts and stops it with the server."""
    identity = runtime.services.identity

    async def principal_of(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        cached = identity.recent(token) if token else None
        if cached is not None:
            return cached
        return await run_in_threadpool(identity.authenticate_recent, token or None)

    async def refuse(request: Request, exc: ModelyardError, endpoint: str | None) -> Response:
        runtime.metrics.rejected.labels(endpoint or "", str(exc.status_code)).inc()
        if exc.status_code in (401, 403):
            await run_in_threadpool(_audit_refusal, runtime, request, exc)
        return _error(exc)

    owners = runtime.services.workspaces

    async def workspace_of(endpoint: str) -> str:
        known = owners.known_endpoint(endpoint)
        if known is not None:
            return known
        found = await run_in_threadpool(owners.owner, "endpoint", endpoint)
        return found or DEFAULT_WORKSPACE

    async def allowed(request: Request, permission: Permission, endpoint: str | None) -> None:
        principal = await principal_of(request)
        request.state.principal = principal
        if endpoint is None:
            # routes that name no endpoint: a role allowing it in any workspace will do
            if not any(
                replace(principal, role=role).can(permission) for _, role in principal.roles
            ):
                raise PermissionDenied(
                    f"user '{principal.user}' has no role that allows '{permission.value}'"
                )
            return
        workspace = await workspace_of(endpoint)
        if permission is Permission.PREDICT:
            if not principal.may_predict(endpoint, workspace):
                raise PermissionDenied(_refusal(principal, endpoint, workspace))
            return
        acting = principal.acting_in(workspace)
        request.state.principal = acting
        if not acting.can(permission):
            raise PermissionDenied(
                f"user '{principal.user}' has the {acting.role.value} role in workspace "
                f"'{workspace}', which does not allow '{permission.value}'"
            )

    Handler = Callable[[Request], Awaitable[Response]]

    def guarded(permission: Permission) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            async def route(request: Request) -> Response:
                endpoint = request.path_params.get("name")
                try:
                    await allowed(request, permission, endpoint)
                    return await handler(request)
                except ModelyardError as exc:
                    if exc.status_code >= 500 and exc.kind != "not_ready":
                        log.error("%s %s: %s", request.method, request.url.path, exc.message)
                    return await refuse(request, exc, endpoint)
                except Exception:
                    log.exception("%s %s failed", request.method, request.url.path)
                    return _json(
                        {"error": {"kind": "internal", "message": "internal error; see the log"}},
                        500,
                    )

            return route

        return wrap

    async def body_of(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise TooLarge(f"request body is {declared} bytes; the limit is {max_body}")
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > max_body:
                raise TooLarge(f"request body is over the limit of {max_body} bytes")
        try:
            return orjson.loads(chunks)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None

    # -- probes --------------------------------------------------------------

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> Response:
        ready = runtime.ready
        return _json({"ready": ready, "endpoints": runtime.describe()}, 200 if ready else 503)

    async def v2_ready(request: Request) -> Response:
        return _json({"ready": runtime.ready}, 200 if runtime.ready else 503)

    @guarded(Permission.READ)
    async def v2_server(request: Request) -> Response:
        return _json({"name": "modelyard", "version": __version__, "extensions": []})

    @guarded(Permission.READ)
    async def metrics(request: Request) -> Response:
        return Response(
            runtime.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @guarded(Permission.READ)
    async def endpoints(request: Request) -> Response:
        """The hosted endpoints of the caller's workspaces."""
        principal: Principal = request.state.principal
        mine = {workspace for workspace, _ in principal.roles}
        described = runtime.describe()
        visible = [d for d in described if await workspace_of(d["name"]) in mine]
        return _json({"endpoints": visible})

    # -- predictions ---------------------------------------------------------

    @guarded(Permission.PREDICT)
    async def predict(request: Request) -> Response:
        state = runtime.endpoint(request.path_params["name"])
        body = await body_of(request)
        rows = rows_of(body)
        sticky = request.headers.get("x-sticky-key") or _sticky(body)
        lane, ids, outputs, scores = await runtime.predict(state, rows, sticky)
        answer: dict[str, Any] = {
            "endpoint": state.name,
            "revision": state.revision,
            "model": lane.model.model,
            "version": lane.model.version,
            "ids": ids,
            "predictions": outputs,
        }
        if scores is not None and isinstance(body, dict) and body.get("scores"):
            answer["scores"] = scores
        return _json(answer, headers={"x-modelyard-version": lane.model.ref})

    @guarded(Permission.PREDICT)
    async def v2_metadata(request: Request) -> Response:
        state = runtime.endpoint(request.path_params["name"])
        contract = state.contract
        return _json(
            {
                "name": state.name,
                "versions": [lane.model.ref for lane in state.routes],
                "platform": "modelyard",
                "inputs": [
                    {"name": c.name, "datatype": V2_TYPES[c.type], "shape": [-1]}
                    for c in contract.signature.inputs
                ],
                "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
                "parameters": {"revision": state.revision},
            }
        )

    @guarded(Permission.PREDICT)
    async def v2_model_ready(request: Request) -> Response:
        state = runtime.endpoint(request.path_params["name"])
        return _json({"name": state.name, "ready": True})

    @guarded(Permission.PREDICT)
    async def v2_infer(request: Request) -> Response:
        state = runtime.endpoint(request.path_params["name"])
        body = await body_of(request)
        rows = v2_rows(body, state)
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        lane, ids, outputs, scores = await runtime.predict(
            state, rows, request.headers.get("x-sticky-key") or _sticky(parameters)
        )
        result: dict[str, Any] = {
            "model_name": state.name,
            "model_version": str(lane.model.version),
            "outputs": [
                {
                    "name": "predict",
                    "datatype": _v2_type(outputs),
                    "shape": [len(outputs)],
                    "data": outputs,
                }
            ],
            "parameters": {
                "prediction_ids": ids,
                "model": lane.model.model,
                "revision": state.revision,
            },
        }
        if "id" in body:
            result["id"] = body["id"]
        if scores is not None:
            result["outputs"].append(
                {
                    "name": "predict_proba",
                    "datatype": "FP64",
                    "shape": [len(scores), len(scores[0]) if scores else 0],
                    "data": [value for row in scores for value in row],
                }
            )
        return _json(result, headers={"x-modelyard-version": lane.model.ref})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v2/health/live", healthz, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/endpoints", endpoints, methods=["GET"]),
        Route("/endpoints/{name}/predict", predict, methods=["POST"]),
        Route("/v2/models/{name}", v2_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            await run_in_threadpool(runtime.stop)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json(
            {"error": {"kind": "not_found", "message": f"no route {request.url.path}"}}, 404
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _json(
            {
                "error": {
                    "kind": "method_not_allowed",
                    "message": f"{request.method} is not allowed on {request.url.path}",
                }
            },
            405,
        )

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed},
    )


def _sticky(body: Any) -> str | None:
    value = body.get("sticky_key") if isinstance(body, dict) else None
    return str(value) if value is not None else None


def _refusal(principal: Principal, endpoint: str, workspace: str) -> str:
    if principal.endpoint is not None:
        return f"this key may not call endpoint '{endpoint}'"
    role = principal.role_in(workspace)
    held = f"the {role.value} role" if role else "no role"
    return (
        f"user '{principal.user}' has {held} in workspace '{workspace}', "
        f"so may not call endpoint '{endpoint}'"
    )


def rows_of(body: Any) -> list[dict[str, Any]]:
    """Rows from ``{"records": [...]}`` or ``{"columns": {...}}``."""
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object with 'records' or 'columns'")
    if "records" in body:
        records = body["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput("'records' must be a list of objects, one per row")
        rows = records
    elif "columns" in body:
        columns = body["columns"]
        if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
            raise InvalidInput("'columns' must be an object of equally long lists")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"'{k}': {len(v)}" for k, v in columns.items())
            raise InvalidInput(f"'columns' lists differ in length ({sizes})")
        names = list(columns)
        rows = [
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ]
    else:
        raise InvalidInput("expected a JSON object with 'records' or 'columns'")
    if not rows:
        raise InvalidInput("the request has no rows")
    return rows


def v2_rows(body: Any, state: EndpointState) -> list[dict[str, Any]]:
    """Rows from a V2 inference request: one tensor per column, or one [N, F] tensor."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("expected a V2 inference request with a non-empty 'inputs' list")
    inputs = body["inputs"]
    for tensor in inputs:
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise InvalidInput("every input needs 'name', 'shape', 'datatype' and 'data'")
        if not isinstance(tensor["data"], list):
            raise InvalidInput(f"input '{tensor['name']}': 'data' must be a list")
    names = state.contract.names
    if len(inputs) == 1 and inputs[0]["name"] not in names:
        tensor = inputs[0]
        shape = tensor.get("shape") or []
        data = _flat(tensor["data"])
        if len(shape) != 2 or shape[1] != len(names) or shape[0] * shape[1] != len(data):
            raise InvalidInput(
                f"input '{tensor['name']}': expected one tensor per column ({', '.join(names)}) "
                f"or one tensor of shape [N, {len(names)}]"
            )
        width = len(names)
        return [
            dict(zip(names, data[i : i + width], strict=True)) for i in range(0, len(data), width)
        ]
    columns = {str(t["name"]): _flat(t["data"]) for t in inputs}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InvalidInput("V2 input tensors differ in length")
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    if not rows:
        raise InvalidInput("the request has no rows")
    return rows


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


def _audit_refusal(runtime: Runtime, request: Request, exc: ModelyardError) -> None:
    principal: Principal | None = getattr(request.state, "principal", None)
    runtime.services.audit.record(
        actor=principal.user if principal else "anonymous",
        key_id=principal.key_id if principal else None,
        action=f"{request.method} {request.url.path}",
        resource=request.url.path,
        outcome="denied",
        status=exc.status_code,
        client=request.client.host if request.client else "",
        summary={"reason": exc.message, "plane": "serving"},
    )
