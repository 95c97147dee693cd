"""``modelyard admin`` and ``modelyard audit`` (through the SDK, so ``--url`` acts through a
server as the key's user), ``lineage`` and ``dataset``.

``admin init`` alone works on the store itself: it makes the first admin and key, before
any key exists. Embedded, the services record every change as the OS user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, moment, table, when
from modelyard.domain.identity import DEFAULT_WORKSPACE, Role
from modelyard.errors import Conflict, InvalidInput

ROLES = [r.value for r in Role]


@click.group()
def admin() -> None:
    """Users, workspaces and API keys (embedded, or through a server as an admin's key)."""


@admin.command("init")
@click.option("--name", default=None, help="Name of the first admin (default: your user name).")
@pass_context
def init(ctx: CliContext, name: str | None) -> None:
    """Create the first admin and print its API key once (on the store itself)."""
    from modelyard.bootstrap import bootstrap
    from modelyard.domain.actors import os_user

    services = bootstrap(ctx.store())
    try:
        if services.identity.has_admin():
            raise Conflict("an admin already exists: use `modelyard admin key create` instead")
        user = services.identity.create_user(name or os_user(), Role.ADMIN)
        _, token = services.identity.create_key(user.name, name="initial admin key")
    finally:
        services.close()
    console.print(f"admin '{user.name}' created. API key (shown once, keep it secret):")
    click.echo(token)


@admin.group("user")
def user_group() -> None:
    """Add users and list them."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option(
    "--workspace", default=DEFAULT_WORKSPACE, show_default=True, help="Its first workspace."
)
@pass_context
def add_user(ctx: CliContext, name: str, role: str, workspace: str) -> None:
    created = ctx.yard().admin.create_user(name, role, workspace=workspace)
    console.print(f"user '{created.name}' added to '{workspace}' as {created.role.value}")


@user_group.command("list")
@click.option("--workspace", default=None, help="Only this workspace's members.")
@json_option
@pass_context
def list_users(ctx: CliContext, workspace: str | None, as_json: bool) -> None:
    users = ctx.yard().admin.users(workspace)
    if as_json:
        emit_json(users)
        return
    console.print(
        table(
            "users",
            ["name", "workspaces", "created"],
            [(u.name, _memberships(u.workspaces), when(u.created_at)) for u in users],
        )
    )


def _memberships(workspaces: dict[str, Role] | None) -> str:
    return ", ".join(f"{name}: {role.value}" for name, role in (workspaces or {}).items())


@admin.group("workspace")
def workspace_group() -> None:
    """Workspaces (one per team) and the role each member holds there."""


@workspace_group.command("create")
@click.argument("name")
@click.option(
    "--admin",
    "admin_user",
    default=None,
    help="The user who administers it (default: the admins of 'default'; through a "
    "server, you too).",
)
@pass_context
def create_workspace(ctx: CliContext, name: str, admin_user: str | None) -> None:
    """Create workspace NAME and say who administers it."""
    yard = ctx.yard()
    yard.admin.create_workspace(name, admin=admin_user)
    admins = ", ".join(yard.admin.admins(name))
    if admin_user is not None:
        why = ""
    elif ctx.url:
        why = " (its creator, through the server)"
    else:
        why = f" (the admins of '{DEFAULT_WORKSPACE}', since no --admin was given)"
    console.print(f"workspace '{name}' created; its admins: {admins}{why}")
    console.print("add members with `modelyard admin workspace add-member`")


@workspace_group.command("list")
@json_option
@pass_context
def list_workspaces(ctx: CliContext, as_json: bool) -> None:
    found = ctx.yard().admin.workspaces()
    if as_json:
        emit_json(found)
        return
    rows = [(w.name, str(w.members), when(w.created_at)) for w in found]
    console.print(table("workspaces", ["name", "members", "created"], rows))


@workspace_group.command("add-member")
@click.argument("workspace")
@click.argument("user")
@click.option("--role", type=click.Choice(ROLES), required=True)
@pass_context
def add_member(ctx: CliContext, workspace: str, user: str, role: str) -> None:
    """Give USER ROLE in WORKSPACE (a new membership or a changed role)."""
    ctx.yard().admin.add_member(workspace, user, role)
    console.print(f"'{user}' is {role} in '{workspace}'")


@workspace_group.command("remove-member")
@click.argument("workspace")
@click.argument("user")
@pass_context
def remove_member(ctx: CliContext, workspace: str, user: str) -> None:
    ctx.yard().admin.remove_member(workspace, user)
    console.print(f"'{user}' removed from '{workspace}'")


@admin.group("key")
def key_group() -> None:
    """Create, list and revoke API keys."""


@key_group.command("create")
@click.argument("user")
@click.option("--name", default="", help="What the key is for.")
@click.option("--expires-days", type=float, default=None, help="Lifetime in days (default: none).")
@click.option(
    "--endpoint", default=None, help="Make a key that may only call this endpoint's predictions."
)
@pass_context
def create_key(
    ctx: CliContext, user: str, name: str, expires_days: float | None, endpoint: str | None
) -> None:
    """Create a key for USER and print it once."""
    record, token = ctx.yard().admin.create_key(
        user, name=name, expires_in_days=expires_days, endpoint=endpoint
    )
    console.print(f"key {record.id} for '{user}' (shown once, keep it secret):")
    click.echo(token)


@key_group.command("list")
@click.option("--user", default=None, help="Only this user's keys.")
@json_option
@pass_context
def list_keys(ctx: CliContext, user: str | None, as_json: bool) -> None:
    """Every API key (never the secret), with its state."""
    found = ctx.yard().admin.keys(user)
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            k.id,
            k.user,
            k.name,
            k.endpoint or "",
            when(k.created_at),
            _key_state(k.revoked_at, k.expires_at),
        )
        for k in found
    ]
    console.print(table("API keys", ["id", "user", "name", "endpoint", "created", "state"], rows))


def _key_state(revoked_at: int | None, expires_at: int | None) -> str:
    if revoked_at is not None:
        return f"revoked {when(revoked_at)}"
    if expires_at is not None:
        return f"expires {when(expires_at)}"
    return "active"


@key_group.command("revoke")
@click.argument("key_id")
@pass_context
def revoke_key(ctx: CliContext, key_id: str) -> None:
    ctx.yard().admin.revoke_key(key_id)
    console.print(f"key {key_id} revoked")


@admin.group("signing-key")
def signing_key_group() -> None:
    """Create and list the platform's package signing keys (Ed25519)."""


@signing_key_group.command("create")
@click.argument("name")
@json_option
@pass_context
def create_signing_key(ctx: CliContext, name: str, as_json: bool) -> None:
    """Create signing key NAME: from now on it signs every version registered."""
    key = ctx.yard().admin.create_signing_key(name)
    if as_json:
        emit_json(key)
        return
    console.print(
        f"signing key '{key.name}' created: key id {key.key_id}, public key {key.public_key}"
    )


@signing_key_group.command("list")
@json_option
@pass_context
def list_signing_keys(ctx: CliContext, as_json: bool) -> None:
    """The signing keys (public halves only); the newest one signs."""
    found = ctx.yard().admin.signing_keys()
    if as_json:
        emit_json(found)
        return
    rows = [(k.key_id, k.name, k.created_by, when(k.created_at), k.public_key) for k in found]
    console.print(table("signing keys", ["id", "name", "by", "created", "public key"], rows))


@click.group()
def audit() -> None:
    """Verify, search and export the audit log."""


@audit.command("verify")
@pass_context
def verify(ctx: CliContext) -> None:
    """Recompute the hash chain; name the first edited or deleted event."""
    count = ctx.yard().audit.verify()
    console.print(f"audit log intact: {count} events, hash chain verified")


@audit.command("export")
@click.option("--since", default=None, help="ISO date or time, UTC unless given.")
@click.option("--until", default=None)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), default=None, help="File (default: stdout)."
)
@pass_context
def export(ctx: CliContext, since: str | None, until: str | None, output: Path | None) -> None:
    """Write events as JSON lines."""
    start, end = moment(since), moment(until)
    auditing = ctx.yard().audit
    if output is None:
        auditing.export(sys.stdout, since=start, until=end)
        return
    count = auditing.export(output, since=start, until=end)
    console.print(f"wrote {count} events to {output}")


@audit.command("search")
@click.option("--actor", default=None)
@click.option(
    "--action", default=None, help="Prefix, e.g. 'create' ('POST /api/v1/' for refusals)."
)
@click.option("--resource", default=None, help="Prefix, e.g. 'runs/' or 'users/ana'.")
@click.option("--since", default=None)
@click.option("--limit", default=100, type=click.IntRange(1, 100_000))
@click.option("--workspace", default=None, help="Changes and requests in this workspace.")
@json_option
@pass_context
def search(
    ctx: CliContext,
    actor: str | None,
    action: str | None,
    resource: str | None,
    since: str | None,
    limit: int,
    workspace: str | None,
    as_json: bool,
) -> None:
    events = ctx.yard().audit.events(
        actor=actor,
        action=action,
        resource=resource,
        since=moment(since),
        limit=limit,
        workspace=workspace,
    )
    if as_json:
        emit_json(events)
        return
    rows = [(e.id, when(e.at), e.actor, e.action, e.outcome, e.status, e.client) for e in events]
    console.print(
        table("audit events", ["id", "at", "actor", "action", "outcome", "status", "client"], rows)
    )


@click.command()
@click.argument("node")
@click.option(
    "--openlineage", is_flag=True, help="Print OpenLineage run events, one JSON per line."
)
@json_option
@pass_context
def lineage(ctx: CliContext, node: str, openlineage: bool, as_json: bool) -> None:
    """Upstream and downstream of NODE: dataset:NAME, run:ID, version:MODEL/N,
    endpoint:NAME or prediction:ENDPOINT/ID."""
    graph = ctx.yard().lineage(node)
    if openlineage:
        from modelyard.governance.openlineage import to_openlineage

        for event in to_openlineage(graph):
            click.echo(json.dumps(event, separators=(",", ":")))
        return
    if as_json:
        emit_json(graph)
        return
    by_ref = {n.ref: n for n in graph.nodes}
    console.print(f"[bold]{graph.root}[/bold] {by_ref[graph.root].label}")
    for title, nodes in (("upstream", graph.upstream()), ("downstream", graph.downstream())):
        rows = []
        for found in nodes:
            relations = sorted(
                {e.relation for e in graph.edges if found.ref in (e.source, e.target)}
            )
            rows.append((found.kind, found.key, found.label, ", ".join(relations)))
        if rows:
            console.print(table(title, ["kind", "key", "name", "relations"], rows))


@click.group()
def dataset() -> None:
    """Logged datasets: their content versions, stored content and sensitivity classes."""


@dataset.command("classify")
@click.argument("name")
@click.argument("classes", nargs=-1)
@click.option("--clear", is_flag=True, help="Remove every class.")
@pass_context
def classify_dataset(ctx: CliContext, name: str, classes: tuple[str, ...], clear: bool) -> None:
    """Set the sensitivity CLASSES (e.g. pii confidential) of dataset NAME."""
    if not classes and not clear:
        raise InvalidInput("give one or more classes (e.g. pii), or --clear")
    if classes and clear:
        raise InvalidInput("give classes or --clear, not both")
    found = ctx.yard().datasets.classify(name, list(classes))
    console.print(f"dataset {name}: {', '.join(found) or 'no sensitivity classes'}")


@dataset.command("versions")
@click.argument("name")
@json_option
@pass_context
def dataset_versions(ctx: CliContext, name: str, as_json: bool) -> None:
    """The content versions of dataset NAME (or of a content fingerprint), newest first."""
    found = ctx.yard().datasets.versions(name)
    if as_json:
        emit_json(found)
        return
    rows = [
        (d.name, d.fingerprint[:12], f"{d.row_count:,}", len(d.columns), _kept(d.stored, d.uri))
        for d in found
    ]
    columns = ["name", "fingerprint", "rows", "columns", "content"]
    console.print(table(f"dataset {name}", columns, rows))


def _kept(stored: bool, uri: str | None) -> str:
    return "kept by the yard" if stored else f"by reference: {uri or '-'}"


@dataset.command("download")
@click.argument("name")
@click.option("--fingerprint", default=None, help="This content version (default: the newest).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (default: NAME.parquet here).",
)
@pass_context
def download_dataset(
    ctx: CliContext, name: str, fingerprint: str | None, output: Path | None
) -> None:
    """Download the content the yard keeps of dataset NAME (or of a fingerprint) as Parquet."""
    written = ctx.yard().datasets.download(name, output, fingerprint=fingerprint)
    console.print(f"downloaded dataset {name} to {written}")


@dataset.command("classes")
@click.argument("name")
@json_option
@pass_context
def dataset_classes(ctx: CliContext, name: str, as_json: bool) -> None:
    found = ctx.yard().datasets.classes(name)
    if as_json:
        emit_json({"name": name, "classes": found})
        return
    console.print(f"dataset {name}: {', '.join(found) or 'no sensitivity classes'}")
