"""``modelyard reproduce RUN``: run a recorded run again and compare its metrics.

Exit codes: 0 every metric and dataset matches; 1 some differ (the table says
which); 2 the run cannot be reproduced as recorded (every missing or changed piece
is named: code, data, entry point, environment) or bad input; 3 the entry point
failed or logged no run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, table
from modelyard.domain.reproduction import DEFAULT_TOLERANCE, Check, Reproduction
from modelyard.errors import ReproductionFailed

DIFFERENT, FAILED = 1, 3


def _cell(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value[:12]
    return f"{value:.6g}"


def _row(check: Check) -> list[str]:
    difference = "-" if check.difference is None else f"{check.difference:.3g}"
    return [
        check.key,
        _cell(check.original),
        _cell(check.reproduced),
        difference,
        "yes" if check.ok else "NO",
    ]


def show(result: Reproduction) -> None:
    rows = [_row(check) for check in result.checks]
    title = (
        f"run {result.original} reproduced as run {result.run_id} "
        f"(commit {result.commit[:12]}, tolerance {result.tolerance:g} relative)"
    )
    console.print(table(title, ["metric", "original", "reproduced", "diff", "ok"], rows))
    for difference in result.environment:
        console.print(f"environment (allowed): {difference}")
    verdict = "all match" if result.ok else f"{len(result.failed)} of {len(result.checks)} differ"
    console.print(verdict)


@click.command()
@click.argument("ref")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="Largest relative difference of a metric that still matches.",
)
@click.option("--allow-dirty", is_flag=True, help="Run the commit of a run whose tree was dirty.")
@click.option(
    "--allow-environment",
    is_flag=True,
    help="Run even though this environment's packages differ from the recorded ones.",
)
@click.option(
    "--venv",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Build a virtualenv here from the recorded packages (pip) and run in it.",
)
@click.option(
    "--python",
    "python",
    default=None,
    help="The interpreter to run the entry point with (default: the one running modelyard).",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The git repository holding the commit (default: where the run started, "
    "else the current one).",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Seconds.")
@click.option("--check", is_flag=True, help="Only list what is missing; run nothing.")
@json_option
@pass_context
def reproduce(
    ctx: CliContext,
    ref: str,
    tolerance: float,
    allow_dirty: bool,
    allow_environment: bool,
    venv: Path | None,
    python: str | None,
    repo: Path | None,
    timeout: float | None,
    check: bool,
    as_json: bool,
) -> None:
    """Run RUN (a run id, or a version such as churn/3) again as recorded and compare.

    The recorded entry point runs on a temporary checkout of the recorded commit, in
    this environment once its packages match the recorded ones (or in a new --venv),
    after checking the datasets it read are unchanged. The new run is tagged
    modelyard.reproduces=RUN. Exit 0: everything matches; 1: metrics or datasets
    differ; 2: cannot be reproduced (each missing piece is named); 3: the entry
    point failed.
    """
    yard = ctx.yard()
    if check:
        problems = yard.runs.reproducibility(ref, repo=repo, allow_dirty=allow_dirty)
        if as_json:
            emit_json({"ref": ref, "problems": problems})
        for problem in problems if not as_json else []:
            click.echo(problem)
        if not problems and not as_json:
            click.echo(f"{ref}: code, data and entry point are all available")
        sys.exit(2 if problems else 0)
    try:
        result = yard.runs.reproduce(
            ref,
            tolerance=tolerance,
            allow_dirty=allow_dirty,
            allow_environment=allow_environment,
            virtualenv=venv,
            python=python,
            repo=repo,
            timeout=timeout,
            log=sys.stderr,
        )
    except ReproductionFailed as failure:
        click.echo(f"error: {failure}", err=True)
        sys.exit(FAILED)
    if as_json:
        emit_json(
            {
                "original": result.original,
                "run_id": result.run_id,
                "commit": result.commit,
                "tolerance": result.tolerance,
                "ok": result.ok,
                "checks": result.checks,
                "environment": [str(d) for d in result.environment],
            }
        )
    else:
        show(result)
    if not result.ok:
        sys.exit(DIFFERENT)
