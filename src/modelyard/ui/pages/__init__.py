"""The UI's pages, one module per area; ``PAGES`` lists their routers."""

from __future__ import annotations

from modelyard.ui.pages import home, runs

PAGES = (home.router, runs.router)
