"""What MLflow's REST tracking API sends and expects: request bodies, records, errors.

The shapes follow MLflow's protocol (``/api/2.0/mlflow/...``) so MLflow's own client
reads our answers unchanged: ids are strings, times are epoch milliseconds, tags and
params are lists of ``{"key", "value"}``, and an error is
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from modelyard.api.wire import Body
from modelyard.domain.models import ModelVersion, RegisteredModel, Stage
from modelyard.domain.runs import Experiment, MetricPoint, Run
from modelyard.errors import InvalidInput

PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
DEFAULT_EXPERIMENT_ID = "0"  # MLflow's default experiment, used when a client names none
DEFAULT_EXPERIMENT = "Default"

# our error kinds as MLflow error codes, with the status MLflow's client expects for each
_CODES = {
    "not_found": ("RESOURCE_DOES_NOT_EXIST", 404),
    "invalid_input": ("INVALID_PARAMETER_VALUE", 400),
    "signature_error": ("INVALID_PARAMETER_VALUE", 400),
    "permission_denied": ("PERMISSION_DENIED", 403),
    "not_authenticated": ("UNAUTHENTICATED", 401),
    "integrity_error": ("INVALID_STATE", 500),
    "storage_unavailable": ("TEMPORARILY_UNAVAILABLE", 507),
    "internal": ("INTERNAL_ERROR", 500),
}


class MlflowErrorOut(BaseModel):
    """The body of every error answer under ``/api/2.0/mlflow``, as MLflow writes it."""

    error_code: str
    message: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": MlflowErrorOut, "description": description}
    for status, description in (
        (400, "Bad input (INVALID_PARAMETER_VALUE) or a name taken (RESOURCE_ALREADY_EXISTS)"),
        (401, "No API key, or one that is unknown, expired or revoked (UNAUTHENTICATED)"),
        (403, "The key's role or workspace does not allow this (PERMISSION_DENIED)"),
        (404, "A named thing does not exist (RESOURCE_DOES_NOT_EXIST)"),
        (507, "A store's disk is full or read-only (TEMPORARILY_UNAVAILABLE)"),
    )
}
"""OpenAPI entries for the error answers every MLflow route may give."""


def is_mlflow_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def mlflow_error(status: int, kind: str, message: str) -> JSONResponse:
    """Our error as MLflow's: a name clash is RESOURCE_ALREADY_EXISTS (400), any other
    conflict (a param changed, a run already ended) INVALID_PARAMETER_VALUE, as MLflow
    answers them."""
    if kind == "conflict":
        code = (
            "RESOURCE_ALREADY_EXISTS" if "already exists" in message else "INVALID_PARAMETER_VALUE"
        )
        return JSONResponse({"error_code": code, "message": message}, status_code=400)
    code, mapped = _CODES.get(kind, ("BAD_REQUEST" if status < 500 else "INTERNAL_ERROR", status))
    return JSONResponse({"error_code": code, "message": message}, status_code=mapped)


# -- request bodies (every field MLflow's protocol defines; others are refused) -------


class KeyValue(Body):
    key: str
    value: str | None = None


class ExperimentCreate(Body):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentSearch(Body):
    max_results: int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int | None = None


class RunCreate(Body):
    experiment_id: str | None = None
    user_id: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_name: str | None = None


class RunUpdate(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class MetricIn(Body):
    key: str
    value: float | str | None = None  # "NaN", "Infinity": how protobuf's JSON writes them
    timestamp: int = 0
    step: int = 0
    run_id: str | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class MetricLog(MetricIn):
    run_uuid: str | None = None


class ParamLog(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    key: str
    value: str | None = None


class BatchLog(Body):
    run_id: str
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class RunSearch(Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class ModelCreate(Body):
    name: str
    tags: list[KeyValue] = Field(default_factory=list)
    description: str | None = None
    deployment_job_id: str | None = None


class ModelSearch(Body):
    filter: str | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class VersionCreate(Body):
    name: str
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class AliasSet(Body):
    name: str
    alias: str
    version: str


class AliasDelete(Body):
    name: str
    alias: str


def run_id_of(run_id: str | None, run_uuid: str | None) -> str:
    """MLflow's clients send ``run_id``, older ones ``run_uuid``."""
    found = run_id or run_uuid
    if not found:
        raise InvalidInput("run_id: a run id is required")
    return found


def metric_value(key: str, value: float | str | None) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)  # float() reads "NaN", "Infinity" and "-Infinity"
    except ValueError:
        raise InvalidInput(f"metric '{key}' value {value!r} is not a number") from None


def pairs(items: list[KeyValue]) -> dict[str, str]:
    return {item.key: item.value or "" for item in items}


# -- records, as MLflow writes them ------------------------------------------------


def _key_values(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value} for key, value in sorted(values.items())]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": "",
        "lifecycle_stage": "active",
        "creation_time": experiment.created_at,
        "last_update_time": experiment.created_at,
        "tags": [{"key": "modelyard.workspace", "value": experiment.workspace}],
    }


def run_json(run: Run) -> dict[str, Any]:
    """A run as MLflow's ``Run``: each metric's latest value (its history is served by
    ``metrics/get-history``); artifacts are logged through modelyard's own SDK."""
    info = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "artifact_uri": f"modelyard:/runs/{run.id}/artifacts",
        "lifecycle_stage": "active",
    }
    metrics = [
        {"key": key, "value": _number(value), "timestamp": run.start_time, "step": 0}
        for key, value in sorted(run.metrics.items())
    ]
    data = {"metrics": metrics, "params": _key_values(run.params), "tags": _key_values(run.tags)}
    return {"info": info, "data": data, "inputs": {}}


def _number(value: float) -> float | str:
    """Protobuf's JSON writes NaN and the infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric_json(point: MetricPoint) -> dict[str, Any]:
    return {
        "key": point.key,
        "value": _number(point.value),
        "timestamp": point.timestamp,
        "step": point.step,
    }


_STAGES = {
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}


def version_json(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.model,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "user_id": version.created_by,
        "current_stage": _STAGES.get(version.stage, "None"),
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id or "",
        "status": "READY",
        "tags": _key_values(version.tags),
        "aliases": sorted(version.aliases),
    }


def model_json(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "tags": _key_values(model.tags),
        "aliases": [
            {"alias": alias, "version": str(number)}
            for alias, number in sorted(model.aliases.items())
        ],
    }
