"""Routes for the model catalog: models, versions, aliases and stages.

A version is addressed as ``/models/{name}/versions/{selector}``, where the
selector is a number (``3``), ``latest``, or an alias (``@champion``, sent as
``%40champion`` or plain ``@champion``)::

    GET  /api/v1/models/churn/versions/@champion
    POST /api/v1/models/churn/versions/3/stage   {"stage": "production"}
    PUT  /api/v1/models/churn/aliases/champion   {"version": 3}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import AliasIn, Body, ModelIn, ModelUpdate, StageIn, VersionIn, respond
from modelyard.domain.identity import Permission
from modelyard.domain.models import (
    Inventory,
    ModelRef,
    ModelVersion,
    RegisteredModel,
)
from modelyard.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["models"], responses=ERROR_RESPONSES)


def ref_of(name: str, selector: str) -> ModelRef:
    """The reference a URL names: ``("churn", "3")``, ``("churn", "@champion")``, ``latest``."""
    if selector == "latest":
        return ModelRef(name)
    if selector.startswith("@"):
        return ModelRef(name, alias=selector[1:])
    if selector.isdigit():
        return ModelRef(name, version=int(selector))
    raise InvalidInput(f"version selector {selector!r} must be a number, 'latest' or '@alias'")


@router.post(
    "/models", status_code=201, response_model=RegisteredModel, **guard(Permission.REGISTER)
)
def create_model(body: ModelIn, request: Request) -> Response:
    created = services_of(request).catalog.create_model(
        body.name, body.description, body.tags, workspace=workspace_of(request)
    )
    return respond(created, 201)


@router.get("/models", response_model=list[RegisteredModel], **guard(Permission.READ))
def list_models(
    request: Request,
    name_contains: str | None = None,
    tag: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> Response:
    """Models whose name contains ``name_contains`` and that carry ``tag`` (``key=value``),
    by name; a page of ``limit`` models named after ``after``."""
    found = services_of(request).catalog.list_models(
        name_contains, tag, workspace=workspace_of(request), limit=limit, after=after
    )
    return respond(found)


@router.get("/models/{name}", response_model=RegisteredModel, **guard(Permission.READ))
def get_model(name: str, request: Request) -> Response:
    return respond(services_of(request).catalog.get_model(name))


@router.patch("/models/{name}", response_model=RegisteredModel, **guard(Permission.REGISTER))
def update_model(name: str, body: ModelUpdate, request: Request) -> Response:
    catalog = services_of(request).catalog
    return respond(catalog.update_model(name, description=body.description, tags=body.tags))


@router.post(
    "/models/{name}/versions",
    status_code=201,
    response_model=ModelVersion,
    **guard(Permission.REGISTER),
)
def register_version(name: str, body: VersionIn, request: Request) -> Response:
    """Register the package at ``source`` (a run's ``model`` folder or an upload) as the next
    version; the server hash-checks it and records its digest."""
    version = services_of(request).catalog.register_version(
        name,
        source=body.source,
        run_id=body.run_id,
        description=body.description,
        tags=body.tags,
        workspace=workspace_of(request),
    )
    return respond(version, 201)


@router.get("/versions", response_model=list[ModelVersion], **guard(Permission.READ))
def search_versions(
    request: Request,
    name: str | None = None,
    stage: str | None = None,
    run_id: str | None = None,
    tag: str | None = None,
    sensitivity: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> Response:
    """Versions by model name and number; a page of ``limit`` versions after ``after``
    (the last reference of the page before: ``churn/3``)."""
    found = services_of(request).catalog.search_versions(
        name,
        stage=stage,
        run_id=run_id,
        tag=tag,
        sensitivity=sensitivity,
        workspace=workspace_of(request),
        limit=limit,
        after=after,
    )
    return respond(found)


@router.get(
    "/models/{name}/versions/{selector}", response_model=ModelVersion, **guard(Permission.READ)
)
def get_version(name: str, selector: str, request: Request) -> Response:
    return respond(services_of(request).catalog.get_version(ref_of(name, selector)))


@router.patch(
    "/models/{name}/versions/{selector}", response_model=ModelVersion, **guard(Permission.REGISTER)
)
def update_version(name: str, selector: str, body: ModelUpdate, request: Request) -> Response:
    updated = services_of(request).catalog.update_version(
        ref_of(name, selector), description=body.description, tags=body.tags
    )
    return respond(updated)


@router.post(
    "/models/{name}/versions/{selector}/stage",
    response_model=ModelVersion,
    **guard(Permission.PROMOTE),
)
def transition_stage(name: str, selector: str, body: StageIn, request: Request) -> Response:
    """Move the version to ``stage``; an illegal move is 409 naming both stages."""
    catalog = services_of(request).catalog
    moved = catalog.transition_stage(
        ref_of(name, selector),
        body.stage,
        comment=body.comment,
        archive_others=body.archive_others,
    )
    return respond(moved)


@router.get(
    "/models/{name}/versions/{selector}/stages",
    response_model=list[dict[str, Any]],
    **guard(Permission.READ),
)
def stage_history(name: str, selector: str, request: Request) -> Response:
    return respond(services_of(request).catalog.stage_history(ref_of(name, selector)))


@router.put(
    "/models/{name}/aliases/{alias}", response_model=ModelVersion, **guard(Permission.PROMOTE)
)
def set_alias(name: str, alias: str, body: AliasIn, request: Request) -> Response:
    """Point ``alias`` at a version (moving it if it pointed elsewhere)."""
    return respond(services_of(request).catalog.set_alias(name, alias, body.version))


@router.delete(
    "/models/{name}/aliases/{alias}",
    status_code=204,
    response_class=Response,
    **guard(Permission.PROMOTE),
)
def delete_alias(name: str, alias: str, request: Request) -> Response:
    services_of(request).catalog.delete_alias(name, alias)
    return Response(status_code=204)


@router.get("/models/{name}/inventory", response_model=Inventory, **guard(Permission.READ))
def get_inventory(name: str, request: Request) -> Response:
    return respond(services_of(request).inventory.get(name))


class InventoryIn(Body):
    """The model-risk fields to change; a field left out keeps its value. Other fields
    reach the inventory's own check, which names them and lists the known ones."""

    model_config = ConfigDict(extra="allow")

    risk_tier: str | None = None
    business_owner: str | None = None
    validator: str | None = None
    validation_status: str | None = None
    last_validated: str | None = None
    next_validation: str | None = None


@router.patch("/models/{name}/inventory", response_model=Inventory, **guard(Permission.PROMOTE))
def update_inventory(name: str, body: InventoryIn, request: Request) -> Response:
    """Change the given model-risk fields (risk_tier, business_owner, validator,
    validation_status, last_validated, next_validation); the others are kept."""
    changes = body.model_dump(exclude_unset=True)
    return respond(services_of(request).inventory.update(name, **changes))


@router.get("/inventory", response_model=list[Inventory], **guard(Permission.READ))
def search_inventory(
    request: Request,
    risk_tier: str | None = None,
    owner: str | None = None,
    validator: str | None = None,
    status: str | None = None,
    overdue_on: str | None = None,
) -> Response:
    """Models by inventory field; ``overdue_on=2026-11-23`` lists validations due before it."""
    found = services_of(request).inventory.search(
        risk_tier=risk_tier,
        owner=owner,
        validator=validator,
        status=status,
        overdue_on=overdue_on,
        workspace=workspace_of(request),
    )
    return respond(found)


@router.get(
    "/models/{name}/versions/{selector}/card",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}, "application/json": {}}}},
    **guard(Permission.READ),
)
def version_card(name: str, selector: str, request: Request, format: str = "markdown") -> Response:
    """The version's model card as Markdown (default), a self-contained HTML page, or JSON
    (its sections, as the web UI lays them out)."""
    text = services_of(request).cards.card(str(ref_of(name, selector)), format)
    if format == "json":
        return Response(text, media_type="application/json")
    media = "text/html" if format == "html" else "text/markdown"
    return Response(text, media_type=f"{media}; charset=utf-8")


class RetireIn(Body):
    comment: str = ""


@router.post(
    "/models/{name}/versions/{selector}/retire",
    response_model=ModelVersion,
    **guard(Permission.PROMOTE),
)
def retire_version(name: str, selector: str, body: RetireIn, request: Request) -> Response:
    """Retire a version nothing serves and no alias names; its history is kept."""
    retired = services_of(request).retirement.retire_version(
        str(ref_of(name, selector)), comment=body.comment
    )
    return respond(retired)


@router.post(
    "/models/{name}/retire", response_model=list[ModelVersion], **guard(Permission.PROMOTE)
)
def retire_model(name: str, body: RetireIn, request: Request) -> Response:
    """Retire every version of a model (all or none) and refuse new versions of it."""
    retired = services_of(request).retirement.retire_model(name, comment=body.comment)
    return respond(retired)


class ApprovalIn(Body):
    comment: str = ""


class DecisionIn(Body):
    decision: str
    comment: str = ""


class PolicyIn(Body):
    required: int


@router.post("/models/{name}/versions/{selector}/approval-requests", **guard(Permission.REGISTER))
def request_approval(name: str, selector: str, body: ApprovalIn, request: Request) -> Response:
    """Ask reviewers to approve the version (its current package) for production and traffic."""
    status = services_of(request).approvals.request(ref_of(name, selector), comment=body.comment)
    return respond(status.to_dict())


@router.post("/models/{name}/versions/{selector}/approvals", **guard(Permission.APPROVE))
def decide_approval(name: str, selector: str, body: DecisionIn, request: Request) -> Response:
    """Approve or reject (with a comment): never the requester's or the author's own version."""
    approvals = services_of(request).approvals
    if body.decision not in ("approve", "reject"):
        raise InvalidInput(f"decision must be 'approve' or 'reject', got {body.decision!r}")
    act = approvals.approve if body.decision == "approve" else approvals.reject
    status = act(ref_of(name, selector), comment=body.comment)
    return respond(status.to_dict())


@router.get("/models/{name}/versions/{selector}/approvals", **guard(Permission.READ))
def approval_status(name: str, selector: str, request: Request) -> Response:
    return respond(services_of(request).approvals.status(ref_of(name, selector)).to_dict())


@router.get("/policies/approvals", **guard(Permission.READ))
def approval_policy(request: Request) -> Response:
    return respond({"required": services_of(request).approvals.policy(workspace_of(request))})


@router.put("/policies/approvals", **guard(Permission.ADMIN))
def set_approval_policy(body: PolicyIn, request: Request) -> Response:
    """How many approvals a version needs before production or traffic (0: none)."""
    approvals = services_of(request).approvals
    required = approvals.set_policy(body.required, workspace=workspace_of(request))
    return respond({"required": required})
