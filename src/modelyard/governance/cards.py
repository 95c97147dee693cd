"""Model cards: Markdown, HTML or JSON for any version, from what the platform knows.

A card is built as a list of sections (text lines and tables) and rendered to
Markdown, to a self-contained HTML page, or to JSON (the sections themselves, for
the web UI to lay out), so all say exactly the same thing.
Sections: identity, purpose and ownership (descriptions and the model-risk
inventory), training data (with sensitivity classes), the training run's
parameters and metrics, the signature, feature importance (mean |SHAP| on the
training data), deployments (endpoints that serve or
served it), lifecycle history, approvals, and monitoring with recent alerts.

``ModelCards`` is a service built by ``bootstrap`` with the services it reads
(``services.cards``):

>>> services.cards.card("churn@champion", "html")
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field
from typing import Any

from modelyard.catalog.inventory import InventoryService
from modelyard.catalog.registry import Catalog
from modelyard.domain.models import ModelRef
from modelyard.errors import InvalidInput, NotFound
from modelyard.governance.approvals import ApprovalService
from modelyard.monitoring.alerts import AlertService
from modelyard.monitoring.importance import ImportanceService
from modelyard.monitoring.monitors import MonitorService
from modelyard.monitoring.reference import ReferenceService
from modelyard.serving.endpoints import EndpointService
from modelyard.tracking.dataset_registry import DatasetRegistry
from modelyard.tracking.runs import TrackingService

FORMATS = ("markdown", "html", "json")
TOP_FEATURES = 20  # features a card lists by importance


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class ModelCards:
    """Model cards of versions, from the catalog, runs, data, deployments and monitoring.

    >>> cards = ModelCards(catalog, inventory, tracking, datasets, endpoints, approvals,
    ...                    references, monitors, alerts)
    >>> print(cards.card("churn/3"))
    """

    def __init__(
        self,
        catalog: Catalog,
        inventory: InventoryService,
        tracking: TrackingService,
        datasets: DatasetRegistry,
        endpoints: EndpointService,
        approvals: ApprovalService,
        references: ReferenceService,
        monitors: MonitorService,
        alerts: AlertService,
        importances: ImportanceService | None = None,
    ) -> None:
        self.catalog = catalog
        self.inventory = inventory
        self.tracking = tracking
        self.datasets = datasets
        self.endpoints = endpoints
        self.approvals = approvals
        self.references = references
        self.monitors = monitors
        self.alerts = alerts
        self.importances = importances

    def card(self, ref: str, form: str = "markdown") -> str:
        """The card of version ``ref`` as Markdown, a self-contained HTML page, or JSON
        (``{"title", "sections": [{"title", "lines", "tables": [{"columns", "rows"}]}]}``)."""
        if form not in FORMATS:
            raise InvalidInput(f"card format must be one of {', '.join(FORMATS)}, got {form!r}")
        title, sections = self.build(ref)
        return render(title, sections, form)

    def build(self, ref: str) -> tuple[str, list[Section]]:
        """(title, sections) of the card for version ``ref`` (``churn/3``, ``churn@champion``)."""
        version = self.catalog.get_version(ModelRef.parse(ref))
        model = self.catalog.get_model(version.model)
        inventory = self.inventory.get(version.model)
        title = f"Model card: {version.ref}"
        sections = [
            Section(
                "Identity",
                [
                    f"Model **{version.model}**, version **{version.version}**, stage "
                    f"**{version.stage.value}**"
                    + (f", aliases: {', '.join(version.aliases)}" if version.aliases else ""),
                    f"Registered {_when(version.created_at)} by {version.created_by or 'unknown'}; "
                    f"flavor {version.flavor}; package digest `{version.package_digest}`",
                ],
            )
        ]
        purpose = Section("Purpose and ownership")
        purpose.lines.append(version.description or model.description or "No description recorded.")
        purpose.lines.append(f"Owned by workspace **{model.workspace}**.")
        purpose.tables.append(
            (
                ["risk tier", "business owner", "validator", "validation", "last", "next"],
                [
                    [
                        inventory.risk_tier or "-",
                        inventory.business_owner or "-",
                        inventory.validator or "-",
                        inventory.validation_status,
                        inventory.last_validated or "-",
                        inventory.next_validation or "-",
                    ]
                ],
            )
        )
        sections.append(purpose)
        sections.extend(self._training(version.run_id))
        sections.append(_signature(version.signature))
        sections.append(self._importance(version.ref))
        sections.append(self._deployments(version.model, version.version))
        history = self.catalog.stage_history(version.ref)
        sections.append(
            Section(
                "Lifecycle",
                [] if history else ["No stage changes."],
                [
                    (
                        ["at", "from", "to", "by", "comment"],
                        [
                            [_when(h["at"]), h["from"], h["to"], h["actor"], h["comment"]]
                            for h in history
                        ],
                    )
                ]
                if history
                else [],
            )
        )
        sections.append(self._approvals(version.ref))
        sections.append(self._monitoring(version.model, version.version))
        return title, sections

    def _importance(self, ref: str) -> Section:
        """Mean |SHAP| per feature on the training data, largest first."""
        section = Section("Feature importance")
        try:
            importance = self.importances.get(ref) if self.importances else None
        except NotFound:
            importance = None
        if importance is None:
            section.lines.append("Not computed (the run kept no training data to explain).")
            return section
        if importance.status != "ready":
            section.lines.append(f"Not available: {importance.status} ({importance.error}).")
            return section
        section.lines.append(
            f"Mean |SHAP value| per feature on {importance.rows} training rows "
            f"({importance.method} explainer), largest first."
        )
        shares = importance.shares
        rows = [
            [name, f"{value:.4g}", f"{shares[name]:.1%}"]
            for name, value in list(importance.features.items())[:TOP_FEATURES]
        ]
        section.tables.append((["feature", "mean |SHAP|", "share"], rows))
        return section

    def _approvals(self, ref: str) -> Section:
        status = self.approvals.status(ref)
        lines = [
            f"State: {status.state.replace('_', ' ')} ({len(status.approved_by)} of "
            f"{status.required} approvals"
            + (f": {', '.join(status.approved_by)}" if status.approved_by else "")
            + f"), package {status.digest[:12]}."
        ]
        rows = [
            [_when(h["at"]), h["actor"], h["decision"], h["digest"][:12], h["comment"]]
            for h in status.history
        ]
        tables = [(["at", "by", "decision", "package", "comment"], rows)] if rows else []
        return Section("Approvals", lines, tables)

    def _monitoring(self, model: str, version: int) -> Section:
        ref = f"{model}/{version}"
        reference = self.references.status(ref)
        lines = [
            "Reference profile: "
            + ("none (the run kept no training data)" if reference is None else reference["status"])
            + (f" ({reference['error']})" if reference and reference["error"] else "")
        ]
        endpoints = {
            e.name
            for e in self.endpoints.list()
            if any(t.model == model and t.version == version for _, t in e.spec.targets())
        }
        monitors = [m for m in self.monitors.list() if m.spec.endpoint in endpoints]
        if not monitors:
            lines.append("No monitor watches an endpoint that serves this version.")
            return Section("Monitoring", lines)
        lines.append(
            "Monitors: " + ", ".join(f"{m.name} (endpoint {m.spec.endpoint})" for m in monitors)
        )
        alerts = self.alerts.alerts({m.id: m.name for m in monitors}, limit=10)
        rows = [
            [
                _when(a["opened_at"]),
                a["monitor"],
                a["check"],
                a["severity"],
                a["status"],
                a["summary"],
            ]
            for a in alerts
        ]
        tables = (
            [(["opened", "monitor", "check", "severity", "status", "summary"], rows)]
            if rows
            else []
        )
        if not rows:
            lines.append("No alerts.")
        return Section("Monitoring and recent alerts", lines, tables)

    def _training(self, run_id: str | None) -> list[Section]:
        if not run_id:
            return [Section("Training", ["Registered without a run: no training data recorded."])]
        run = self.tracking.get_run(run_id)
        uses = self.datasets.run_datasets(run_id)
        data = Section("Training data")
        if uses:
            rows = []
            for use in uses:
                classes = self.datasets.classes(use.dataset.name)
                rows.append(
                    [
                        use.dataset.name,
                        use.role,
                        use.dataset.row_count,
                        len(use.dataset.columns),
                        use.dataset.fingerprint[:12],
                        ", ".join(classes) or "-",
                    ]
                )
            data.tables.append(
                (["dataset", "role", "rows", "columns", "content", "sensitivity"], rows)
            )
        else:
            data.lines.append("The training run logged no datasets.")
        training = Section(
            "Training run",
            [
                f"Run `{run.id}` ({run.name}) in experiment {run.experiment}, by "
                f"{run.user or 'unknown'}, {run.status.value}, started {_when(run.start_time)}"
            ],
        )
        if run.params:
            training.tables.append(
                (["parameter", "value"], [[k, v] for k, v in sorted(run.params.items())])
            )
        if run.metrics:
            training.tables.append(
                (
                    ["metric", "latest value"],
                    [[k, f"{v:.6g}"] for k, v in sorted(run.metrics.items())],
                )
            )
        return [data, training]

    def _deployments(self, model: str, number: int) -> Section:
        section = Section("Deployments")
        rows = []
        for endpoint in self.endpoints.list():
            history = self.endpoints.revisions(endpoint.name)
            used = [
                r
                for r in history
                if any(t.model == model and t.version == number for _, t in r.spec.targets())
            ]
            if not used:
                continue
            now = next(
                (
                    f"{role} {t.weight}%" if role == "primary" else "shadow"
                    for role, t in endpoint.spec.targets()
                    if t.model == model and t.version == number
                ),
                "not now",
            )
            rows.append(
                [
                    endpoint.name,
                    now,
                    f"since revision {used[0].revision}",
                    _when(used[0].created_at),
                ]
            )
        if rows:
            section.tables.append((["endpoint", "serving now", "first routed", "at"], rows))
        else:
            section.lines.append("Not deployed behind any endpoint.")
        return section


def _signature(signature: dict[str, Any] | None) -> Section:
    if not signature:
        return Section("Signature", ["No signature: inputs are not checked."])
    rows = [[c["name"], c["type"], "yes" if c["nullable"] else "no"] for c in signature["inputs"]]
    return Section("Signature", [], [(["input", "type", "nullable"], rows)])


def render(title: str, sections: list[Section], form: str = "markdown") -> str:
    if form not in FORMATS:
        raise InvalidInput(f"card format must be one of {', '.join(FORMATS)}, got {form!r}")
    if form == "json":
        return _json(title, sections)
    return _markdown(title, sections) if form == "markdown" else _html(title, sections)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        out += [line + "\n" for line in section.lines]
        for columns, rows in section.tables:
            out.append("| " + " | ".join(columns) + " |")
            out.append("|" + "---|" * len(columns))
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _json(title: str, sections: list[Section]) -> str:
    """The sections as data; lines keep the card's own **bold** and `code` marks."""
    shaped = [
        {
            "title": section.title,
            "lines": section.lines,
            "tables": [{"columns": columns, "rows": rows} for columns, rows in section.tables],
        }
        for section in sections
    ]
    return json.dumps({"title": title, "sections": shaped}, default=str)


def _inline(text: str) -> str:
    """Escape, then turn the card's own **bold** and `code` marks into tags."""
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html(title: str, sections: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{_inline(line)}</p>" for line in section.lines]
        for columns, rows in section.tables:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:.5rem 0 1rem}"
        "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
        "code{background:#f4f4f4;padding:0 .2rem}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
