"""The serving data plane's HTTP app: one route table, built into a Starlette app.

>>> app = create_serving_app(runtime, access)   # then: uvicorn.run(app)

(``serving/server.py`` builds the ``Runtime`` and the ``Access`` from bootstrap's
``Services``.) A plain Starlette app (no request models): the prediction path
parses JSON with orjson and checks input against the version's signature itself,
so framework overhead stays small. ``ROUTES`` names every route once: method,
path, handler, the permission it needs (``None``: no key) and what
``/openapi.json`` says of it; ``ROUTE_RULES`` is derived from it. Who may call
what is ``serving/auth.py`` (``Access``); the plain JSON predict route is
``serving/predict.py``, explanations ``serving/explain.py``, the Open Inference
Protocol ``serving/v2.py``.

Bad input never reaches a model and never yields a 500: malformed JSON is 400,
a body over the limit 413, input that breaks the signature 422 naming the column,
an unknown endpoint 404. Every error is ``{"error": {"kind", "message"}}``, except
on the V2 routes (``/v2...``), where it is the protocol's ``{"error": "message"}``
and input the model cannot take is a 400.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard import __version__
from modelyard.domain.identity import Permission, Principal
from modelyard.errors import ModelFailed, ModelyardError, NotAuthenticated
from modelyard.serving import explain, openapi, predict, v2
from modelyard.serving.auth import Access, access_of
from modelyard.serving.runtime import Runtime
from modelyard.serving.wire import DEFAULT_MAX_BODY, error_answer, error_of, respond, runtime_of

__all__ = ["DEFAULT_MAX_BODY", "ROUTES", "ROUTE_RULES", "ServedRoute", "create_serving_app"]

log = logging.getLogger("modelyard.serving")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ServedRoute:
    """One route of the data plane, as served, guarded and documented."""

    method: str
    path: str
    handler: Handler
    permission: Permission | None  # None: answered without a key
    summary: str
    request_schema: str | None = None  # the body's schema in /openapi.json
    response_schema: str | None = None
    sticky: bool = False  # takes a sticky key (header or body field)
    media_type: str = "application/json"  # of a successful answer


# -- probes and listings ---------------------------------------------------


async def healthz(request: Request) -> Response:
    return respond({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    ready = runtime.ready
    return respond({"ready": ready, "endpoints": runtime.describe()}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    exposition = runtime_of(request).metrics.exposition()
    return Response(exposition, media_type="text/plain; version=0.0.4; charset=utf-8")


async def endpoints(request: Request) -> Response:
    """The hosted endpoints of the caller's workspaces."""
    runtime = runtime_of(request)
    principal: Principal = request.state.principal
    mine = {workspace for workspace, _ in principal.roles}
    described = runtime.describe()
    access = access_of(request)
    visible = [d for d in described if await access.workspace_of(d["name"]) in mine]
    return respond({"endpoints": visible})


async def openapi_document(request: Request) -> Response:
    return respond(request.app.state.openapi)


READ, PREDICT = Permission.READ, Permission.PREDICT
ROUTES: tuple[ServedRoute, ...] = (
    ServedRoute("GET", "/healthz", healthz, None, "The process is up", None, "Health"),
    ServedRoute(
        "GET",
        "/readyz",
        readyz,
        None,
        "Every hosted endpoint is loaded and can log predictions",
        None,
        "Readiness",
    ),
    ServedRoute("GET", "/openapi.json", openapi_document, None, "This document", None, "Document"),
    ServedRoute("GET", "/v2/health/live", healthz, None, "V2: the process is up", None, "Health"),
    ServedRoute(
        "GET",
        "/v2/health/ready",
        v2.server_ready,
        None,
        "V2: every endpoint is loaded",
        None,
        "V2Ready",
    ),
    ServedRoute(
        "GET", "/v2", v2.server_metadata, READ, "V2: server metadata", None, "V2ServerMetadata"
    ),
    ServedRoute(
        "GET",
        "/metrics",
        metrics,
        READ,
        "Prometheus metrics of this process",
        None,
        "Metrics",
        media_type="text/plain",
    ),
    ServedRoute(
        "GET",
        "/endpoints",
        endpoints,
        READ,
        "Hosted endpoints of your workspaces",
        None,
        "Endpoints",
    ),
    ServedRoute(
        "POST",
        "/endpoints/{name}/predict",
        predict.predict,
        PREDICT,
        "Predict rows given as records or columns",
        "PredictRequest",
        "PredictResponse",
        sticky=True,
    ),
    ServedRoute(
        "POST",
        "/endpoints/{name}/explain",
        explain.explain,
        PREDICT,
        "Explain rows: SHAP values per feature, base value, top contributions in words",
        "ExplainRequest",
        "ExplainResponse",
        sticky=True,
    ),
    ServedRoute(
        "GET",
        "/v2/models/{name}",
        v2.model_metadata,
        PREDICT,
        "V2: model metadata",
        None,
        "V2ModelMetadata",
    ),
    ServedRoute(
        "GET",
        "/v2/models/{name}/ready",
        v2.model_ready,
        PREDICT,
        "V2: model ready",
        None,
        "V2ModelReady",
    ),
    ServedRoute(
        "POST",
        "/v2/models/{name}/infer",
        v2.infer,
        PREDICT,
        "V2: inference by the route chosen by weight or sticky key",
        "InferRequest",
        "InferResponse",
        sticky=True,
    ),
    ServedRoute(
        "GET",
        "/v2/models/{name}/versions/{version}",
        v2.model_metadata,
        PREDICT,
        "V2: metadata of one version the endpoint routes to or shadows",
        None,
        "V2ModelMetadata",
    ),
    ServedRoute(
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        v2.model_ready,
        PREDICT,
        "V2: one version ready",
        None,
        "V2ModelReady",
    ),
    ServedRoute(
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        v2.infer,
        PREDICT,
        "V2: inference by exactly that version",
        "InferRequest",
        "InferResponse",
    ),
)

# method, path, what the caller needs (None: no key)
ROUTE_RULES: list[tuple[str, str, Permission | None]] = [
    (route.method, route.path, route.permission) for route in ROUTES
]


def create_serving_app(
    runtime: Runtime, access: Access, *, max_body: int = DEFAULT_MAX_BODY
) -> Starlette:
    """The data plane over ``runtime``, guarded by ``access``; starts and stops the
    runtime with the server."""
    app = Starlette(
        routes=[Route(r.path, _guarded(r), methods=[r.method]) for r in ROUTES],
        lifespan=_lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.runtime = runtime
    app.state.access = access
    app.state.max_body = max_body
    app.state.openapi = openapi.document(ROUTES)
    return app


def _guarded(route: ServedRoute) -> Handler:
    """``route``'s handler behind its permission, every error answered in the envelope."""
    handler, permission = route.handler, route.permission
    protocol_v2 = route.path.startswith("/v2")

    async def guarded(request: Request) -> Response:
        endpoint = request.path_params.get("name")
        try:
            if permission is not None:
                await access_of(request).authorize(request, permission, endpoint)
            return await handler(request)
        except ModelyardError as exc:
            answer = await _refused(request, exc, endpoint)
            return v2.error_answer(exc) if protocol_v2 else answer
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            if protocol_v2:
                return v2.error_of(500, "internal error; see the log")
            return error_of(500, "internal", "internal error; see the log")

    return guarded


async def _refused(request: Request, exc: ModelyardError, endpoint: str | None) -> Response:
    runtime = runtime_of(request)
    # the runtime logs a log that cannot be written once, not once per refused request
    if exc.status_code >= 500 and exc.kind not in ("not_ready", "log_unavailable"):
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    if not isinstance(exc, ModelFailed):  # a model's failure is counted as an error, apart
        label = _served_name(runtime, exc, endpoint)
        runtime.metrics.rejected.labels(label, str(exc.status_code)).inc()
    if exc.status_code in (401, 403):
        await run_in_threadpool(access_of(request).audit_refusal, request, exc)
    return error_answer(exc)


def _served_name(runtime: Runtime, exc: ModelyardError, endpoint: str | None) -> str:
    """The endpoint a refusal is counted under: a name from the URL only when this process
    serves it and the caller was authenticated, so made-up names add no series."""
    if not endpoint or isinstance(exc, NotAuthenticated) or endpoint not in runtime.endpoints:
        return ""
    return endpoint


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    runtime.start(asyncio.get_running_loop())
    try:
        yield
    finally:
        await run_in_threadpool(runtime.stop)


async def _not_found(request: Request, exc: Exception) -> Response:
    message = f"no route {request.url.path}"
    if request.url.path.startswith("/v2"):
        return v2.error_of(404, message)
    return error_of(404, "not_found", message)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    message = f"{request.method} is not allowed on {request.url.path}"
    if request.url.path.startswith("/v2"):
        return v2.error_of(405, message)
    return error_of(405, "method_not_allowed", message)
