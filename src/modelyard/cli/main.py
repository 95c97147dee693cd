"""The ``modelyard`` command: every user error becomes one line and exit code 2."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from modelyard.cli.admin import db, server, ui
from modelyard.cli.batch import batch, score
from modelyard.cli.context import CliContext
from modelyard.cli.endpoints import endpoint, serve
from modelyard.cli.explain import explain
from modelyard.cli.governance import admin, audit, dataset, lineage
from modelyard.cli.imports import import_group
from modelyard.cli.models import alias, models, package, stage
from modelyard.cli.monitors import monitor, profile, worker
from modelyard.cli.reproduce import reproduce
from modelyard.cli.runs import experiments, runs
from modelyard.cli.secrets import secret
from modelyard.errors import ModelyardError

USER_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="MODELYARD_HOME",
    help="Folder of the embedded store (default ./.modelyard).",
)
@click.option(
    "--url",
    envvar="MODELYARD_URL",
    help="Talk to a modelyard server at this URL (commands that work on the store itself "
    "refuse it).",
)
@click.option(
    "--api-key", envvar="MODELYARD_API_KEY", help="API key for the server.", show_envvar=True
)
@click.option(
    "--workspace",
    envvar="MODELYARD_WORKSPACE",
    help="The team workspace to create in and list from.",
    show_envvar=True,
)
@click.version_option(package_name="modelyard")
@click.pass_context
def cli(
    click_ctx: click.Context,
    home: Path | None,
    url: str | None,
    api_key: str | None,
    workspace: str | None,
) -> None:
    """modelyard: track runs, register and package models, serve the catalog."""
    from_env = click_ctx.get_parameter_source("url") is click.core.ParameterSource.ENVIRONMENT
    context = CliContext(
        home=home, url=url, api_key=api_key, workspace=workspace, url_from_env=from_env
    )
    click_ctx.obj = context
    click_ctx.call_on_close(context.close)


@cli.command()
@click.pass_obj
def quickstart(ctx: CliContext) -> None:
    """Train, log, register and alias models on a bundled dataset: the tour."""
    from modelyard.cli.quickstart import run_quickstart

    run_quickstart(ctx.yard())


for command in (
    runs,
    experiments,
    models,
    alias,
    stage,
    package,
    import_group,
    endpoint,
    serve,
    db,
    server,
    ui,
    admin,
    audit,
    lineage,
    dataset,
    secret,
    monitor,
    profile,
    worker,
    score,
    batch,
    reproduce,
    explain,
):
    cli.add_command(command)


def _fail(message: str, code: int = USER_ERROR) -> None:
    click.echo(
        f"error: {message.strip().splitlines()[0] if message.strip() else 'unknown error'}",
        err=True,
    )
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping the error tree to exit codes in this one place.

    modelyard's log records reach standard error only in the commands that configure
    logging (the servers and the worker); elsewhere an error is the one line below,
    not that line and the log record behind it."""
    logger = logging.getLogger("modelyard")
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())
    try:
        cli.main(args=argv, prog_name="modelyard", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ModelyardError as exc:
        _fail(str(exc))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        _fail(f"{exc.strerror}: {exc.filename}")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("MODELYARD_DEBUG"):
            raise
        hint = "rerun with MODELYARD_DEBUG=1 for the traceback"
        _fail(f"internal error: {type(exc).__name__}: {exc} ({hint})", 1)


if __name__ == "__main__":
    main()
