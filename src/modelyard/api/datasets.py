"""Routes for the datasets runs use: two steps, content first, then the description.

1. ``PUT /datasets/{fingerprint}/content`` (only for a dataset the yard keeps):
   the Parquet bytes as the raw body, streamed into the artifact store at
   ``datasets/<fingerprint>.parquet``, shared by every dataset with that content.
2. ``POST /runs/{run_id}/datasets`` with the description as JSON: ``name``,
   ``role``, ``fingerprint``, ``row_count``, ``columns``, ``uri``, and ``stored``
   (true when step 1 uploaded the content; the server checks that it did).

The description travels as a JSON body, so a dataset of thousands of columns is
as easy to describe as one of three (a query string or a header would overflow).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from modelyard.api.artifacts import chunks_of
from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES, STORAGE_RESPONSES
from modelyard.api.security import guard, staging_only, workspace_of
from modelyard.api.uploads import RAW_BODY, spooled_body, with_request_body
from modelyard.api.wire import Body, DatasetIn, respond
from modelyard.domain.datasets import Column, Dataset, DatasetUse
from modelyard.domain.identity import Permission

router = APIRouter(prefix="/api/v1", tags=["datasets"], responses=ERROR_RESPONSES)


class StoredContent(BaseModel):
    uri: str


@router.put(
    "/datasets/{fingerprint}/content",
    status_code=201,
    response_model=StoredContent,
    responses=STORAGE_RESPONSES,
    **with_request_body(guard(Permission.TRACK), RAW_BODY),
)
async def store_dataset_content(fingerprint: str, request: Request) -> Response:
    """Keep a dataset's Parquet content (the raw body) before recording it against a run."""
    datasets = services_of(request).datasets
    with await spooled_body(request) as body:
        key = await run_in_threadpool(datasets.store_content, fingerprint, body)
    staging_only(request)  # the dataset logged with this content is the recorded change
    return respond({"uri": key}, 201)


@router.post(
    "/runs/{run_id}/datasets",
    status_code=201,
    response_model=Dataset,
    **guard(Permission.TRACK),
)
def log_dataset(run_id: str, body: DatasetIn, request: Request) -> Response:
    """Link a dataset to the run by role; ``stored`` if its content was uploaded first."""
    dataset = services_of(request).datasets.log_dataset(
        run_id,
        name=body.name,
        role=body.role,
        fingerprint=body.fingerprint,
        row_count=body.row_count,
        columns=[Column(column.name, column.type) for column in body.columns],
        uri=body.uri,
        stored=body.stored,
    )
    return respond(dataset, 201)


@router.get("/runs/{run_id}/datasets", response_model=list[DatasetUse], **guard(Permission.READ))
def run_datasets(run_id: str, request: Request) -> Response:
    return respond(services_of(request).datasets.run_datasets(run_id))


@router.get("/datasets/{name}", response_model=list[Dataset], **guard(Permission.READ))
def dataset_versions(name: str, request: Request) -> Response:
    """The content versions of dataset ``name`` (or those with fingerprint ``name``),
    newest first, in the workspace the request acts in."""
    found = services_of(request).datasets.versions(name, workspace=workspace_of(request))
    return respond(found)


@router.get(
    "/datasets/{name}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    **guard(Permission.READ),
)
def dataset_content(name: str, fingerprint: str, request: Request) -> StreamingResponse:
    """The stored Parquet content of one content version; reading data is audited."""
    datasets = services_of(request).datasets
    handle = datasets.open_content(name, fingerprint, workspace=workspace_of(request))
    request.state.audit_read = True
    return StreamingResponse(chunks_of(handle), media_type="application/octet-stream")


class ClassesIn(Body):
    classes: list[str]


@router.put("/datasets/{name}/classes", **guard(Permission.REGISTER))
def classify_dataset(name: str, body: ClassesIn, request: Request) -> Response:
    """Sensitivity classes (e.g. pii) of every content version of dataset ``name``;
    they propagate along lineage to versions and endpoints."""
    classes = services_of(request).datasets.classify(name, body.classes)
    return respond({"name": name, "classes": classes})


@router.get("/datasets/{name}/classes", **guard(Permission.READ))
def dataset_classes(name: str, request: Request) -> Response:
    return respond({"name": name, "classes": services_of(request).datasets.classes(name)})
