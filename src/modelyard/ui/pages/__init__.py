"""The UI's pages, one module per area; ``PAGES`` lists their routers."""

from __future__ import annotations

from modelyard.ui.pages import audit, home, models, runs

PAGES = (home.router, runs.router, models.router, audit.router)
