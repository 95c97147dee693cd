"""``modelyard endpoint`` (the control plane) and ``modelyard serve`` (the data plane)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, moment, number, table, when
from modelyard.domain.endpoints import Endpoint, Spec
from modelyard.errors import InvalidInput

if TYPE_CHECKING:  # the client (and pandas) load only for commands that use a yard
    from modelyard.client.replay import Replay


@click.group()
def endpoint() -> None:
    """Endpoints: which versions answer traffic, with what weight, and what they answered."""


def _describe(spec: Spec) -> str:
    routes = ", ".join(f"{r.describe()} {r.weight}%" for r in spec.routes)
    shadows = ", ".join(s.describe() for s in spec.shadows)
    return routes + (f"; shadows: {shadows}" if shadows else "")


def _show(found: Endpoint) -> None:
    console.print(f"endpoint [bold]{found.name}[/bold] at revision {found.revision}")
    console.print(
        f"  routes:   {', '.join(f'{r.describe()} {r.weight}%' for r in found.spec.routes)}"
    )
    if found.spec.shadows:
        console.print(f"  shadows:  {', '.join(s.describe() for s in found.spec.shadows)}")
    batching = found.spec.batching
    console.print(
        f"  batching: up to {batching.max_batch_size} rows, wait {batching.max_wait_ms:g} ms"
    )
    console.print(
        f"  scaling:  {batching.min_replicas}-{batching.max_replicas} replicas on Ray Serve, "
        f"{batching.target_ongoing_requests:g} requests in flight each, "
        f"{batching.upscale_delay_s:g} s before adding and "
        f"{batching.downscale_delay_s:g} s before removing one"
    )


def _batching(
    max_batch_size: int | None, max_wait_ms: float | None, *scaling: float | None
) -> dict[str, Any] | None:
    """The batching settings given, with the scaling options' values (in
    ``SCALING_OPTIONS`` order); None when none was given."""
    settings: dict[str, Any] = {k: v for k, v in _scaling(*scaling).items() if v is not None}
    if max_batch_size is not None:
        settings["max_batch_size"] = max_batch_size
    if max_wait_ms is not None:
        settings["max_wait_ms"] = max_wait_ms
    return settings or None


SCALING_OPTIONS: list[tuple[str, str, type, str]] = [
    ("--min-replicas", "min_replicas", int, "Replicas kept on Ray Serve (1)."),
    ("--max-replicas", "max_replicas", int, "Replicas Ray Serve may scale up to (1)."),
    (
        "--target-ongoing-requests",
        "target_ongoing_requests",
        float,
        "Requests in flight per replica (2).",
    ),
    (
        "--upscale-delay",
        "upscale_delay_s",
        float,
        "Seconds more replicas must be wanted before one is added (3).",
    ),
    (
        "--downscale-delay",
        "downscale_delay_s",
        float,
        "Seconds fewer replicas must be wanted before one is removed (60).",
    ),
]


def scaling_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The Ray Serve scaling settings (``SCALING_OPTIONS``) as options of ``command``."""
    for flag, name, kind, text in reversed(SCALING_OPTIONS):
        command = click.option(flag, name, type=kind, default=None, help=text)(command)
    return command


def _scaling(*values: float | None) -> dict[str, Any]:
    """The scaling options' values (in ``SCALING_OPTIONS`` order) by setting name."""
    return {name: value for (_, name, _, _), value in zip(SCALING_OPTIONS, values, strict=True)}


ROUTE_HELP = "MODEL/VERSION=WEIGHT or MODEL@ALIAS=WEIGHT[,follow]; repeat for a split."
SHADOW_HELP = "MODEL/VERSION or MODEL@ALIAS[,follow]: gets a copy of every request; repeatable."


@endpoint.command("create")
@click.argument("name")
@click.option("--route", "routes", multiple=True, required=True, help=ROUTE_HELP)
@click.option("--shadow", "shadows", multiple=True, help=SHADOW_HELP)
@click.option(
    "--runtime",
    type=click.Choice(["native", "onnx"]),
    default="native",
    show_default=True,
    help="onnx: every --route serves its version's ONNX twin (as REF=W,onnx does).",
)
@click.option("--max-batch-size", type=int, default=None, help="Rows per model call (64).")
@click.option("--max-wait-ms", type=float, default=None, help="Hold a batch open (0).")
@scaling_options
@click.option("--description", default="")
@click.option("--comment", default="", help="Why: kept with the revision.")
@json_option
@pass_context
def create(
    ctx: CliContext,
    name: str,
    routes: tuple[str, ...],
    shadows: tuple[str, ...],
    runtime: str,
    max_batch_size: int | None,
    max_wait_ms: float | None,
    description: str,
    comment: str,
    as_json: bool,
    min_replicas: int | None,
    max_replicas: int | None,
    target_ongoing_requests: float | None,
    upscale_delay_s: float | None,
    downscale_delay_s: float | None,
) -> None:
    """Create endpoint NAME at revision 1."""
    created = ctx.yard().endpoints.create(
        name,
        routes=_on_runtime(routes, runtime),
        shadows=list(shadows),
        batching=_batching(
            max_batch_size,
            max_wait_ms,
            min_replicas,
            max_replicas,
            target_ongoing_requests,
            upscale_delay_s,
            downscale_delay_s,
        ),
        description=description,
        comment=comment,
    )
    emit_json(created) if as_json else _show(created)


@endpoint.command("update")
@click.argument("name")
@click.option("--route", "routes", multiple=True, help=ROUTE_HELP + " Replaces all routes.")
@click.option("--shadow", "shadows", multiple=True, help=SHADOW_HELP + " Replaces all shadows.")
@click.option("--no-shadows", is_flag=True, help="Remove every shadow.")
@click.option(
    "--runtime",
    type=click.Choice(["native", "onnx"]),
    default="native",
    show_default=True,
    help="onnx: every --route serves its version's ONNX twin (as REF=W,onnx does).",
)
@click.option("--max-batch-size", type=int, default=None)
@click.option("--max-wait-ms", type=float, default=None)
@scaling_options
@click.option("--description", default=None)
@click.option("--comment", default="", help="Why: kept with the revision.")
@json_option
@pass_context
def update(
    ctx: CliContext,
    name: str,
    routes: tuple[str, ...],
    shadows: tuple[str, ...],
    no_shadows: bool,
    runtime: str,
    max_batch_size: int | None,
    max_wait_ms: float | None,
    description: str | None,
    comment: str,
    as_json: bool,
    min_replicas: int | None,
    max_replicas: int | None,
    target_ongoing_requests: float | None,
    upscale_delay_s: float | None,
    downscale_delay_s: float | None,
) -> None:
    """Make a new revision of NAME; what is not given is kept."""
    if no_shadows and shadows:
        raise InvalidInput("give --shadow or --no-shadows, not both")
    updated = ctx.yard().endpoints.update(
        name,
        routes=_on_runtime(routes, runtime) if routes else None,
        shadows=[] if no_shadows else list(shadows) if shadows else None,
        batching=_batching(
            max_batch_size,
            max_wait_ms,
            min_replicas,
            max_replicas,
            target_ongoing_requests,
            upscale_delay_s,
            downscale_delay_s,
        ),
        description=description,
        comment=comment,
    )
    emit_json(updated) if as_json else _show(updated)


def _on_runtime(routes: tuple[str, ...], runtime: str) -> list[str]:
    """The routes as given, each marked ``,onnx`` when ``--runtime onnx`` asks for twins."""
    if runtime != "onnx":
        return list(routes)
    return [route if route.endswith(",onnx") else f"{route},onnx" for route in routes]


@endpoint.command("rollback")
@click.argument("name")
@click.option("--to", "to", type=int, default=None, help="Revision to return to (the previous).")
@click.option("--comment", default="")
@json_option
@pass_context
def rollback(ctx: CliContext, name: str, to: int | None, comment: str, as_json: bool) -> None:
    """Serve an earlier revision's routes again, as a new revision."""
    done = ctx.yard().endpoints.rollback(name, to, comment=comment)
    emit_json(done) if as_json else _show(done)


@endpoint.command("list")
@json_option
@pass_context
def list_endpoints(ctx: CliContext, as_json: bool) -> None:
    found = ctx.yard().endpoints.list()
    if as_json:
        emit_json(found)
        return
    rows = [(e.name, e.revision, _describe(e.spec), when(e.updated_at)) for e in found]
    console.print(table("endpoints", ["name", "revision", "serves", "changed"], rows))


@endpoint.command("show")
@click.argument("name")
@json_option
@pass_context
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    found = ctx.yard().endpoints.get(name)
    emit_json(found) if as_json else _show(found)


@endpoint.command("revisions")
@click.argument("name")
@json_option
@pass_context
def revisions(ctx: CliContext, name: str, as_json: bool) -> None:
    """Every revision of NAME: who, when, what changed."""
    found = ctx.yard().endpoints.revisions(name)
    if as_json:
        emit_json(found)
        return
    rows = [
        (r.revision, when(r.created_at), r.created_by, _describe(r.spec), r.comment) for r in found
    ]
    console.print(table(f"revisions of {name}", ["rev", "at", "by", "serves", "comment"], rows))


@endpoint.command("predictions")
@click.argument("name")
@click.option("--version", type=int, default=None)
@click.option("--role", type=click.Choice(["primary", "shadow", "batch"]), default=None)
@click.option("--since", default=None, help="ISO time (UTC) or a span ago: 30m, 2h, 7d.")
@click.option("--until", default=None)
@click.option("--id", "ids", multiple=True, help="Only these prediction ids.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--oldest-first", is_flag=True, help="The first predictions, oldest first.")
@click.option(
    "--output", type=click.Path(path_type=Path), default=None, help="Write .parquet or .csv."
)
@json_option
@pass_context
def predictions(
    ctx: CliContext,
    name: str,
    version: int | None,
    role: str | None,
    since: str | None,
    until: str | None,
    ids: tuple[str, ...],
    limit: int,
    oldest_first: bool,
    output: Path | None,
    as_json: bool,
) -> None:
    """Logged predictions of NAME with their labels: the latest, newest first.

    --output writes every matching prediction, oldest first."""
    frame = ctx.yard().endpoints.predictions(
        name,
        version=version,
        role=role,
        since=moment(since),
        until=moment(until),
        ids=list(ids) or None,
        limit=None if output else limit,
        newest_first=not (oldest_first or output),
    )
    if output is not None:
        _write_frame(frame, output)
        console.print(f"wrote {len(frame)} predictions to {output}")
        return
    if as_json:
        emit_json(frame.to_dict(orient="records"))
        return
    rows = [
        (r.id, when(r.ts), f"{r.model}/{r.version}", r.role, r.output, r.label, r.error)
        for r in frame.itertuples()
    ]
    columns = ["id", "at", "version", "role", "output", "label", "error"]
    console.print(table(f"predictions of {name}", columns, rows))


def _write_frame(frame: Any, output: Path) -> None:
    """Write ``frame`` with its moments (``ts``, ``*_at``: epoch milliseconds) as UTC
    timestamps, the same types in Parquet (timestamp with time zone) and CSV (ISO 8601)."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        if (column == "ts" or column.endswith("_at")) and frame[column].dtype.kind in "iuf":
            moments = pd.to_datetime(frame[column], unit="ms", utc=True)
            frame[column] = moments.astype("datetime64[ms, UTC]")
    if output.suffix == ".parquet":
        frame.to_parquet(output, index=False)
    elif output.suffix == ".csv":
        frame.to_csv(output, index=False)
    else:
        raise InvalidInput(f"cannot write '{output}': use a .parquet or .csv file name")


@endpoint.command("label")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option("--id", "prediction_id", default=None, help="One prediction id (with --label).")
@click.option("--label", default=None, help="Its ground truth (JSON, else text).")
@json_option
@pass_context
def label(
    ctx: CliContext,
    name: str,
    file: Path | None,
    prediction_id: str | None,
    label: str | None,
    as_json: bool,
) -> None:
    """Post ground truth: one with --id/--label, or a CSV or Parquet FILE with id and label."""
    import json

    if file is not None and (prediction_id or label):
        raise InvalidInput("give a FILE or --id with --label, not both")
    if file is not None:
        labels: Any = _read_labels(file)
    elif prediction_id is not None and label is not None:
        try:
            value = json.loads(label)
        except ValueError:
            value = label
        labels = {prediction_id: value}
    else:
        raise InvalidInput("give a FILE of labels, or --id and --label")
    result = ctx.yard().endpoints.label(name, labels)
    if as_json:
        emit_json(result)
        return
    console.print(f"recorded {result.recorded} label(s)")
    if result.unknown:
        shown = ", ".join(result.unknown[:10]) + (" ..." if len(result.unknown) > 10 else "")
        console.print(f"[yellow]{len(result.unknown)} unknown prediction id(s):[/yellow] {shown}")


def _read_labels(file: Path) -> Any:
    import pandas as pd

    if not file.is_file():
        raise InvalidInput(f"no such file: {file}")
    if file.suffix == ".parquet":
        frame = pd.read_parquet(file)
    elif file.suffix == ".csv":
        frame = pd.read_csv(file, dtype={"id": str})
    else:
        raise InvalidInput(f"cannot read labels from '{file}': use a .csv or .parquet file")
    return frame


@endpoint.command("accuracy")
@click.argument("name")
@click.option("--since", default=None, help="ISO time (UTC) or a span ago: 30m, 2h, 7d.")
@click.option("--until", default=None)
@json_option
@pass_context
def accuracy(
    ctx: CliContext, name: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """Accuracy per version and role over a time range, where labels exist."""
    frame = ctx.yard().endpoints.accuracy(name, since=moment(since), until=moment(until))
    if as_json:
        emit_json(frame.to_dict(orient="records"))
        return
    rows = [
        (f"{r.model}/{r.version}", r.role, r.predictions, r.labelled, number(r.accuracy))
        for r in frame.itertuples()
    ]
    columns = ["version", "role", "predictions", "labelled", "accuracy"]
    console.print(table(f"accuracy of {name}", columns, rows))


@endpoint.command("compare")
@click.argument("name")
@click.option("--since", default=None, help="ISO time (UTC) or a span ago: 30m, 2h, 7d.")
@click.option("--until", default=None)
@json_option
@pass_context
def compare(
    ctx: CliContext, name: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """Primary and shadows side by side: agreement, outputs, latency, accuracy."""
    found = ctx.yard().endpoints.compare(name, since=moment(since), until=moment(until))
    if as_json:
        emit_json(found.to_dict(orient="records"))
        return
    console.print(compare_table(name, found))


def compare_table(name: str, frame: Any) -> Any:
    """The rich table of ``yard.endpoints.compare``'s frame."""

    def shares(outputs: list[dict[str, Any]]) -> str:
        return ", ".join(f"{o['value']}: {o['share']:.0%}" for o in outputs[:4])

    def percent(value: Any) -> str:
        return "-" if value is None or value != value else f"{value:.1%}"

    found = frame.to_dict(orient="records")

    rows = [
        (
            f"{r['model']}/{r['version']}",
            r["role"],
            r["requests"],
            r["errors"],
            percent(r["agreement"]),
            number(r["latency_p50_ms"]),
            number(r["latency_p99_ms"]),
            r["labelled"],
            percent(r["accuracy"]),
            shares(r["outputs"]),
        )
        for r in found
    ]
    columns = [
        "version",
        "role",
        "requests",
        "errors",
        "agrees",
        "p50 ms",
        "p99 ms",
        "labelled",
        "accuracy",
        "outputs",
    ]
    return table(f"{name}: primary and shadows on the same requests", columns, rows)


@click.command()
@click.argument("endpoints", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8701, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--refresh", default=1.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds."
)
@click.option(
    "--max-body",
    default=4 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes (413 above).",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: replicas on Ray Serve, autoscaled by the endpoint's scaling settings.",
)
@click.option(
    "--ray-address",
    default=None,
    help="The Ray cluster (default: MODELYARD_RAY_ADDRESS, else Ray's own default).",
)
@click.option(
    "--replica-cpus",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 64),
    help="CPUs Ray reserves per replica (--backend ray).",
)
@pass_context
def serve(
    ctx: CliContext,
    endpoints: tuple[str, ...],
    host: str,
    port: int,
    refresh: float,
    max_body: int,
    backend: str,
    ray_address: str | None,
    replica_cpus: float,
) -> None:
    """Serve ENDPOINTS (default: all) for predictions; picks up revisions while running."""
    settings = ctx.store()  # the data plane reads endpoints from the store, never the API
    if backend == "ray":
        from modelyard.serving.rayserve import serve as run_on_ray

        run_on_ray(
            list(endpoints),
            host=host,
            port=port,
            settings=settings,
            refresh=refresh,
            max_body=max_body,
            address=ray_address,
            replica_cpus=replica_cpus,
        )
        return
    from modelyard.serving.server import serve as run

    run(
        list(endpoints),
        host=host,
        port=port,
        settings=settings,
        refresh=refresh,
        max_body=max_body,
    )


@endpoint.command("replay")
@click.argument("name")
@click.option("--id", "prediction_id", required=True, help="The logged prediction's id.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    help="Largest relative difference of a number that still matches.",
)
@json_option
@pass_context
def replay(ctx: CliContext, name: str, prediction_id: str, tolerance: float, as_json: bool) -> None:
    """Score a logged prediction's input again with the version that answered it.

    The version's package is checked against its recorded digest first. Exit 0 when
    the answer matches the log, 1 when it differs (each difference is printed).
    """
    found = ctx.yard().endpoints.replay(name, prediction_id, tolerance=tolerance)
    if as_json:
        emit_json({**found.__dict__, "ok": found.ok})
    else:
        _show_replay(found)
    if not found.ok:
        sys.exit(1)


def _show_replay(found: Replay) -> None:
    def answer(output: Any, scores: Any) -> str:
        shown = json.dumps(output)
        return shown if scores is None else f"{shown}  scores {json.dumps(scores)}"

    click.echo(
        f"prediction {found.prediction_id} of {found.endpoint}: {found.model}/{found.version} "
        f"(package {found.package_digest[:12]})"
    )
    click.echo(f"input:    {json.dumps(found.input)}")
    click.echo(f"logged:   {answer(found.logged_output, found.logged_scores)}")
    click.echo(f"replayed: {answer(found.replayed_output, found.replayed_scores)}")
    for difference in found.differences:
        click.echo(f"differs:  {difference}")
    click.echo("match" if found.ok else "MISMATCH")


@endpoint.command("retention")
@click.argument("name")
@click.option("--days", type=int, default=None, help="Keep predictions and labels this long.")
@click.option("--forever", is_flag=True, help="Keep everything (no retention).")
@pass_context
def retention(ctx: CliContext, name: str, days: int | None, forever: bool) -> None:
    """Set how long NAME's prediction log is kept; serving processes prune hourly."""
    if (days is None) == (not forever):
        raise InvalidInput("give --days N or --forever")
    found = ctx.yard().endpoints.set_retention(name, None if forever else days)
    kept = f"{found.retention_days} days" if found.retention_days else "forever"
    console.print(f"endpoint {name} keeps its predictions {kept}")


@endpoint.command("prune")
@click.argument("name")
@pass_context
def prune(ctx: CliContext, name: str) -> None:
    """Apply NAME's retention policy now: delete older predictions and labels."""
    deleted = ctx.yard().endpoints.prune(name)
    console.print(f"endpoint {name}: deleted {deleted} predictions past retention")


@endpoint.command("subject")
@click.argument("name")
@click.argument("column", required=False)
@click.option("--none", "clear", is_flag=True, help="No subject column.")
@pass_context
def subject(ctx: CliContext, name: str, column: str | None, clear: bool) -> None:
    """Set the input field COLUMN that identifies a data subject of NAME."""
    if (column is None) == (not clear):
        raise InvalidInput("give a COLUMN or --none")
    found = ctx.yard().endpoints.set_subject_column(name, None if clear else column)
    console.print(f"endpoint {name}: subject column {found.subject_column or 'none'}")


@endpoint.command("erase")
@click.argument("name")
@click.argument("subject_id")
@pass_context
def erase(ctx: CliContext, name: str, subject_id: str) -> None:
    """Delete every prediction and label of SUBJECT_ID on endpoint NAME (audited)."""
    deleted = ctx.yard().endpoints.erase(name, subject_id)
    console.print(f"endpoint {name}: erased {deleted} predictions of the subject")
