"""``modelyard score`` and ``modelyard batch list|show``: batch scoring on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, table, when

if TYPE_CHECKING:
    from rich.progress import Task

    from modelyard.domain.batch import BatchJob


class RowsPerSecond(ProgressColumn):
    """The scoring rate over the last batches; over the whole job when it ended before
    there were two samples to measure a rate between (a small file scores in one step)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.completed and task.elapsed:
            speed = task.completed / task.elapsed
        return Text("-" if speed is None else f"{speed:,.0f} rows/s")


def _columns(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@click.command()
@click.argument("ref")
@click.argument("input")
@click.argument("output")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Scoring processes, or Ray actors with --engine ray (default: chosen on the first "
    "batch: this process when the model is cheap beside reading, else every core; Ray: "
    "every core here).",
)
@click.option("--keep", default=None, help="Input columns to copy beside the outputs: id,customer.")
@click.option("--log-to", default=None, help="Also write the predictions to this endpoint's log.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["parquet", "csv"]),
    default=None,
    help="Output format (default: the output's suffix, else parquet).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Score here (local processes) or on a Ray cluster through Ray Data.",
)
@click.option(
    "--ray-address",
    default=None,
    envvar="MODELYARD_RAY_ADDRESS",
    help="The Ray cluster for --engine ray (default: MODELYARD_RAY_ADDRESS, else Ray's own).",
)
@json_option
@pass_context
def score(
    ctx: CliContext,
    ref: str,
    input: str,
    output: str,
    workers: int | None,
    keep: str | None,
    log_to: str | None,
    output_format: str | None,
    overwrite: bool,
    engine: str,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Score INPUT (Parquet, CSV, a folder of them, any fsspec URL) with version REF
    (churn/3, churn@champion) into OUTPUT; the job is recorded either way."""
    yard = ctx.yard()
    progress = Progress(
        TextColumn("scoring"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        RowsPerSecond(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=as_json,
    )
    with progress:
        task = progress.add_task("score", total=None)

        def advance(rows: int, total: int | None) -> None:
            progress.update(task, advance=rows, total=total)

        job = yard.batch.score(
            ref,
            input,
            output,
            workers=workers,
            keep=_columns(keep),
            log_to=log_to,
            format=output_format,
            overwrite=overwrite,
            progress=advance,
            engine=engine,
            address=ray_address if engine == "ray" else None,
        )
    if as_json:
        emit_json(job)
        return
    console.print(
        f"job {job.id}: {job.status.value}, {job.rows_out:,} rows of {job.version_ref} "
        f"written to {job.output_uri}"
    )


@click.group()
def batch() -> None:
    """Batch scoring jobs: list them, show one."""


@batch.command("list")
@click.option("--model", default=None, help="Only jobs of this model.")
@click.option(
    "--status", type=click.Choice(["running", "succeeded", "failed", "abandoned"]), default=None
)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@pass_context
def list_jobs(
    ctx: CliContext, model: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """The newest batch jobs first."""
    jobs = ctx.yard().batch.jobs(model=model, status=status, limit=limit)
    if as_json:
        emit_json(jobs)
        return
    rows = [
        (
            j.id,
            j.version_ref,
            j.status.value,
            j.rows_out,
            _engine(j),
            j.created_by,
            when(j.created_at),
        )
        for j in jobs
    ]
    columns = ["id", "version", "status", "rows", "engine", "by", "at"]
    console.print(table("batch jobs", columns, rows))


@batch.command("show")
@click.argument("job_id")
@json_option
@pass_context
def show_job(ctx: CliContext, job_id: str, as_json: bool) -> None:
    """Everything recorded of batch job JOB_ID."""
    job = ctx.yard().batch.job(job_id)
    if as_json:
        emit_json(job)
        return
    console.print(table(f"batch job {job.id}", ["field", "value"], _fields(job)))


def _engine(job: BatchJob) -> str:
    """``local x4``: the engine and its workers (``-`` for jobs recorded before engines were)."""
    return "-" if job.engine is None else f"{job.engine} x{job.workers}"


def _fields(job: BatchJob) -> list[tuple[str, Any]]:
    return [
        ("status", job.status.value),
        ("version", f"{job.version_ref} (asked for {job.ref})"),
        ("package digest", job.package_digest),
        ("workspace", job.workspace),
        ("by", job.created_by),
        ("started", when(job.created_at)),
        ("finished", when(job.finished_at)),
        ("input", job.input_uri),
        ("input fingerprint", job.input_fingerprint),
        ("output", f"{job.output_uri} ({job.output_format})"),
        ("output fingerprint", job.output_fingerprint),
        ("rows in / out", f"{job.rows_in} / {job.rows_out}"),
        ("kept columns", ", ".join(job.keep)),
        ("engine", job.engine or "not recorded"),
        ("workers", job.workers),
        ("prediction log", job.log_to),
        ("error", job.error),
    ]
