"""Routes for experiments: ``/api/v1/experiments``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.errors import ERROR_RESPONSES
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import ExperimentIn, respond
from modelyard.domain.identity import Permission
from modelyard.domain.runs import Experiment, ExperimentSummary

router = APIRouter(prefix="/api/v1", tags=["experiments"], responses=ERROR_RESPONSES)


@router.post("/experiments", status_code=201, response_model=Experiment, **guard(Permission.TRACK))
def create_experiment(body: ExperimentIn, request: Request) -> Response:
    created = services_of(request).tracking.create_experiment(
        body.name, body.description, workspace=workspace_of(request)
    )
    return respond(created, 201)


@router.get("/experiments", response_model=list[Experiment], **guard(Permission.READ))
def list_experiments(request: Request) -> Response:
    return respond(services_of(request).tracking.list_experiments(workspace_of(request)))


@router.get("/experiments/{name}", response_model=Experiment, **guard(Permission.READ))
def get_experiment(name: str, request: Request) -> Response:
    return respond(services_of(request).tracking.get_experiment(name))


@router.get(
    "/experiments/{name}/summary", response_model=ExperimentSummary, **guard(Permission.READ)
)
def experiment_summary(name: str, request: Request) -> Response:
    """The experiment's run count, latest start, and its param, metric and tag keys."""
    return respond(services_of(request).queries.summary(name))
