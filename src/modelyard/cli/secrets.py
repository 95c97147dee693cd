"""``modelyard secret``: the tokens and passwords alert channels use.

The value never travels in the command line (where ``ps`` and shell history would
keep it): it is read from standard input, or from a hidden prompt on a terminal::

    printf %s "$PAGER_TOKEN" | modelyard secret set pager-token
    modelyard secret set smtp-password        # prompts twice, echoes nothing
"""

from __future__ import annotations

import sys

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, table, when
from modelyard.domain.secrets import check_secret_name
from modelyard.errors import InvalidInput


@click.group()
def secret() -> None:
    """Encrypted secrets for alert channels: set, list, delete (values are never shown)."""


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(
            f"value of secret {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        return value
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value  # the newline echo or a file adds
    value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise InvalidInput(f"no value for secret '{name}' on standard input")
    return value


# extra arguments are taken, not refused by click, so a value typed there is not echoed back
@secret.command("set", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@click.argument("name")
@pass_context
def set_secret(ctx: CliContext, name: str) -> None:
    """Create or replace secret NAME (value from stdin, or a hidden prompt)."""
    if click.get_current_context().args:
        raise InvalidInput(
            "give the value on standard input or at the prompt, never on the command line"
        )
    check_secret_name(name)
    record = ctx.yard().secrets.set(name, _read_value(name))
    console.print(f"secret {record.name} set")


@secret.command("list")
@json_option
@pass_context
def list_secrets(ctx: CliContext, as_json: bool) -> None:
    """Names of the secrets and who set them when."""
    found = ctx.yard().secrets.list()
    if as_json:
        emit_json(found)
        return
    rows = [(s.name, s.workspace, s.updated_by, when(s.updated_at), s.created_by) for s in found]
    head = ["name", "workspace", "updated by", "updated", "created by"]
    console.print(table("secrets", head, rows))


@secret.command("delete")
@click.argument("name")
@pass_context
def delete_secret(ctx: CliContext, name: str) -> None:
    """Delete secret NAME; channels that name it fail until it is set again."""
    ctx.yard().secrets.delete(name)
    console.print(f"secret {name} deleted")
