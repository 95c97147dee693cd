"""What every part of the embedded backend shares: the services, the workspace new
resources go to, and the audit trail of embedded writes."""

from __future__ import annotations

from typing import Any

from modelyard.bootstrap import Services
from modelyard.catalog.registry import Catalog
from modelyard.domain.identity import DEFAULT_WORKSPACE, check_workspace_name
from modelyard.tracking.environment import current_user
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

    def _audit(
        self,
        action: str,
        resource: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Every embedded write, as the OS user: the catalog, endpoints, labels,
        monitors, approvals and tracking (runs, batches by key and count, artifacts,
        datasets; never the values)."""
        summary: dict[str, Any] = {"plane": "embedded"}
        if before is not None:
            summary["before"] = before
        if after is not None:
            summary["after"] = after
        self.services.audit.record(
            actor=current_user(),
            action=action,
            resource=resource,
            outcome="ok",
            status=200,
            client="embedded",
            summary=summary,
        )
