"""MLflow's REST tracking API over modelyard's services: ``/api/2.0/mlflow/...``.

Code written for MLflow keeps working against ``modelyard server``::

    os.environ["MLFLOW_TRACKING_TOKEN"] = "my_..."      # a modelyard API key
    mlflow.set_tracking_uri("http://yard.internal:8700")
    mlflow.set_experiment("churn")
    with mlflow.start_run():
        mlflow.log_param("C", 0.5)
        mlflow.log_metric("auc", 0.91, step=3)

Each route authenticates the bearer key (``guard``), acts as its user and writes through
the same services as ``/api/v1``, so every change is audited as that user. A resource a
request names by id (a run, an experiment, a model) is authorised in the workspace that
owns it; new experiments and models go to the key's user's workspace. Ids are ours as
strings (experiment ``"0"`` is MLflow's default, the experiment named ``Default``).
Served: experiments create/get/get-by-name/search, runs create/get/update/search,
log-metric, log-parameter, log-batch, set-tag, metric history, registered models
create/get/search, model versions create/get, aliases. Not served: artifacts (log them
with modelyard's SDK), deletions and renames.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from modelyard.api.dependencies import services_of
from modelyard.api.mlflow_wire import (
    DEFAULT_EXPERIMENT,
    DEFAULT_EXPERIMENT_ID,
    ERROR_RESPONSES,
    AliasDelete,
    AliasSet,
    BatchLog,
    ExperimentCreate,
    ExperimentSearch,
    MetricLog,
    ModelCreate,
    ModelSearch,
    ParamLog,
    RunCreate,
    RunSearch,
    RunUpdate,
    VersionCreate,
    experiment_json,
    metric_json,
    metric_value,
    model_json,
    pairs,
    run_id_of,
    run_json,
    version_json,
)
from modelyard.api.security import guard, workspace_of
from modelyard.api.wire import respond
from modelyard.domain.identity import Permission, Principal
from modelyard.domain.models import ModelRef
from modelyard.domain.runs import Experiment, MetricPoint, RunStatus
from modelyard.errors import InvalidInput, NotFound, PermissionDenied
from modelyard.tracking.queries import MAX_PAGE
from modelyard.tracking.runs import run_artifact_key

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"], responses=ERROR_RESPONSES)

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}
_CLAUSE = re.compile(
    r"^\s*(name|tags?\.(`[^`]+`|[\w.\-/:]+))\s*(=|!=|i?like)\s*(['\"])(.*)\4\s*$",
    re.IGNORECASE,
)


def _act_on(request: Request, kind: str, key: str, permission: Permission) -> str:
    """Authorise the request in the workspace that owns ``kind`` ``key`` (MLflow names
    resources in bodies and query strings, which the route guard does not read)."""
    owner = services_of(request).workspaces.owner(kind, key)
    if owner is None:
        raise NotFound(f"{kind} '{key}' does not exist")
    principal: Principal = request.state.principal.acting_in(owner)
    request.state.principal, request.state.workspace = principal, owner
    if not principal.can(permission):
        raise PermissionDenied(
            f"user '{principal.user}' has the {principal.role.value} role in workspace "
            f"'{owner}', which does not allow '{permission.value}'"
        )
    return owner


def _experiment(request: Request, experiment_id: str, permission: Permission) -> Experiment:
    tracking = services_of(request).tracking
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return tracking.ensure_experiment(DEFAULT_EXPERIMENT, workspace_of(request))
    if not experiment_id.isdigit():
        raise NotFound(f"experiment '{experiment_id}' does not exist")
    found = tracking.experiment_by_id(int(experiment_id))
    _act_on(request, "experiment", found.name, permission)
    return found


# -- experiments -------------------------------------------------------------


@router.post("/experiments/create", **guard(Permission.TRACK))
def create_experiment(body: ExperimentCreate, request: Request) -> Response:
    """Create an experiment in the key's workspace (``artifact_location`` and tags are
    not kept: the yard stores artifacts itself)."""
    created = services_of(request).tracking.create_experiment(
        body.name, workspace=workspace_of(request)
    )
    return respond({"experiment_id": str(created.id)})


@router.get("/experiments/get", **guard(Permission.READ))
def get_experiment(request: Request, experiment_id: str) -> Response:
    found = _experiment(request, experiment_id, Permission.READ)
    return respond({"experiment": experiment_json(found)})


@router.get("/experiments/get-by-name", **guard(Permission.READ))
def get_experiment_by_name(request: Request, experiment_name: str) -> Response:
    _act_on(request, "experiment", experiment_name, Permission.READ)
    found = services_of(request).tracking.get_experiment(experiment_name)
    return respond({"experiment": experiment_json(found)})


@router.post("/experiments/search", **guard(Permission.READ))
def search_experiments(body: ExperimentSearch, request: Request) -> Response:
    """The experiments of the key's workspace (a ``name`` filter is applied)."""
    found = services_of(request).tracking.list_experiments(workspace_of(request))
    if body.filter:
        found = [e for e in found if _matches(body.filter, e.name, {})]
    return respond({"experiments": [experiment_json(e) for e in found]})


def _matches(filter: str, name: str, tags: dict[str, str]) -> bool:
    """Whether a model or experiment passes an MLflow search filter of ``and``-ed
    clauses on ``name`` or a tag (``name LIKE 'churn%' AND tags.`team` != 'x'``)."""
    clauses = re.split(r"\s+and\s+", filter.strip(), flags=re.IGNORECASE)
    return all(_clause_holds(clause, name, tags) for clause in clauses)


def _clause_holds(clause: str, name: str, tags: dict[str, str]) -> bool:
    match = _CLAUSE.match(clause)
    if match is None:
        raise InvalidInput(
            f"filter clause {clause!r}: only name or tags.KEY compared with =, !=, LIKE or "
            "ILIKE to a quoted value is served"
        )
    field, tag_key, op, _, value = match.groups()
    subject = name if field.lower() == "name" else tags.get(tag_key.strip("`"))
    op = op.lower()
    if subject is None:
        return op == "!="
    if op in ("=", "!="):
        return (subject == value) == (op == "=")
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
    flags = re.IGNORECASE if op == "ilike" else 0
    return re.fullmatch(regex, subject, flags) is not None


# -- runs --------------------------------------------------------------------


@router.post("/runs/create", **guard(Permission.TRACK))
def create_run(body: RunCreate, request: Request) -> Response:
    """Start a run; its user is the key's (``user_id`` is not taken) and its start time
    the server's."""
    experiment = _experiment(request, body.experiment_id or DEFAULT_EXPERIMENT_ID, Permission.TRACK)
    tags = pairs(body.tags)
    name = body.run_name or tags.get("mlflow.runName")
    run = services_of(request).tracking.create_run(
        experiment.name, name=name, tags=tags, workspace=experiment.workspace
    )
    return respond({"run": run_json(run)})


@router.get("/runs/get", **guard(Permission.READ))
def get_run(request: Request, run_id: str | None = None, run_uuid: str | None = None) -> Response:
    found = run_id_of(run_id, run_uuid)
    _act_on(request, "run", found, Permission.READ)
    return respond({"run": run_json(services_of(request).tracking.get_run(found))})


@router.post("/runs/update", **guard(Permission.TRACK))
def update_run(body: RunUpdate, request: Request) -> Response:
    """End a run (``status`` FINISHED, FAILED or KILLED); its end time is the server's."""
    run_id = run_id_of(body.run_id, body.run_uuid)
    _act_on(request, "run", run_id, Permission.TRACK)
    tracking = services_of(request).tracking
    run = tracking.get_run(run_id)
    status = (body.status or run.status.value).upper()
    if status in _TERMINAL and run.status is RunStatus.RUNNING:
        run = tracking.finish_run(run_id, status)
    elif status != run.status.value:
        raise InvalidInput(f"run '{run_id}' is {run.status.value}; it cannot become {status}")
    if body.run_name and body.run_name != run.name:
        tracking.set_tags(run_id, {"mlflow.runName": body.run_name})
    return respond({"run_info": run_json(run)["info"]})


@router.post("/runs/log-metric", **guard(Permission.TRACK))
def log_metric(body: MetricLog, request: Request) -> Response:
    run_id = run_id_of(body.run_id, body.run_uuid)
    _act_on(request, "run", run_id, Permission.TRACK)
    point = MetricPoint(body.key, metric_value(body.key, body.value), body.step, body.timestamp)
    services_of(request).tracking.log_batch(run_id, metrics=[point])
    return respond({})


@router.post("/runs/log-parameter", **guard(Permission.TRACK))
def log_param(body: ParamLog, request: Request) -> Response:
    run_id = run_id_of(body.run_id, body.run_uuid)
    _act_on(request, "run", run_id, Permission.TRACK)
    services_of(request).tracking.log_batch(run_id, params={body.key: body.value or ""})
    return respond({})


@router.post("/runs/set-tag", **guard(Permission.TRACK))
def set_tag(body: ParamLog, request: Request) -> Response:
    """Set a tag, also on an ended run (as MLflow allows)."""
    run_id = run_id_of(body.run_id, body.run_uuid)
    _act_on(request, "run", run_id, Permission.TRACK)
    services_of(request).tracking.set_tags(run_id, {body.key: body.value or ""})
    return respond({})


@router.post("/runs/log-batch", **guard(Permission.TRACK))
def log_batch(body: BatchLog, request: Request) -> Response:
    """Metrics, params and tags in one transaction (the run must be running)."""
    _act_on(request, "run", body.run_id, Permission.TRACK)
    points = [
        MetricPoint(m.key, metric_value(m.key, m.value), m.step, m.timestamp) for m in body.metrics
    ]
    services_of(request).tracking.log_batch(
        body.run_id, metrics=points, params=pairs(body.params), tags=pairs(body.tags)
    )
    return respond({})


@router.post("/runs/search", **guard(Permission.READ))
def search_runs(body: RunSearch, request: Request) -> Response:
    """Runs of the named experiments, in the filter language MLflow and modelyard share
    (``metrics.rmse < 1 and params.model = 'rf'``); ``page_token`` is our cursor."""
    ids = [_experiment(request, e, Permission.READ).id for e in body.experiment_ids] or None
    if ids is None:
        ids = services_of(request).tracking.experiment_ids(None, workspace_of(request))
    page = services_of(request).queries.search(
        ids,
        body.filter or None,
        body.order_by or None,
        min(body.max_results or 1000, MAX_PAGE),
        body.page_token or None,
    )
    answer: dict[str, Any] = {"runs": [run_json(run) for run in page.runs]}
    if page.next_cursor:
        answer["next_page_token"] = page.next_cursor
    return respond(answer)


@router.get("/metrics/get-history", **guard(Permission.READ))
def metric_history(
    request: Request,
    metric_key: str,
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> Response:
    """Every logged point of a metric, in step order (one page)."""
    found = run_id_of(run_id, run_uuid)
    _act_on(request, "run", found, Permission.READ)
    points = services_of(request).tracking.metric_history(found, metric_key)
    return respond({"metrics": [metric_json(point) for point in points]})


# -- registered models, versions and aliases ----------------------------------


@router.post("/registered-models/create", **guard(Permission.REGISTER))
def create_model(body: ModelCreate, request: Request) -> Response:
    created = services_of(request).catalog.create_model(
        body.name, body.description or "", pairs(body.tags), workspace=workspace_of(request)
    )
    return respond({"registered_model": model_json(created)})


@router.get("/registered-models/get", **guard(Permission.READ))
def get_model(request: Request, name: str) -> Response:
    _act_on(request, "model", name, Permission.READ)
    return respond({"registered_model": model_json(services_of(request).catalog.get_model(name))})


def _search_models(request: Request, filter: str | None) -> Response:
    found = services_of(request).catalog.list_models(workspace=workspace_of(request))
    if filter:
        found = [m for m in found if _matches(filter, m.name, m.tags)]
    return respond({"registered_models": [model_json(m) for m in found]})


@router.post("/registered-models/search", **guard(Permission.READ))
def search_models(body: ModelSearch, request: Request) -> Response:
    """The models of the key's workspace (a ``name`` filter is applied)."""
    return _search_models(request, body.filter)


@router.get("/registered-models/search", **guard(Permission.READ))
def search_models_by_query(
    request: Request,
    filter: str | None = None,
    max_results: int | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> Response:
    """``POST registered-models/search`` as a query string (how MLflow's client sends it)."""
    return _search_models(request, filter)


def _source_key(source: str) -> str:
    """A package's storage prefix from MLflow's ``runs:/<run id>/<path>`` or from the
    ``artifact_uri`` our runs report (``modelyard:/runs/<id>/artifacts/<path>``)."""
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        if run_id and path:
            return run_artifact_key(run_id, path)
    if source.startswith("modelyard:/"):
        return source[len("modelyard:/") :].lstrip("/")
    raise InvalidInput(
        f"model version source {source!r} is not a modelyard package: use runs:/<run id>/model "
        "for a model logged with modelyard's SDK"
    )


@router.post("/model-versions/create", **guard(Permission.REGISTER))
def create_version(body: VersionCreate, request: Request) -> Response:
    """Register the modelyard package at ``source`` (``runs:/<run id>/model``) as the next
    version; it is hash-checked like any registration."""
    if body.run_id:
        _act_on(request, "run", body.run_id, Permission.REGISTER)
    version = services_of(request).catalog.register_version(
        body.name,
        source=_source_key(body.source),
        run_id=body.run_id or None,
        description=body.description or "",
        tags=pairs(body.tags),
        workspace=workspace_of(request),
    )
    return respond({"model_version": version_json(version)})


@router.get("/model-versions/get", **guard(Permission.READ))
def get_version(request: Request, name: str, version: str) -> Response:
    _act_on(request, "model", name, Permission.READ)
    number = _number(version)
    found = services_of(request).catalog.get_version(ModelRef(name, version=number))
    return respond({"model_version": version_json(found)})


def _number(version: str) -> int:
    if not version.isdigit():
        raise InvalidInput(f"version {version!r} is not a version number")
    return int(version)


@router.post("/registered-models/alias", **guard(Permission.PROMOTE))
def set_alias(body: AliasSet, request: Request) -> Response:
    _act_on(request, "model", body.name, Permission.PROMOTE)
    services_of(request).catalog.set_alias(body.name, body.alias, _number(body.version))
    return respond({})


@router.delete("/registered-models/alias", **guard(Permission.PROMOTE))
def delete_alias(body: AliasDelete, request: Request) -> Response:
    _act_on(request, "model", body.name, Permission.PROMOTE)
    services_of(request).catalog.delete_alias(body.name, body.alias)
    return respond({})


@router.get("/registered-models/alias", **guard(Permission.READ))
def get_version_by_alias(request: Request, name: str, alias: str) -> Response:
    _act_on(request, "model", name, Permission.READ)
    found = services_of(request).catalog.get_version(ModelRef(name, alias=alias))
    return respond({"model_version": version_json(found)})
