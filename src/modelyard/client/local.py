"""The embedded backend: the SDK calling the services in this process.

Its methods live in one module per area of ``Backend``: ``local_tracking``,
``local_catalog``, ``local_endpoints``, ``local_governance``, ``local_admin``,
``local_monitoring`` and ``local_batch``,
over the shared state and audit trail in ``local_base``.
"""

from __future__ import annotations

from modelyard.bootstrap import Services
from modelyard.client.local_admin import LocalAdmin
from modelyard.client.local_batch import LocalBatch
from modelyard.client.local_catalog import LocalCatalog
from modelyard.client.local_endpoints import LocalEndpoints
from modelyard.client.local_explanations import LocalExplanations
from modelyard.client.local_governance import LocalGovernance
from modelyard.client.local_monitoring import LocalMonitoring
from modelyard.client.local_tracking import LocalTracking


class LocalBackend(
    LocalTracking,
    LocalCatalog,
    LocalEndpoints,
    LocalGovernance,
    LocalAdmin,
    LocalMonitoring,
    LocalBatch,
    LocalExplanations,
):
    """``Backend`` over in-process services (SQLite or PostgreSQL, local or fsspec files)."""

    def __init__(self, services: Services, *, workspace: str | None = None) -> None:
        self.services = services
        self.location = f"{services.db.describe()} + {services.artifacts.root}"
        self._tracking = services.tracking
        self._catalog = services.catalog
        # embedded mode acts as the OS user, who owns the store: without a workspace it
        # lists every workspace's resources and creates in ``default``
        self.workspace = workspace
        self._checked_workspace = workspace is None

    def child_environment(self) -> dict[str, str]:
        """The variables that open this store in another process (embedded)."""
        settings = self.services.settings
        found = {
            "MODELYARD_HOME": str(settings.home),
            "MODELYARD_DB_URL": settings.db_url,
            "MODELYARD_ARTIFACTS": settings.artifact_root,
        }
        if settings.prediction_root:
            found["MODELYARD_PREDICTIONS"] = settings.prediction_root
        if self.workspace:
            found["MODELYARD_WORKSPACE"] = self.workspace
        return found

    def close(self) -> None:
        self.services.close()
