"""The UI's pages, one module per area; ``PAGES`` lists their routers."""

from __future__ import annotations

from modelyard.ui.pages import audit, endpoints, home, lineage, models, monitors, runs

PAGES = (
    home.router,
    runs.router,
    models.router,
    endpoints.router,
    monitors.router,
    lineage.router,
    audit.router,
)
