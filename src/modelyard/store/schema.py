"""The metadata schema, as SQLAlchemy Core tables.

Times are integer epoch milliseconds. ``latest_metrics`` keeps each run's latest
value per metric key (highest step, then newest timestamp) so search and sort on
metrics never scan the full history in ``metrics``. Changes go through Alembic
migrations in ``store/migrations``; never edit a released migration.
"""

from __future__ import annotations

import math

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class MetricValue(TypeDecorator[float]):
    """A float that may be NaN: SQLite cannot store NaN, so it is kept as NULL there."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> float | None:
        if value is not None and math.isnan(value) and dialect.name == "sqlite":
            return None
        return value

    def process_result_value(self, value: float | None, dialect: Dialect) -> float:
        return math.nan if value is None else value


RUN_ID = String(32)
KEY = String(250)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("workspace", String(128), nullable=False, default="default", server_default="default"),
    Index("ix_experiments_workspace", "workspace"),
)

environments = Table(
    "environments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", RUN_ID, primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("user", String(250), nullable=False, default=""),
    Column("error", Text),
    Column("environment_id", String(64), ForeignKey("environments.id")),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "run_tags",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key_value", "key", "value"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("run_id", RUN_ID, ForeignKey("runs.id"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("value", MetricValue, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", MetricValue, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("uri", Text),
    Column("stored", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("workspace", String(128), nullable=False, default="default", server_default="default"),
    UniqueConstraint("name", "fingerprint"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id"), primary_key=True),
    Column("dataset_id", String(32), ForeignKey("datasets.id"), primary_key=True),
    Column("role", String(32), primary_key=True),
    Index("ix_run_datasets_dataset", "dataset_id"),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger),  # a retired model takes no new versions
    Column("workspace", String(128), nullable=False, default="default", server_default="default"),
    Index("ix_models_workspace", "workspace"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_model_tags_key_value", "key", "value"),  # migration 0018: tag searches
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("run_id", RUN_ID, ForeignKey("runs.id")),
    Column("source", Text, nullable=False),
    Column("package_digest", String(64), nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature", JSON),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
    Index("ix_model_versions_run", "run_id"),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_version_tags_key_value", "key", "value"),  # migration 0018: tag searches
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("from_stage", String(16), nullable=False),
    Column("to_stage", String(16), nullable=False),
    Column("actor", String(250), nullable=False, default=""),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("role", String(16), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(250), nullable=False, default=""),
    Column("secret_hash", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    # NULL: the user's full role; "endpoint:<name>": may only call predict on that endpoint
    Column("scope", String(250)),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("key_id", String(16)),
    Column("action", String(200), nullable=False),
    Column("resource", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("client", String(100), nullable=False, default=""),
    Column("summary", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_actor_at", "actor", "at"),
    Index("ix_audit_events_action_at", "action", "at"),
    Index("ix_audit_events_at", "at"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("revision", Integer, nullable=False),
    Column("retention_days", Integer),  # NULL: keep the prediction log forever
    Column("subject_column", String(128)),  # the input field erasure requests match
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("workspace", String(128), nullable=False, default="default", server_default="default"),
    Index("ix_endpoints_workspace", "workspace"),
)

endpoint_revisions = Table(
    "endpoint_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("endpoints.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("changes", JSON, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("endpoint_id", "revision"),
)

# the prediction log when MODELYARD_PREDICTIONS=database (see serving/sqllog.py)
predictions = Table(
    "predictions",
    metadata,
    Column("endpoint", String(63), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("role", String(8), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text),
    Column("scores", Text),
    Column("error", Text),
    Index("ix_predictions_endpoint_ts", "endpoint", "ts"),
)

prediction_labels = Table(
    "prediction_labels",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(63), nullable=False),
    Column("prediction_id", String(40), nullable=False),
    Column("label", Text, nullable=False),
    Column("labelled_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False, default=""),
    Index("ix_prediction_labels_endpoint_prediction_id", "endpoint", "prediction_id"),
)

# sensitivity classes of a dataset name (every content version of it), e.g. ["pii"]
dataset_classes = Table(
    "dataset_classes",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("tags", JSON, nullable=False),
    Column("updated_by", String(250), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
)

# model-risk inventory fields, one row per registered model
model_inventory = Table(
    "model_inventory",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("risk_tier", String(16)),
    Column("business_owner", String(250), nullable=False, default=""),
    Column("validator", String(250), nullable=False, default=""),
    Column("validation_status", String(16), nullable=False, default="not_validated"),
    Column("last_validated", String(10)),
    Column("next_validation", String(10)),
    Column("updated_by", String(250), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_model_inventory_next_validation", "next_validation"),
)

# -- monitoring ----------------------------------------------------------------

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("dataset_id", String(32)),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("profile", JSON),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
)

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("endpoint", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_by", String(250), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_monitors_endpoint", "endpoint"),
)

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(250), nullable=False, default=""),
    Column("lease_until", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("rows", Integer, nullable=False, default=0),
    Column("labelled", Integer, nullable=False, default=0),
    Column("severity", String(16), nullable=False, default="ok"),
    Column("summary", JSON),
    Column("error", Text, nullable=False, default=""),
    Column("computed_at", BigInteger),
    UniqueConstraint("monitor_id", "start"),
    Index("ix_monitor_windows_status_lease", "status", "lease_until"),
)

monitor_turns = Table(  # migration 0022
    "monitor_turns",
    metadata,
    # when the monitor is next due, for every worker: the one that moves it forward
    # (``windows.take_turn``) runs the monitor this time, the others skip it
    Column("monitor_id", Integer, ForeignKey("monitors.id"), primary_key=True),
    Column("next_run", BigInteger, nullable=False),
    Column("taken_by", String(250), nullable=False),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", Integer, ForeignKey("monitor_windows.id"), nullable=False),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("check", String(64), nullable=False),
    Column("column", String(250), nullable=False, default=""),
    Column("metric", String(64), nullable=False),
    Column("version", String(260), nullable=False, default=""),
    Column("value", Float),
    Column("severity", String(16), nullable=False),
    Column("details", JSON),
    Index("ix_monitor_results_series", "monitor_id", "check", "window_start"),
    Index("ix_monitor_results_window", "window_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("key", String(320), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("evidence", JSON),
    Column("opened_at", BigInteger, nullable=False),
    Column("opened_window", BigInteger, nullable=False),
    Column("last_window", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Column("notified_at", BigInteger),
    # acknowledged by hand (migration 0016): someone is on it; the alert still fires and
    # resolves by itself
    Column("acknowledged_at", BigInteger),
    Column("acknowledged_by", String(250)),
    Column("acknowledge_comment", Text),
    Index("ix_alerts_monitor_key_status", "monitor_id", "key", "status"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(32), ForeignKey("alerts.id"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("channel", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("at", BigInteger, nullable=False),
    Index("ix_alert_deliveries_alert", "alert_id"),
)

retraining_requests = Table(
    "retraining_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("alert_id", String(32), ForeignKey("alerts.id")),
    Column("model", String(250), nullable=False),
    Column("version", Integer),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("evidence", JSON),
    Column("action", JSON),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_retraining_requests_model", "model", "status"),
)

# -- secrets -------------------------------------------------------------------

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("workspace", String(128), nullable=False, default="default", server_default="default"),
    Column("ciphertext", Text, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_by", String(250), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
)

# -- package signing -------------------------------------------------------------

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("public_key", String(64), nullable=False),
    Column("private_ciphertext", Text, nullable=False),
    Column("secret_key_id", String(16), nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

version_signatures = Table(
    "version_signatures",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key_id", String(16), ForeignKey("signing_keys.key_id"), nullable=False),
    Column("package_digest", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("signed_by", String(250), nullable=False),
    Column("signed_at", BigInteger, nullable=False),
)

# -- staged package uploads ------------------------------------------------------

# who staged an upload and where (catalog/uploads.py); version_id once it is registered
package_uploads = Table(
    "package_uploads",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("workspace", String(128), nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id")),
)

# -- approvals -------------------------------------------------------------------

approval_policies = Table(
    "approval_policies",
    metadata,
    Column("workspace", String(128), primary_key=True),
    Column("required", Integer, nullable=False),
    Column("updated_by", String(250), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("actor", String(250), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("at", BigInteger, nullable=False),
    Index("ix_approvals_version", "model_id", "version"),
)

# -- batch scoring -----------------------------------------------------------------

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workspace", String(128), nullable=False, default="default"),
    Column("ref", String(250), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("package_digest", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_uri", Text, nullable=False),
    Column("output_uri", Text, nullable=False),
    Column("output_format", String(16), nullable=False),
    Column("keep", JSON, nullable=False),
    Column("workers", Integer, nullable=False),
    # local or ray (migration 0021); NULL for jobs recorded before it
    Column("engine", String(16)),
    Column("log_to", String(128)),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("rows_in", BigInteger),
    Column("rows_out", BigInteger),
    Column("input_fingerprint", String(64)),
    Column("output_fingerprint", String(64)),
    Column("input_dataset_id", String(32), ForeignKey("datasets.id")),
    Column("output_dataset_id", String(32), ForeignKey("datasets.id")),
    Column("error", Text),
    # renewed while the job's process scores (migration 0018); stale: shown abandoned
    Column("heartbeat_at", BigInteger),
    Index("ix_batch_jobs_workspace", "workspace", "created_at"),
    Index("ix_batch_jobs_version", "model_id", "version"),
    Index("ix_batch_jobs_input", "input_dataset_id"),
    Index("ix_batch_jobs_output", "output_dataset_id"),
)

# explanations (migration 0017): a logged prediction's explanation, kept so the same
# answer comes back later, and a version's global feature importance
prediction_explanations = Table(
    "prediction_explanations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(128), nullable=False),
    Column("prediction_id", String(64), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("package_digest", String(64), nullable=False),
    Column("explanation", JSON, nullable=False),
    # erasure and retention reach stored explanations too: the explained input (matched
    # on the endpoint's subject column) and when the prediction was made
    Column("input", JSON),
    Column("predicted_at", BigInteger),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("endpoint", "prediction_id"),
)

version_importances = Table(
    "version_importances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(32), nullable=False, default=""),
    Column("rows", Integer, nullable=False, default=0),
    Column("importance", JSON),
    Column("error", Text, nullable=False, default=""),
    Column("created_by", String(250), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
)
