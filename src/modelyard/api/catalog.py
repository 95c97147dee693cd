"""Routes for registered models, versions, aliases, stages and package files.

A version is addressed as ``/models/{name}/versions/{selector}`` where the
selector is a number, ``latest``, or ``@alias``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.dependencies import services_of
from modelyard.api.security import guard
from modelyard.api.uploads import spooled_body
from modelyard.api.wire import AliasIn, ModelIn, ModelUpdate, StageIn, VersionIn, respond
from modelyard.artifacts.keys import safe_key
from modelyard.domain.identity import Permission
from modelyard.domain.models import ModelRef
from modelyard.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1", tags=["catalog"])


def ref_of(name: str, selector: str) -> ModelRef:
    if selector == "latest":
        return ModelRef(name)
    if selector.startswith("@"):
        return ModelRef(name, alias=selector[1:])
    if selector.isdigit():
        return ModelRef(name, version=int(selector))
    raise InvalidInput(f"version selector {selector!r} must be a number, 'latest' or '@alias'")


@router.post("/models", status_code=201, **guard(Permission.REGISTER))
def create_model(body: ModelIn, request: Request) -> Response:
    return respond(
        services_of(request).catalog.create_model(body.name, body.description, body.tags), 201
    )


@router.get("/models", **guard(Permission.READ))
def list_models(
    request: Request, name_contains: str | None = None, tag: str | None = None
) -> Response:
    return respond(services_of(request).catalog.list_models(name_contains, tag))


@router.get("/models/{name}", **guard(Permission.READ))
def get_model(name: str, request: Request) -> Response:
    return respond(services_of(request).catalog.get_model(name))


@router.patch("/models/{name}", **guard(Permission.REGISTER))
def update_model(name: str, body: ModelUpdate, request: Request) -> Response:
    updated = services_of(request).catalog.update_model(
        name, description=body.description, tags=body.tags
    )
    return respond(updated)


@router.post("/models/{name}/versions", status_code=201, **guard(Permission.REGISTER))
def register_version(name: str, body: VersionIn, request: Request) -> Response:
    version = services_of(request).catalog.register_version(
        name,
        source=body.source,
        run_id=body.run_id,
        description=body.description,
        tags=body.tags,
        created_by=body.created_by,
    )
    return respond(version, 201)


@router.get("/versions", **guard(Permission.READ))
def search_versions(
    request: Request,
    name: str | None = None,
    stage: str | None = None,
    run_id: str | None = None,
    tag: str | None = None,
) -> Response:
    found = services_of(request).catalog.search_versions(name, stage=stage, run_id=run_id, tag=tag)
    return respond(found)


@router.get("/models/{name}/versions/{selector}", **guard(Permission.READ))
def get_version(name: str, selector: str, request: Request) -> Response:
    return respond(services_of(request).catalog.get_version(ref_of(name, selector)))


@router.patch("/models/{name}/versions/{selector}", **guard(Permission.REGISTER))
def update_version(name: str, selector: str, body: ModelUpdate, request: Request) -> Response:
    updated = services_of(request).catalog.update_version(
        ref_of(name, selector), description=body.description, tags=body.tags
    )
    return respond(updated)


@router.post("/models/{name}/versions/{selector}/stage", **guard(Permission.PROMOTE))
def transition_stage(name: str, selector: str, body: StageIn, request: Request) -> Response:
    moved = services_of(request).catalog.transition_stage(
        ref_of(name, selector),
        body.stage,
        actor=body.actor,
        comment=body.comment,
        archive_others=body.archive_others,
    )
    return respond(moved)


@router.get("/models/{name}/versions/{selector}/stages", **guard(Permission.READ))
def stage_history(name: str, selector: str, request: Request) -> Response:
    return respond(services_of(request).catalog.stage_history(ref_of(name, selector)))


@router.put("/models/{name}/aliases/{alias}", **guard(Permission.PROMOTE))
def set_alias(name: str, alias: str, body: AliasIn, request: Request) -> Response:
    return respond(services_of(request).catalog.set_alias(name, alias, body.version))


@router.delete("/models/{name}/aliases/{alias}", status_code=204, **guard(Permission.PROMOTE))
def delete_alias(name: str, alias: str, request: Request) -> Response:
    services_of(request).catalog.delete_alias(name, alias)
    return Response(status_code=204)


@router.get("/models/{name}/versions/{selector}/package", **guard(Permission.READ))
def package_files(name: str, selector: str, request: Request) -> Response:
    """The files of a version's package, relative to the package root."""
    services = services_of(request)
    version = services.catalog.get_version(ref_of(name, selector))
    prefix = safe_key(version.source)
    files = [key[len(prefix) + 1 :] for key in services.artifacts.list(prefix)]
    return respond(
        {"source": version.source, "package_digest": version.package_digest, "files": files}
    )


@router.get("/models/{name}/versions/{selector}/package/{path:path}", **guard(Permission.READ))
def package_file(name: str, selector: str, path: str, request: Request) -> Response:
    services = services_of(request)
    version = services.catalog.get_version(ref_of(name, selector))
    key = f"{safe_key(version.source)}/{safe_key(path)}"
    local = services.artifacts.local_path(key)
    if local is not None:
        if not local.is_file():
            raise NotFound(f"package of {version.ref} has no file '{path}'")
        return FileResponse(local)
    with services.artifacts.open(key) as handle:
        return Response(handle.read(), media_type="application/octet-stream")


@router.put("/uploads/{upload_id}/{path:path}", status_code=201, **guard(Permission.REGISTER))
async def upload_file(upload_id: str, path: str, request: Request) -> Response:
    """Stage a package file for registering a version without a run."""
    if not upload_id.isalnum() or len(upload_id) != 32:
        raise InvalidInput(f"upload id {upload_id!r} must be 32 letters or digits")
    key = f"uploads/{upload_id}/{safe_key(path)}"
    body = await spooled_body(request)
    with body:
        sha256, size = await run_in_threadpool(services_of(request).artifacts.put, key, body)
    return respond({"key": key, "sha256": sha256, "size": size}, 201)
