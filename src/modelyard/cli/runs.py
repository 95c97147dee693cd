"""``modelyard runs`` and ``modelyard experiments``."""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, number, table, when
from modelyard.domain.runs import Run


@click.group()
def runs() -> None:
    """List, show and compare runs; list and download their artifacts."""


def _key_columns(found: list[Run], limit: int = 4) -> tuple[list[str], list[str]]:
    params = sorted({k for run in found for k in run.params})[:limit]
    metrics = sorted({k for run in found for k in run.metrics})[:limit]
    return params, metrics


@runs.command("list")
@click.option("--experiment", "-e", multiple=True, help="Only runs of this experiment.")
@click.option(
    "--filter", "-f", "filter_", default=None, help='e.g. metrics.auc > 0.9 and params.model = "rf"'
)
@click.option("--order-by", "-o", default=None, help="e.g. 'metrics.auc desc'")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--cursor", default=None, help="Continue from a previous page.")
@json_option
@pass_context
def list_runs(
    ctx: CliContext,
    experiment: tuple[str, ...],
    filter_: str | None,
    order_by: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Runs matching a filter, newest first unless ordered otherwise."""
    page = ctx.yard().runs.search(
        filter_,
        experiments=list(experiment) or None,
        order_by=order_by,
        max_results=limit,
        cursor=cursor,
    )
    if as_json:
        emit_json({"runs": page.runs, "next_cursor": page.next_cursor})
        return
    params, metrics = _key_columns(page.runs)
    rows = [
        [run.id[:12], run.experiment, run.name, run.status.value, when(run.start_time)]
        + [run.params.get(k) for k in params]
        + [number(run.metrics.get(k)) for k in metrics]
        for run in page.runs
    ]
    columns = ["run", "experiment", "name", "status", "started"]
    columns += [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    console.print(table(f"{len(page.runs)} runs", columns, rows))
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


def _resolve(ctx: CliContext, run_id: str) -> Run:
    """A run by full id, or by a unique prefix of at least 6 characters."""
    yard = ctx.yard()
    if len(run_id) == 32:
        return yard.runs.get(run_id)
    if len(run_id) >= 6:
        matches = yard.runs.search(f'run_id like "{run_id}%"', max_results=2).runs
        if len(matches) == 1:
            return matches[0]
    return yard.runs.get(run_id)


@runs.command("show")
@click.argument("run_id")
@json_option
@pass_context
def show_run(ctx: CliContext, run_id: str, as_json: bool) -> None:
    """Everything a run recorded: params, metrics, tags, artifacts, datasets, environment."""
    yard = ctx.yard()
    run = _resolve(ctx, run_id)
    artifacts = yard.backend.list_artifacts(run.id)
    datasets = yard.backend.run_datasets(run.id)
    environment = yard.backend.get_environment(run.environment_id) if run.environment_id else None
    if as_json:
        emit_json(
            {"run": run, "artifacts": artifacts, "datasets": datasets, "environment": environment}
        )
        return
    console.print(
        f"[bold]{run.name}[/bold]  {run.id}  [{run.status.value}]  experiment {run.experiment}"
    )
    console.print(
        f"started {when(run.start_time)}  ended {when(run.end_time)}  by {run.user or '-'}"
    )
    if run.error:
        console.print(f"[red]error:[/red] {run.error.strip().splitlines()[-1]}")
    console.print(table("params", ["key", "value"], sorted(run.params.items())))
    console.print(
        table(
            "metrics (latest)",
            ["key", "value"],
            [(k, number(v)) for k, v in sorted(run.metrics.items())],
        )
    )
    if run.tags:
        console.print(table("tags", ["key", "value"], sorted(run.tags.items())))
    console.print(
        table(
            "artifacts",
            ["path", "size", "sha256"],
            [(a.path, a.size, a.sha256[:16]) for a in artifacts],
        )
    )
    if datasets:
        rows = [
            (
                u.role,
                u.dataset.name,
                u.dataset.row_count,
                len(u.dataset.columns),
                u.dataset.fingerprint[:16],
                "stored" if u.dataset.stored else (u.dataset.uri or "-"),
            )
            for u in datasets
        ]
        console.print(
            table("datasets", ["role", "name", "rows", "columns", "fingerprint", "where"], rows)
        )
    if environment:
        git = (
            environment.git_commit[:12] + (" (dirty)" if environment.git_dirty else "")
            if environment.git_commit
            else "-"
        )
        console.print(
            f"environment: Python {environment.python} on {environment.host}, "
            f"{len(environment.packages)} packages, git {git}",
            markup=False,
        )
        entry = environment.entry
        if entry is not None:
            ran = entry.notebook or " ".join(entry.argv) or "an interactive session"
            where = f" in {entry.repo}" if entry.repo else ""
            console.print(f"entry point: {ran} (cwd {entry.cwd}{where})", markup=False)


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@json_option
@pass_context
def compare_runs(ctx: CliContext, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Params and latest metrics of several runs side by side."""
    ids = [_resolve(ctx, run_id).id for run_id in run_ids]
    frame = ctx.yard().runs.compare(ids)
    if as_json:
        emit_json(frame.where(frame.notna(), None).to_dict())
        return
    rows = [
        [index, *row] for index, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    console.print(table("comparison", ["", *frame.columns], rows))


@runs.command("artifacts")
@click.argument("run_id")
@json_option
@pass_context
def list_artifacts(ctx: CliContext, run_id: str, as_json: bool) -> None:
    """The files RUN_ID logged: path, size, sha256."""
    run = _resolve(ctx, run_id)
    found = ctx.yard().runs.artifacts(run.id)
    if as_json:
        emit_json(found)
        return
    rows = [(a.path, f"{a.size:,}", a.sha256[:12], when(a.created_at)) for a in found]
    console.print(table(f"artifacts of {run.id}", ["path", "bytes", "sha256", "logged"], rows))


@runs.command("download")
@click.argument("run_id")
@click.argument("path")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="File or folder to write (default: PATH's last part, here).",
)
@pass_context
def download(ctx: CliContext, run_id: str, path: str, output: Path | None) -> None:
    """Download artifact PATH of RUN_ID (hash-checked); a folder such as ``model`` whole."""
    run = _resolve(ctx, run_id)
    written = ctx.yard().runs.download(run.id, path, output)
    console.print(f"downloaded {path} of run {run.id} to {written}")


@click.group()
def experiments() -> None:
    """Create and list experiments (of the chosen workspace)."""


@experiments.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the experiment is about.")
@pass_context
def create_experiment(ctx: CliContext, name: str, description: str) -> None:
    created = ctx.yard().experiments.create(name, description)
    console.print(f"experiment '{created.name}' created in workspace '{created.workspace}'")


@experiments.command("list")
@json_option
@pass_context
def list_experiments(ctx: CliContext, as_json: bool) -> None:
    found = ctx.yard().experiments.list()
    if as_json:
        emit_json(found)
        return
    console.print(
        table(
            "experiments",
            ["id", "name", "workspace", "created"],
            [(e.id, e.name, e.workspace, when(e.created_at)) for e in found],
        )
    )
