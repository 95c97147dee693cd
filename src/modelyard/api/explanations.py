"""Explanation routes: an endpoint's answers explained, a version's feature importance,
two versions compared.

- ``POST /endpoints/{name}/explain``: rows (``records`` or ``columns``) explained with
  the version the endpoint would answer them with (or ``version``), or, with ``id``, a
  logged prediction explained with the version that answered it (stored: the same
  answer comes back later);
- ``POST /models/{name}/versions/{selector}/explain``: rows explained with a version;
- ``GET /models/{name}/versions/{selector}/importance``: mean |SHAP| per feature;
- ``GET /models/{name}/compare?a=&b=``: two versions side by side.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.models import ref_of
from modelyard.api.security import guard
from modelyard.api.wire import Body, respond
from modelyard.domain.identity import Permission
from modelyard.errors import InvalidInput
from modelyard.serving.predict import rows_of

router = APIRouter(prefix="/api/v1", tags=["explanations"], responses=ERROR_RESPONSES)


class ExplainIn(Body):
    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None
    id: str | None = None
    version: int | str | None = None
    sticky_key: str | None = None
    top: int | None = None


@router.post("/endpoints/{name}/explain", **guard(Permission.PREDICT))
def explain(name: str, body: ExplainIn, request: Request) -> Response:
    """Explain rows, or the logged prediction ``id`` (stored the first time)."""
    service = services_of(request).explanations
    if body.id is not None:
        if body.records is not None or body.columns is not None or body.version is not None:
            raise InvalidInput("explain either rows or a logged prediction's 'id', not both")
        return respond(service.explain_prediction(name, body.id, top=body.top))
    rows = rows_of(body.model_dump(include={"records", "columns"}, exclude_none=True))
    explanation = service.explain(
        name, rows, version=body.version, sticky_key=body.sticky_key, top=body.top
    )
    return respond(explanation)


class VersionExplainIn(Body):
    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None
    top: int | None = None


@router.post("/models/{name}/versions/{selector}/explain", **guard(Permission.PREDICT))
def explain_version(name: str, selector: str, body: VersionExplainIn, request: Request) -> Response:
    """Explain rows with this version."""
    rows = rows_of(body.model_dump(include={"records", "columns"}, exclude_none=True))
    explanations = services_of(request).explanations
    return respond(explanations.explain_version(ref_of(name, selector), rows, top=body.top))


@router.get("/models/{name}/versions/{selector}/importance", **guard(Permission.READ))
def importance(name: str, selector: str, request: Request) -> Response:
    """The version's global feature importance (mean |SHAP| on its training data)."""
    return respond(services_of(request).importances.get(ref_of(name, selector)))


@router.get("/models/{name}/compare", **guard(Permission.READ))
def compare(name: str, a: int, b: int, request: Request) -> Response:
    """Versions ``a`` and ``b`` of model ``name`` side by side."""
    return respond(services_of(request).comparisons.compare(name, a, b))
