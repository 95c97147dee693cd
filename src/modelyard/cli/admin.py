"""``modelyard db``, ``modelyard server`` and ``modelyard ui``: they work on the store itself
(never with --url)."""

from __future__ import annotations

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json
from modelyard.config import DEFAULT_PORT
from modelyard.store.database import Database
from modelyard.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Schema migrations of the metadata database."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: CliContext) -> None:
    """Bring the database schema to the newest revision."""
    database = Database(ctx.store().db_url)
    before, after = upgrade(database)
    if before == after:
        console.print(f"{database.describe()} is already at {after}")
    else:
        console.print(f"upgraded {database.describe()} from {before or 'empty'} to {after}")


@db.command("current")
@json_option
@pass_context
def db_current(ctx: CliContext, as_json: bool) -> None:
    """The schema revision of the database, and whether it is the newest."""
    database = Database(ctx.store().db_url)
    current, head = current_revision(database), head_revision()
    if as_json:
        emit_json(
            {
                "database": database.describe(),
                "current": current,
                "head": head,
                "at_head": current == head,
            }
        )
        return
    state = "at head" if current == head else f"behind: run `modelyard db upgrade` to reach {head}"
    console.print(f"{database.describe()}: revision {current or 'none'} ({state})")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@pass_context
def server(ctx: CliContext, host: str, port: int) -> None:
    """Serve the API (/api/v1, /healthz, /docs) and the web UI (/) over the configured store."""
    from modelyard.api.server import serve

    serve(host, port, ctx.store())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--user",
    default=None,
    help="Sign in as this user (default: your user name; on a store with no admin yet, "
    "it becomes the first admin).",
)
@pass_context
def ui(ctx: CliContext, host: str, port: int, user: str | None) -> None:
    """Open the web UI on the store itself, for one person: prints an address that signs
    you in with a key made for this session (revoked when the command stops)."""
    from modelyard.api.server import serve_ui
    from modelyard.domain.actors import os_user

    serve_ui(host, port, ctx.store(), user or os_user())
