"""The web UI: pages over runs, models, endpoints, monitors, lineage and audit.

Served by ``modelyard server`` at ``/`` (and by ``modelyard ui`` on the embedded
store). A page is rendered on the server from the API's own answers: each page calls
``/api/v1`` in-process with the signed-in key (``ui.apiclient.Api``), so what a page
shows is exactly what that key may read, and a write button posts a CSRF-checked form
that the API then authorises. Charts are drawn in the page from the API's JSON.
Every script and style is served by modelyard itself (``/ui/static``, and Plotly's
bundle from the installed ``plotly`` package at ``/ui/vendor``).
"""
