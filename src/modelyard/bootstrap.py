"""The composition root: the one place that wires real dependencies together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from modelyard.artifacts.store import ArtifactStore, open_store
from modelyard.catalog.inventory import InventoryService
from modelyard.catalog.registry import Catalog
from modelyard.catalog.versions import VersionReader
from modelyard.config import Settings
from modelyard.domain.models import ModelRef
from modelyard.governance.approvals import ApprovalService
from modelyard.governance.audit import AuditLog
from modelyard.governance.cards import ModelCards
from modelyard.governance.comparison import VersionComparison
from modelyard.governance.identity import Identity
from modelyard.governance.lineage import Lineage
from modelyard.governance.retirement import Retirement
from modelyard.governance.secrets import SecretBox, SecretService
from modelyard.governance.signing import SigningService
from modelyard.governance.workspaces import Workspaces
from modelyard.monitoring.alerts import AlertService
from modelyard.monitoring.importance import ImportanceService
from modelyard.monitoring.monitors import MonitorService
from modelyard.monitoring.reference import ReferenceService
from modelyard.monitoring.runner import Runner
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.explainers import Limits
from modelyard.serving.explanations import Explainers, ExplanationService
from modelyard.serving.feedback import Feedback
from modelyard.serving.models import ModelLoader
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.retention import Retention
from modelyard.serving.sqllog import SqlPredictionLog
from modelyard.store.database import Database
from modelyard.store.migrate import ensure_current
from modelyard.tracking.dataset_registry import DatasetRegistry
from modelyard.tracking.queries import RunQueries
from modelyard.tracking.runs import TrackingService


@dataclass(frozen=True)
class Services:
    """Every service of a yard, sharing one database and one artifact store."""

    settings: Settings
    db: Database
    artifacts: ArtifactStore
    tracking: TrackingService
    queries: RunQueries
    datasets: DatasetRegistry
    catalog: Catalog
    identity: Identity
    workspaces: Workspaces
    audit: AuditLog
    endpoints: EndpointService
    predictions: PredictionLog
    feedback: Feedback
    retention: Retention
    lineage: Lineage
    inventory: InventoryService
    retirement: Retirement
    references: ReferenceService
    alerts: AlertService
    monitors: MonitorService
    approvals: ApprovalService
    secrets: SecretService
    signing: SigningService
    cards: ModelCards
    importances: ImportanceService
    explanations: ExplanationService
    comparisons: VersionComparison

    def close(self) -> None:
        self.importances.wait(timeout=60)  # importances being computed in the background
        self.db.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    create_if_empty: bool = True,
    db: Database | None = None,
    artifacts: ArtifactStore | None = None,
    secret_box: SecretBox | None = None,
) -> Services:
    """Build the services for ``settings`` (default: from the environment).

    The schema must be at head; an empty database is created only when
    ``create_if_empty`` (embedded mode), never upgraded silently.
    """
    settings = settings or Settings.from_env()
    db = db or Database(settings.db_url)
    ensure_current(db, create_if_empty=create_if_empty)
    secret_box = secret_box or _secret_box(settings, embedded=create_if_empty)
    artifacts = artifacts or open_store(settings.artifact_root)
    audit = AuditLog(db)
    db.on_commit("audit", audit.on_changes)  # every service change, in its own transaction
    # the approval gate runs inside the catalog's and the endpoints' write transactions;
    # it reads versions on their connection, so it needs no catalog of its own
    versions = VersionReader()
    approvals = ApprovalService(db, versions)
    signing = SigningService(db, secret_box, require_signed=settings.require_signed_packages)

    def gate(conn: Connection, ref: ModelRef, purpose: str) -> None:
        approvals.check(conn, ref, purpose)
        signing.check(conn, ref, purpose)  # MODELYARD_REQUIRE_SIGNED_PACKAGES

    catalog = Catalog(db, artifacts, approval_gate=gate, signer=signing.sign_version)
    endpoints = EndpointService(db, versions, approval_gate=gate)
    predictions = (
        SqlPredictionLog(db)
        if settings.prediction_log_in_database
        else PredictionLog(settings.predictions_root)
    )
    datasets = DatasetRegistry(db, artifacts)
    secrets = SecretService(db, secret_box)
    references = ReferenceService(db, artifacts, catalog, datasets, settings.package_cache)
    alerts = AlertService(db, secrets)
    loader = ModelLoader(
        catalog, artifacts, settings.package_cache, check_signature=signing.check_loadable
    )
    importances = ImportanceService(db, catalog, references, loader)
    runner = Runner(
        db,
        predictions,
        references,
        alerts,
        skew_rows=references.training_rows,
        importance=importances.shares,
    )
    monitors = MonitorService(
        db, predictions, references, alerts, runner, endpoint_exists=endpoints.exists
    )
    tracking = TrackingService(db, artifacts)
    inventory = InventoryService(db)
    explainers = Explainers(references.sample, Limits.from_env())
    catalog.subscribe(references.on_event)
    catalog.subscribe(importances.on_event)  # after the reference profile, in a thread
    endpoints.subscribe(monitors.on_event)
    return Services(
        settings=settings,
        db=db,
        artifacts=artifacts,
        tracking=tracking,
        queries=RunQueries(db),
        datasets=datasets,
        catalog=catalog,
        identity=Identity(db),
        workspaces=Workspaces(db),
        audit=audit,
        endpoints=endpoints,
        predictions=predictions,
        feedback=Feedback(db, endpoints, predictions),
        retention=Retention(db, endpoints, predictions),
        lineage=Lineage(db, predictions),
        inventory=inventory,
        retirement=Retirement(db, catalog, endpoints),
        secrets=secrets,
        signing=signing,
        references=references,
        alerts=alerts,
        monitors=monitors,
        approvals=approvals,
        cards=ModelCards(
            catalog,
            inventory,
            tracking,
            datasets,
            endpoints,
            approvals,
            references,
            monitors,
            alerts,
            importances,
        ),
        importances=importances,
        explanations=ExplanationService(db, catalog, endpoints, loader, predictions, explainers),
        comparisons=VersionComparison(catalog, tracking, datasets, references, importances),
    )


def _secret_box(settings: Settings, *, embedded: bool) -> SecretBox:
    # Only embedded mode creates its own store, and only it may keep the secret key in a
    # file beside it; a server must be given MODELYARD_SECRET_KEY.
    key_file = settings.home / "secret.key" if embedded else None
    return SecretBox(settings.secret_key, key_file=key_file)
