"""The composition root: the one place that wires real dependencies together."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.artifacts.store import ArtifactStore, open_store
from modelyard.catalog.registry import Catalog, InventoryService
from modelyard.config import Settings
from modelyard.governance.audit import AuditLog
from modelyard.governance.identity import Identity
from modelyard.governance.lineage import Lineage
from modelyard.governance.retirement import Retirement
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.predictlog import PredictionLog
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
    audit: AuditLog
    endpoints: EndpointService
    predictions: PredictionLog
    lineage: Lineage
    inventory: InventoryService
    retirement: Retirement

    def close(self) -> None:
        self.db.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    create_if_empty: bool = True,
    db: Database | None = None,
    artifacts: ArtifactStore | None = None,
) -> Services:
    """Build the services for ``settings`` (default: from the environment).

    The schema must be at head; an empty database is created only when
    ``create_if_empty`` (embedded mode), never upgraded silently.
    """
    settings = settings or Settings.from_env()
    db = db or Database(settings.db_url)
    ensure_current(db, create_if_empty=create_if_empty)
    artifacts = artifacts or open_store(settings.artifact_root)
    catalog = Catalog(db, artifacts)
    endpoints = EndpointService(db, catalog)
    predictions = (
        SqlPredictionLog(db)
        if settings.prediction_log_in_database
        else PredictionLog(settings.predictions_root)
    )
    return Services(
        settings=settings,
        db=db,
        artifacts=artifacts,
        tracking=TrackingService(db, artifacts),
        queries=RunQueries(db),
        datasets=DatasetRegistry(db, artifacts),
        catalog=catalog,
        identity=Identity(db),
        audit=AuditLog(db),
        endpoints=endpoints,
        predictions=predictions,
        lineage=Lineage(db, predictions),
        inventory=InventoryService(db),
        retirement=Retirement(db, catalog, endpoints),
    )
