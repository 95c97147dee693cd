"""Routes for a run's artifacts: ``/api/v1/runs/{run_id}/artifacts/{path}``.

``PUT`` takes the file as the raw request body, streamed to a spooled temporary
file (memory up to 8 MiB, then disk) and from there into the artifact store,
which hashes it on the way in; ``GET`` streams it back. Paths are artifact keys:
relative, no ``..`` (also not ``%2e%2e``), no backslashes: anything that could
leave the run's folder is refused with 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES, STORAGE_RESPONSES
from modelyard.api.security import guard
from modelyard.api.uploads import CHUNK, RAW_BODY, spooled_body, with_request_body
from modelyard.api.wire import respond
from modelyard.domain.identity import Permission
from modelyard.domain.runs import Artifact

router = APIRouter(prefix="/api/v1", tags=["artifacts"], responses=ERROR_RESPONSES)


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    status_code=201,
    response_model=Artifact,
    responses=STORAGE_RESPONSES,
    **with_request_body(guard(Permission.TRACK), RAW_BODY),
)
async def log_artifact(run_id: str, path: str, request: Request) -> Response:
    """Store the request body as the artifact ``path`` of the run; answer its sha256 and size."""
    tracking = services_of(request).tracking
    with await spooled_body(request) as body:
        artifact = await run_in_threadpool(tracking.log_artifact, run_id, path, body)
    return respond(artifact, 201)


@router.get("/runs/{run_id}/artifacts", response_model=list[Artifact], **guard(Permission.READ))
def list_artifacts(run_id: str, request: Request) -> Response:
    return respond(services_of(request).tracking.list_artifacts(run_id))


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    **guard(Permission.READ),
)
def read_artifact(run_id: str, path: str, request: Request) -> StreamingResponse:
    handle = services_of(request).tracking.open_artifact(run_id, path)
    return StreamingResponse(chunks_of(handle), media_type="application/octet-stream")


def chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    """The file's bytes in chunks, closing it at the end (Starlette iterates in a thread)."""
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
