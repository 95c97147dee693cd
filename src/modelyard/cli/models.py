"""``modelyard models``, ``alias``, ``stage`` and ``package``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, table, when
from modelyard.domain.models import (
    RISK_TIERS,
    VALIDATION_STATUSES,
    Inventory,
    ModelVersion,
    Stage,
)
from modelyard.errors import InvalidInput


def version_rows(versions: list[ModelVersion]) -> list[list[object]]:
    return [
        [
            v.model,
            v.version,
            v.stage.value,
            ", ".join(v.aliases),
            (v.run_id or "")[:12],
            v.flavor,
            when(v.created_at),
            v.description,
        ]
        for v in versions
    ]


VERSION_COLUMNS = [
    "model",
    "version",
    "stage",
    "aliases",
    "run",
    "flavor",
    "registered",
    "description",
]


@click.group()
def models() -> None:
    """Registered models and their versions."""


@models.command("list")
@click.option("--name", "name_contains", default=None, help="Only models whose name contains this.")
@click.option("--tag", default=None, help="Only models with this tag: KEY or KEY=VALUE.")
@click.option("--limit", type=int, default=None, help="At most this many models (a page).")
@click.option("--after", default=None, help="Only models named after this (the next page).")
@json_option
@pass_context
def list_models(
    ctx: CliContext,
    name_contains: str | None,
    tag: str | None,
    limit: int | None,
    after: str | None,
    as_json: bool,
) -> None:
    """Registered models by name; --limit and --after page through many."""
    found = ctx.yard().models.list(name_contains, tag, limit=limit, after=after)
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            m.name,
            m.latest_version,
            ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
            when(m.updated_at),
            m.description,
        )
        for m in found
    ]
    console.print(table("models", ["name", "latest", "aliases", "updated", "description"], rows))


@models.command("show")
@click.argument("name")
@json_option
@pass_context
def show_model(ctx: CliContext, name: str, as_json: bool) -> None:
    """A model with its aliases and every version."""
    yard = ctx.yard()
    model = yard.models.get(name)
    versions = yard.models.versions(name)
    if as_json:
        emit_json({"model": model, "versions": versions})
        return
    console.print(f"[bold]{model.name}[/bold]  latest version {model.latest_version or '-'}")
    if model.description:
        console.print(model.description)
    if model.aliases:
        console.print(
            "aliases: " + ", ".join(f"{a} → {v}" for a, v in sorted(model.aliases.items()))
        )
    console.print(table("versions", VERSION_COLUMNS, version_rows(versions)))


@models.command("tag")
@click.argument("ref")
@click.argument("tags", nargs=-1, required=True)
@pass_context
def tag(ctx: CliContext, ref: str, tags: tuple[str, ...]) -> None:
    """Set TAGS (key=value ...) on model REF, or on version REF (churn/3, churn@champion);
    other tags stay."""
    pairs = dict(_tag(text) for text in tags)
    api = ctx.yard().models
    if "/" in ref or "@" in ref:
        found: dict[str, str] = api.set_version_tags(ref, pairs).tags
    else:
        found = api.set_tags(ref, pairs).tags
    console.print(f"{ref}: " + ", ".join(f"{k}={v}" for k, v in sorted(found.items())))


def _tag(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise InvalidInput(f"tag {text!r} is not key=value (e.g. team=retention)")
    return key.strip(), value


@models.command("versions")
@click.argument("name", required=False)
@click.option("--stage", default=None, type=click.Choice([s.value for s in Stage]))
@click.option("--run", "run_id", default=None, help="Only versions registered from this run.")
@click.option("--tag", default=None, help="Only versions with this tag: KEY or KEY=VALUE.")
@click.option(
    "--sensitivity", default=None, help="Only versions trained on data of this class (pii)."
)
@json_option
@pass_context
def list_versions(
    ctx: CliContext,
    name: str | None,
    stage: str | None,
    run_id: str | None,
    tag: str | None,
    sensitivity: str | None,
    as_json: bool,
) -> None:
    """Versions of one model (or of all), filtered by stage, run, tag or data sensitivity."""
    found = ctx.yard().models.versions(
        name, stage=stage, run_id=run_id, tag=tag, sensitivity=sensitivity
    )
    if as_json:
        emit_json(found)
        return
    console.print(table("versions", VERSION_COLUMNS, version_rows(found)))


@click.group()
def alias() -> None:
    """Move or delete a model alias (e.g. champion)."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@json_option
@pass_context
def set_alias(ctx: CliContext, name: str, alias_name: str, version: int, as_json: bool) -> None:
    moved = ctx.yard().models.set_alias(name, alias_name, version)
    if as_json:
        emit_json(moved)
        return
    console.print(f"{name}@{alias_name} → version {moved.version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@pass_context
def delete_alias(ctx: CliContext, name: str, alias_name: str) -> None:
    ctx.yard().models.delete_alias(name, alias_name)
    console.print(f"deleted {name}@{alias_name}")


@click.group()
def stage() -> None:
    """Move a version along candidate → staging → production → archived."""


@click.command("set")
@click.argument("ref")
@click.argument(
    "target", metavar="STAGE", type=click.Choice([s.value for s in Stage], case_sensitive=False)
)
@click.option("--comment", default="", help="Why; kept in the version's history.")
@click.option(
    "--archive-others",
    is_flag=True,
    help="Archive other versions in that stage (refused if an alias names one).",
)
@json_option
@pass_context
def set_stage(
    ctx: CliContext, ref: str, target: str, comment: str, archive_others: bool, as_json: bool
) -> None:
    """Move REF (name/3 or name@alias) to STAGE."""
    moved = ctx.yard().models.transition(
        ref, target, comment=comment, archive_others=archive_others
    )
    if as_json:
        emit_json(moved)
        return
    console.print(f"{moved.ref} is now {moved.stage.value}")


stage.add_command(set_stage, "set")
stage.add_command(set_stage, "transition")


@click.group()
def package() -> None:
    """Export, import and build model packages (ONNX, functions, container images)."""


@package.command("export")
@click.argument("ref")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["package", "onnx", "function"]),
    default="package",
    show_default=True,
    help="package: the package itself; onnx: its ONNX twin, checked on the version's "
    "reference sample; function: a handler for AWS Lambda, Cloud Functions, Knative.",
)
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="onnx: the largest difference allowed between the twin's and the original's "
    "answers (relative above 1; default 1e-4).",
)
@pass_context
def export_package(
    ctx: CliContext, ref: str, directory: Path, export_format: str, tolerance: float | None
) -> None:
    """Write REF (name/3, name@alias) to DIRECTORY as a package, ONNX or a function."""
    target = ctx.yard().models.export(ref, directory, format=export_format, tolerance=tolerance)
    if export_format != "onnx":
        console.print(f"exported {ref} to {target} ({export_format})")
        return
    check = json.loads((target / "manifest.json").read_text())["metadata"]["check"]
    console.print(
        f"exported {ref} to {target} as ONNX: largest difference "
        f"{check['largest_difference']:.3g} over {check['rows']} rows of the "
        f"{check['sample']} (tolerance {check['tolerance']:g})"
    )


@package.command("twin")
@click.argument("ref")
@click.option("--tolerance", type=float, default=None, help="As for export --format onnx.")
@json_option
@pass_context
def twin_package(ctx: CliContext, ref: str, tolerance: float | None, as_json: bool) -> None:
    """Register REF's ONNX twin (checked as export --format onnx checks it); serve it with
    a route REF=WEIGHT,onnx."""
    twin = ctx.yard().models.register_twin(ref, tolerance=tolerance)
    if as_json:
        emit_json(twin)
        return
    console.print(f"registered {twin.ref} as the ONNX twin of {ref}: route {ref}=100,onnx")


@package.command("build")
@click.argument("ref")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--endpoint", default=None, help="The endpoint the image serves (default: the model's name)."
)
@pass_context
def build_package(ctx: CliContext, ref: str, directory: Path, endpoint: str | None) -> None:
    """Write a container build context for REF to DIRECTORY (docker/podman build DIRECTORY)."""
    target = ctx.yard().models.build(ref, directory, endpoint=endpoint)
    console.print(f"wrote the build context of {ref} to {target}: docker build -t IMAGE {target}")


@package.command("import")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Register under this model name.")
@click.option(
    "--require-signed", is_flag=True, help="Refuse a package whose export carries no signature."
)
@json_option
@pass_context
def import_package(
    ctx: CliContext, directory: Path, name: str | None, require_signed: bool, as_json: bool
) -> None:
    """Verify the package in DIRECTORY or archive (.zip, .tar, .tar.gz, .tgz): files, and
    signature when it carries one; then register it as a new version."""
    version = ctx.yard().models.import_(directory, name=name, require_signed=require_signed)
    if as_json:
        emit_json(version)
        return
    signer = version.tags.get("imported_signed_by")
    signed = f", signed by {signer}" if signer else ""
    console.print(f"imported {directory} as {version.ref}{signed}", markup=False, highlight=False)


@package.command("verify")
@click.argument("ref")
@json_option
@pass_context
def verify_package(ctx: CliContext, ref: str, as_json: bool) -> None:
    """Prove REF's stored files are the registered bytes, and name the key that signed
    them; exit 2 naming the first file or signature that fails."""
    check = ctx.yard().models.verify(ref)
    if as_json:
        emit_json(check)
        return
    head = f"{check.ref}: {check.files} files match package {check.package_digest[:12]}"
    if not check.signed:
        console.print(f"{head}; not signed", markup=False, highlight=False)
        return
    console.print(
        f"{head}; signed by key '{check.key_name}' ({check.key_id}) "
        f"for {check.signed_by} at {when(check.signed_at)}",
        markup=False,
        highlight=False,
    )


INVENTORY_COLUMNS = ["model", "risk", "owner", "validator", "status", "last", "next"]


def _inventory_rows(found: list[Inventory]) -> list[list[object]]:
    return [
        [
            i.model,
            i.risk_tier,
            i.business_owner,
            i.validator,
            i.validation_status,
            i.last_validated,
            i.next_validation,
        ]
        for i in found
    ]


@models.command("inventory")
@click.argument("name")
@click.option("--risk-tier", type=click.Choice(list(RISK_TIERS)), default=None)
@click.option("--owner", "business_owner", default=None, help="The business owner.")
@click.option("--validator", default=None, help="Who validates the model.")
@click.option("--status", "validation_status", type=click.Choice(list(VALIDATION_STATUSES)))
@click.option("--last-validated", default=None, help="Date, e.g. 2026-11-01.")
@click.option("--next-validation", default=None, help="Date, e.g. 2027-05-01.")
@json_option
@pass_context
def inventory(ctx: CliContext, /, name: str, as_json: bool, **fields: str | None) -> None:
    """Show, or change, the model-risk inventory fields of model NAME."""
    changes = {k: v for k, v in fields.items() if v is not None}
    api = ctx.yard().models
    found = api.set_inventory(name, **changes) if changes else api.inventory(name)
    if as_json:
        emit_json(found)
        return
    console.print(table(f"inventory of {name}", INVENTORY_COLUMNS, _inventory_rows([found])))


@models.command("overdue")
@click.option("--on", "on", default=None, help="Date to compare with (default: today).")
@json_option
@pass_context
def overdue(ctx: CliContext, on: str | None, as_json: bool) -> None:
    """Models whose next validation date has passed."""
    found = ctx.yard().models.overdue(on)
    if as_json:
        emit_json(found)
        return
    console.print(table("overdue validations", INVENTORY_COLUMNS, _inventory_rows(found)))


@models.command("card")
@click.argument("ref")
@click.option("--html", "as_html", is_flag=True, help="A self-contained HTML page.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write to a file.")
@pass_context
def card(ctx: CliContext, ref: str, as_html: bool, output: Path | None) -> None:
    """The model card of version REF (churn/3, churn@champion) as Markdown or HTML."""
    text = ctx.yard().models.card(ref, "html" if as_html else "markdown")
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text)
    console.print(f"wrote the model card of {ref} to {output}")


@models.command("retire")
@click.argument("target")
@click.option("--model", "whole", is_flag=True, help="Retire every version of model TARGET.")
@click.option("--comment", default="", help="Why: kept in the stage history.")
@json_option
@pass_context
def retire(ctx: CliContext, target: str, whole: bool, comment: str, as_json: bool) -> None:
    """Retire version TARGET (churn/3), or with --model every version of model TARGET."""
    api = ctx.yard().models
    found = (
        api.retire_model(target, comment=comment)
        if whole
        else [api.retire(target, comment=comment)]
    )
    if as_json:
        emit_json(found)
        return
    console.print(table("retired", VERSION_COLUMNS, version_rows(found)))


@models.command("approval")
@click.argument("action", type=click.Choice(["request", "approve", "reject", "show"]))
@click.argument("ref")
@click.option("--comment", default="", help="Why (a rejection needs one).")
@json_option
@pass_context
def approval(ctx: CliContext, action: str, ref: str, comment: str, as_json: bool) -> None:
    """Request, approve, reject or show the approval of REF (MODEL/N)."""
    api = ctx.yard().models
    if action == "show":
        status = api.approvals(ref)
    elif action == "reject":
        status = api.reject(ref, comment=comment)
    else:
        status = (api.request_approval if action == "request" else api.approve)(
            ref, comment=comment
        )
    if as_json:
        emit_json(status)
        return
    approvers = ", ".join(status["approved_by"]) or "nobody yet"
    console.print(
        f"{status['version']}: {status['state']} ({len(status['approved_by'])} of "
        f"{status['required']} approvals: {approvers}; package {status['digest'][:12]})"
    )
    rows = [(when(h["at"]), h["actor"], h["decision"], h["comment"]) for h in status["history"]]
    if rows:
        console.print(table("decisions", ["when", "who", "decision", "comment"], rows))


@models.command("approval-policy")
@click.argument("required", type=int, required=False)
@pass_context
def approval_policy(ctx: CliContext, required: int | None) -> None:
    """Show, or set to REQUIRED, how many approvals a version needs (0: none)."""
    current = ctx.yard().models.approval_policy(required)
    console.print(f"versions need {current} approval(s) before production or traffic")


@models.command("compare")
@click.argument("name")
@click.argument("first", type=int)
@click.argument("second", type=int)
@json_option
@pass_context
def compare(ctx: CliContext, name: str, first: int, second: int, as_json: bool) -> None:
    """Versions FIRST and SECOND of model NAME side by side: metrics, signature changes,
    feature importance changes and training data differences."""
    found = ctx.yard().models.compare(name, first, second)
    if as_json:
        emit_json(found)
        return
    a, b = f"v{first}", f"v{second}"
    versions = found["versions"]
    console.print(
        table(
            f"{name}: version {first} and {second}",
            ["", a, b],
            [
                [field, left[field], right[field]]
                for field, left, right in (
                    (key, versions[0], versions[1])
                    for key in ("stage", "flavor", "run_id", "created_by")
                )
            ]
            + [["registered", when(versions[0]["created_at"]), when(versions[1]["created_at"])]],
        )
    )
    console.print(
        table(
            "metrics",
            ["metric", a, b, "change"],
            [
                [m["metric"], _num(m["a"]), _num(m["b"]), _num(m["change"])]
                for m in found["metrics"]
            ],
        )
    )
    signature = found["signature"]
    changes = (
        [[f"added in {b}", n] for n in signature["added"]]
        + [[f"removed in {b}", n] for n in signature["removed"]]
        + [["retyped", f"{c['column']}: {c['a']} -> {c['b']}"] for c in signature["changed"]]
        + ([["outputs", "changed"]] if signature["outputs_changed"] else [])
    )
    console.print(table("signature changes", ["change", "column"], changes or [["none", ""]]))
    console.print(
        table(
            "feature importance (share of mean |SHAP|)",
            ["feature", a, b, "change", f"rank {a}", f"rank {b}"],
            [
                [
                    i["feature"],
                    _pct(i["a"]),
                    _pct(i["b"]),
                    _pct(i["change"]),
                    i["rank_a"],
                    i["rank_b"],
                ]
                for i in found["importance"]
            ],
        )
    )
    data = found["data"]
    trained = [
        [label, d["dataset"], d["fingerprint"][:12], d["rows"]] if d else [label, "-", "-", "-"]
        for label, d in ((a, data["a"]), (b, data["b"]))
    ]
    console.print(table("training data", ["version", "dataset", "fingerprint", "rows"], trained))
    if data["columns"]:
        console.print(
            table(
                "training data by column",
                ["column", f"mean {a}", f"mean {b}", "shift (std)", f"missing {a}", f"missing {b}"],
                [
                    [
                        c["column"],
                        _num(c["mean_a"]),
                        _num(c["mean_b"]),
                        _num(c["mean_shift_std"]),
                        _pct(c["missing_a"]),
                        _pct(c["missing_b"]),
                    ]
                    for c in data["columns"]
                ],
            )
        )
    for note in found["notes"]:
        console.print(f"note: {note}", highlight=False)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
