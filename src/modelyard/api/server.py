"""Run the API with uvicorn; refuse to start on a database that is not migrated."""

from __future__ import annotations

import uvicorn

from modelyard.api.app import create_app
from modelyard.bootstrap import bootstrap
from modelyard.config import Settings


def serve(host: str, port: int, settings: Settings) -> None:
    """Serve ``/api/v1`` for ``settings``; raises ``NotMigrated`` before binding the port."""
    services = bootstrap(settings, create_if_empty=False)
    app = create_app(services)
    print(f"modelyard server on http://{host}:{port} (store: {services.db.describe()})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    services.close()
