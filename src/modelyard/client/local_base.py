"""What every part of the embedded backend shares: the services and the workspace new
resources go to (the services record every change, as the OS user)."""

from __future__ import annotations

from modelyard.bootstrap import Services
from modelyard.catalog.registry import Catalog
from modelyard.domain.identity import DEFAULT_WORKSPACE, check_workspace_name
from modelyard.tracking.runs import TrackingService


class LocalBase:
    """The state ``LocalBackend.__init__`` sets, and the helpers its parts use.

    ``LocalTracking``, ``LocalCatalog``, ``LocalEndpoints``, ``LocalGovernance`` and
    ``LocalMonitoring`` build on it; ``LocalBackend`` combines them.
    """

    services: Services
    workspace: str | None
    _tracking: TrackingService
    _catalog: Catalog
    _checked_workspace: bool

    @property
    def _home(self) -> str:
        """The workspace new resources go to (it must exist)."""
        if not self._checked_workspace:
            with self.services.db.read() as conn:
                self.services.workspaces.require(conn, check_workspace_name(self.workspace or ""))
            self._checked_workspace = True
        return self.workspace or DEFAULT_WORKSPACE
