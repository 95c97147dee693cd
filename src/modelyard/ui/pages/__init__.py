"""The UI's pages, one module per area; ``PAGES`` lists their routers."""

from __future__ import annotations

from modelyard.ui.pages import endpoints, home, lineage, monitors

PAGES = (home.router, endpoints.router, monitors.router, lineage.router)
