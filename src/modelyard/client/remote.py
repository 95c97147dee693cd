"""The remote backend: the SDK talking to ``modelyard server`` over HTTP.

It raises the same error classes as the embedded backend: the server sends the
error's kind and message, and the backend rebuilds the exception::

    yard = modelyard.connect("http://127.0.0.1:8700", api_key="...")
    yard.runs.get("f00d")   # NotFound: run 'f00d' does not exist -- as embedded

One ``httpx.Client`` is kept per backend (keep-alive connections, a timeout);
a server that cannot be reached is a ``ModelyardError`` naming its URL.

Its methods live in one module per area of ``Backend``: ``remote_tracking``,
``remote_catalog``, ``remote_endpoints``, ``remote_governance``, ``remote_admin``,
``remote_monitoring`` and ``remote_batch``,
over the shared client and request helpers in ``remote_base``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from modelyard.client.remote_admin import RemoteAdmin
from modelyard.client.remote_batch import RemoteBatch
from modelyard.client.remote_catalog import RemoteCatalog
from modelyard.client.remote_endpoints import RemoteEndpoints
from modelyard.client.remote_explanations import RemoteExplanations
from modelyard.client.remote_governance import RemoteGovernance
from modelyard.client.remote_monitoring import RemoteMonitoring
from modelyard.client.remote_tracking import RemoteTracking
from modelyard.config import client_home
from modelyard.domain.identity import check_workspace_name


class RemoteBackend(
    RemoteTracking,
    RemoteCatalog,
    RemoteEndpoints,
    RemoteGovernance,
    RemoteAdmin,
    RemoteMonitoring,
    RemoteBatch,
    RemoteExplanations,
):
    """``Backend`` over HTTP to a modelyard server."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        home: Path | None = None,
        timeout: float = 60,
        workspace: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.location = self.url if workspace is None else f"{self.url} (workspace {workspace})"
        self.home = home or client_home()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if workspace is not None:
            headers["X-Modelyard-Workspace"] = check_workspace_name(workspace)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        self._stored_environments: set[str] = set()

    def child_environment(self) -> dict[str, str]:
        """The variables that reach this server as this key (and workspace)."""
        found = {"MODELYARD_URL": self.url, "MODELYARD_HOME": str(self.home)}
        bearer = self._http.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            found["MODELYARD_API_KEY"] = bearer.removeprefix("Bearer ")
        workspace = self._http.headers.get("X-Modelyard-Workspace")
        if workspace:
            found["MODELYARD_WORKSPACE"] = workspace
        return found

    def close(self) -> None:
        self._http.close()
