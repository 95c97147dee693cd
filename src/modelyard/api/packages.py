"""Routes for model package files: download a version's, upload one without a run.

- ``GET /models/{name}/versions/{selector}/package`` lists the files of the
  version's package (``{"source", "package_digest", "files"}``), and
  ``.../package/{path}`` streams one. The SDK downloads them all, checks the
  package digest, and caches them under ``MODELYARD_HOME/cache/packages/<digest>``.
- ``GET /models/{name}/versions/{selector}/signature``: the Ed25519 signature of
  the version's package digest, the signing key's name, id and public half.
- ``PUT /uploads/{upload_id}/{path}`` stages one file of a package that is not
  part of a run (``upload_id`` is 32 hex digits the client chose); the package is
  then registered with ``source = "uploads/<upload_id>"``. The first file claims the
  id for the caller: only they may add files and register it (``catalog/uploads.py``),
  and a registered upload takes no more writes (409). A package logged by a run is
  uploaded as that run's artifacts under ``model/`` instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from modelyard.api.artifacts import chunks_of
from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES, STORAGE_RESPONSES
from modelyard.api.models import ref_of
from modelyard.api.security import guard, staging_only, workspace_of
from modelyard.api.uploads import RAW_BODY, spooled_body, with_request_body
from modelyard.api.wire import respond
from modelyard.artifacts.keys import join_key, safe_key
from modelyard.catalog.uploads import upload_key
from modelyard.domain.identity import Permission
from modelyard.domain.signing import VersionSignature
from modelyard.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["packages"], responses=ERROR_RESPONSES)


class PackageFiles(BaseModel):
    source: str
    package_digest: str
    files: list[str]


class UploadedFile(BaseModel):
    key: str
    sha256: str
    size: int


@router.get(
    "/models/{name}/versions/{selector}/package",
    response_model=PackageFiles,
    **guard(Permission.READ),
)
def package_files(name: str, selector: str, request: Request) -> Response:
    """The files of a version's package, relative to the package root."""
    services = services_of(request)
    version = services.catalog.get_version(ref_of(name, selector))
    prefix = safe_key(version.source, what="package source")
    files = [key[len(prefix) + 1 :] for key in services.artifacts.list(prefix)]
    return respond(
        {"source": version.source, "package_digest": version.package_digest, "files": files}
    )


@router.get(
    "/models/{name}/versions/{selector}/signature",
    response_model=VersionSignature,
    **guard(Permission.READ),
)
def version_signature(name: str, selector: str, request: Request) -> Response:
    """The signature of the version's package digest and the key that made it (404:
    unsigned). The SDK checks it against the digest it computes from the files."""
    services = services_of(request)
    version = services.catalog.get_version(ref_of(name, selector))
    return respond(services.signing.signature_of(version.model, version.version))


@router.get(
    "/models/{name}/versions/{selector}/package/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    **guard(Permission.READ),
)
def package_file(name: str, selector: str, path: str, request: Request) -> StreamingResponse:
    services = services_of(request)
    version = services.catalog.get_version(ref_of(name, selector))
    try:
        handle = services.artifacts.open(join_key(version.source, path))
    except NotFound:
        raise NotFound(f"the package of {version.ref} has no file '{path}'") from None
    return StreamingResponse(chunks_of(handle), media_type="application/octet-stream")


@router.put(
    "/uploads/{upload_id}/{path:path}",
    status_code=201,
    response_model=UploadedFile,
    responses=STORAGE_RESPONSES,
    **with_request_body(guard(Permission.REGISTER), RAW_BODY),
)
async def upload_file(upload_id: str, path: str, request: Request) -> Response:
    """Stage one file of a package for registering a version without a run."""
    services = services_of(request)
    key = upload_key(upload_id, path)
    await run_in_threadpool(services.catalog.stage_upload, upload_id, workspace_of(request))
    artifacts = services.artifacts
    with await spooled_body(request) as body:
        sha256, size = await run_in_threadpool(artifacts.put, key, body)
    staging_only(request)  # the registration that uses these files is the recorded change
    return respond({"key": key, "sha256": sha256, "size": size}, 201)
