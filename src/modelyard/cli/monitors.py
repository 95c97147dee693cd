"""``modelyard monitor`` (monitors, results, alerts), ``profile`` and ``worker``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, moment, number, table, when
from modelyard.errors import InvalidInput


@click.group()
def monitor() -> None:
    """Monitors: drift, data quality, accuracy and SLOs of an endpoint's traffic."""


def _spec_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        data = json.loads(text)
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return data


def _show(found: dict[str, Any]) -> None:
    spec = found["spec"]
    state = "enabled" if found["enabled"] else "disabled"
    window = spec["window"]
    size = f"{window['size']} rows" if window["kind"] == "rows" else f"{window['size'] // 1000}s"
    console.print(f"monitor [bold]{found['name']}[/bold] of endpoint {spec['endpoint']} ({state})")
    console.print(
        f"  window:   {window['kind']}, {size}; checked every {spec['schedule'] // 1000}s"
    )
    checks = [k for k, v in spec["checks"].items() if isinstance(v, dict) and v.get("enabled")]
    console.print(f"  checks:   {', '.join(checks)}")
    channels = ", ".join(c.get("type", "?") for c in spec["alerts"]["channels"]) or "none"
    console.print(f"  alerts:   {channels} (from {spec['alerts']['min_severity']})")


@monitor.command("create")
@click.argument("name")
@click.option("--endpoint", required=True, help="The endpoint whose traffic it watches.")
@click.option("--window", default=None, help="Tumbling window: 1h, 15m, 1d or '500 rows'.")
@click.option("--schedule", default=None, help="How often a worker looks for due windows.")
@click.option("--spec", "spec_file", default=None, help="JSON file (or -) with more settings.")
@json_option
@pass_context
def create(
    ctx: CliContext,
    name: str,
    endpoint: str,
    window: str | None,
    schedule: str | None,
    spec_file: str | None,
    as_json: bool,
) -> None:
    """Create monitor NAME of an endpoint, with default checks unless --spec says more."""
    spec = _spec_file(spec_file)
    created = ctx.yard().monitors.create(
        name,
        endpoint=endpoint,
        window=window or spec.get("window"),
        schedule=schedule or spec.get("schedule"),
        checks=spec.get("checks"),
        alerts=spec.get("alerts"),
        min_rows=spec.get("min_rows"),
        traffic=spec.get("traffic"),
    )
    emit_json(created) if as_json else _show(created)


@monitor.command("update")
@click.argument("name")
@click.option("--spec", "spec_file", default=None, help="JSON file (or -): fields to change.")
@click.option("--window", default=None)
@click.option("--enable/--disable", "enabled", default=None)
@json_option
@pass_context
def update(
    ctx: CliContext,
    name: str,
    spec_file: str | None,
    window: str | None,
    enabled: bool | None,
    as_json: bool,
) -> None:
    """Change monitor NAME: merge the fields of --spec into its settings."""
    changes = _spec_file(spec_file)
    if window is not None:
        changes["window"] = window
    if not changes and enabled is None:
        raise InvalidInput("nothing to change: give --spec, --window, --enable or --disable")
    updated = ctx.yard().monitors.update(name, changes, enabled=enabled)
    emit_json(updated) if as_json else _show(updated)


@monitor.command("list")
@click.option("--endpoint", default=None)
@json_option
@pass_context
def list_monitors(ctx: CliContext, endpoint: str | None, as_json: bool) -> None:
    """Every monitor (of one endpoint)."""
    found = ctx.yard().monitors.list(endpoint)
    if as_json:
        emit_json(found)
        return
    rows = [
        (m["name"], m["spec"]["endpoint"], "yes" if m["enabled"] else "no", m["updated_by"])
        for m in found
    ]
    console.print(table("monitors", ["name", "endpoint", "enabled", "changed by"], rows))


@monitor.command("show")
@click.argument("name")
@json_option
@pass_context
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Monitor NAME's settings."""
    found = ctx.yard().monitors.get(name)
    emit_json(found) if as_json else _show(found)


@monitor.command("run")
@click.argument("name")
@json_option
@pass_context
def run(ctx: CliContext, name: str, as_json: bool) -> None:
    """Compute every due window of NAME now, send its alerts."""
    report = ctx.yard().monitors.run(name)
    if as_json:
        emit_json(report)
        return
    rows = [
        (w["start"], w["end"], w["rows"], w["severity"], ", ".join(w["drifted"]) or "-")
        for w in report["computed"]
    ]
    if rows:
        console.print(
            table(
                f"monitor {name}: windows computed",
                ["start", "end", "rows", "severity", "drifted"],
                rows,
            )
        )
    else:
        console.print(f"monitor {name}: no window was due")
    upcoming = report.get("next_window")
    if upcoming:
        console.print(_next_window_text(upcoming))
    for alert in report["alerts"]:
        console.print(f"alert {alert['event']} ({alert['severity']}): {alert['summary']}")
    for request in report["requests"]:
        console.print(f"retraining request opened: {request}")
    if report["refreshed"]:
        console.print(f"performance refreshed for {len(report['refreshed'])} windows (late labels)")


def _next_window_text(upcoming: dict[str, Any]) -> str:
    start, end, logged = upcoming["start"], upcoming["end"], upcoming["logged"]
    if upcoming["kind"] == "rows":
        size = end - start
        return (
            f"next window: rows {start} to {end - 1}, computed once full "
            f"({logged} of {size} rows logged, {size - logged} to go)"
        )
    text = f"next window: {when(start)} to {when(end)} UTC, computed once it has closed"
    if not logged:
        text += " (no predictions logged yet: windows begin with the first one)"
    return text


@monitor.command("windows")
@click.argument("name")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@pass_context
def windows(ctx: CliContext, name: str, limit: int, as_json: bool) -> None:
    """NAME's latest windows: rows, labels, severity, drifted columns."""
    found = ctx.yard().monitors.windows(name, limit=limit)
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            w["start"],
            w["status"],
            w["rows"],
            w["labelled"],
            w["severity"],
            ", ".join(d["column"] for d in (w["summary"] or {}).get("drifted", [])),
            w["error"],
        )
        for w in found
    ]
    columns = ["start", "status", "rows", "labelled", "severity", "drifted", "error"]
    console.print(table(f"monitor {name}: windows", columns, rows))


@monitor.command("results")
@click.argument("name")
@click.option("--check", default=None, help="drift, quality, output_drift, performance, ...")
@click.option("--column", default=None)
@click.option("--metric", default=None)
@click.option("--version", default=None, help="MODEL/VERSION")
@click.option("--since", default=None, help="ISO time or a span ago (2h, 7d).")
@click.option("--until", default=None)
@click.option("--output", default=None, help="Write CSV or Parquet instead of printing.")
@json_option
@pass_context
def results(
    ctx: CliContext,
    name: str,
    check: str | None,
    column: str | None,
    metric: str | None,
    version: str | None,
    since: str | None,
    until: str | None,
    output: str | None,
    as_json: bool,
) -> None:
    """NAME's results as a time series, one row per window and figure."""
    frame = ctx.yard().monitors.results(
        name,
        check=check,
        column=column,
        metric=metric,
        version=version,
        since=moment(since),
        until=moment(until),
    )
    if output is not None:
        _write(frame, Path(output))
        return
    if as_json:
        emit_json(frame.to_dict(orient="records"))
        return
    rows = [
        (r.window_start, r.check, r.metric, r.column, r.version, number(r.value), r.severity)
        for r in frame.itertuples()
    ]
    columns = ["window", "check", "metric", "column", "version", "value", "severity"]
    console.print(table(f"monitor {name}: results", columns, rows))


def _write(frame: Any, path: Path) -> None:
    frame = frame.assign(details=frame["details"].map(json.dumps))
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise InvalidInput(f"cannot write {path.name}: use a .csv or .parquet file")
    console.print(f"wrote {len(frame)} results to {path}")


@monitor.command("alerts")
@click.argument("name", required=False)
@click.option("--status", type=click.Choice(["firing", "resolved"]), default=None)
@click.option("--since", default=None)
@json_option
@pass_context
def alerts(
    ctx: CliContext, name: str | None, status: str | None, since: str | None, as_json: bool
) -> None:
    """Alerts of monitor NAME (default: all), newest first, with their deliveries."""
    found = ctx.yard().monitors.alerts(name, status=status, since=moment(since))
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            a["id"],
            a["monitor"],
            a["check"],
            a["severity"],
            a["status"],
            when(a["opened_at"]),
            when(a["resolved_at"]),
            a["acknowledged_by"],
            a["summary"],
            ", ".join(f"{d['channel']}:{d['status']}" for d in a["deliveries"]),
        )
        for a in found
    ]
    columns = ["id", "monitor", "check", "severity", "status", "opened", "resolved", "acked by"]
    console.print(table("alerts", [*columns, "summary", "sent"], rows))


@monitor.command("ack")
@click.argument("alert_id")
@click.option("--comment", default="", help="Who is on it, and what they do: kept with it.")
@pass_context
def acknowledge(ctx: CliContext, alert_id: str, comment: str) -> None:
    """Acknowledge alert ALERT_ID by hand (it keeps firing until its check is clean)."""
    found = ctx.yard().monitors.acknowledge(alert_id, comment=comment)
    console.print(
        f"alert {found['id']} ({found['monitor']}: {found['check']}, {found['status']}) "
        f"acknowledged by {found['acknowledged_by']}"
    )


@monitor.command("requests")
@click.argument("name", required=False)
@click.option("--status", type=click.Choice(["open", "triggered", "closed"]), default=None)
@json_option
@pass_context
def requests(ctx: CliContext, name: str | None, status: str | None, as_json: bool) -> None:
    """Retraining requests opened by alerts (of monitor NAME)."""
    found = ctx.yard().monitors.retraining_requests(name, status=status)
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            r["id"],
            r["monitor"],
            f"{r['model']}/{r['version']}" if r["version"] else r["model"],
            r["status"],
            when(r["created_at"]),
            r["reason"],
        )
        for r in found
    ]
    columns = ["id", "monitor", "model", "status", "opened", "reason"]
    console.print(table("retraining requests", columns, rows))


@monitor.command("close-request")
@click.argument("request_id")
@click.option("--comment", default="", help="Why: kept with the request.")
@pass_context
def close_request(ctx: CliContext, request_id: str, comment: str) -> None:
    """Close a retraining request (done, or not needed)."""
    closed = ctx.yard().monitors.close_request(request_id, comment=comment)
    console.print(f"retraining request {closed['id']} closed")


@monitor.command("report")
@click.argument("name")
@click.option("--output", default=None, help="HTML file to write (default: NAME-report.html).")
@pass_context
def report(ctx: CliContext, name: str, output: str | None) -> None:
    """Write NAME's self-contained HTML report: distributions, drift, accuracy, alerts."""
    target = Path(output or f"{name}-report.html")
    ctx.yard().monitors.report(name, target)
    console.print(f"report written to {target.resolve()}")


@monitor.command("reference")
@click.argument("version")
@click.option("--build", is_flag=True, help="(Re)build it from the run's stored dataset.")
@click.option("--dataset", default=None, help="The run's dataset to profile (default: training).")
@click.option("--target", default=None, help="The label column (default: guessed).")
@json_option
@pass_context
def reference(
    ctx: CliContext,
    version: str,
    build: bool,
    dataset: str | None,
    target: str | None,
    as_json: bool,
) -> None:
    """Show (or --build) the reference profile of VERSION (MODEL/N or MODEL@ALIAS)."""
    monitors = ctx.yard().monitors
    if build or dataset or target:
        found = monitors.build_reference(version, dataset=dataset, target=target)
    else:
        found = monitors.reference(version)
    if as_json:
        emit_json(found.to_dict())
        return
    console.print(
        f"reference of {found.ref}: {found.task} on dataset {found.dataset} "
        f"({found.inputs.rows} rows, {len(found.inputs.columns)} inputs)"
    )
    if found.performance:
        figures = ", ".join(f"{k} {number(v)}" for k, v in found.performance.items())
        console.print(f"  performance on {found.evaluated_on}: {figures}")
    _profile_table(found.inputs, f"{found.ref}: inputs")


def _profile_table(profile: Any, title: str) -> None:
    rows = []
    for column in profile.columns.values():
        if column.kind == "numeric":
            median = column.quantiles[50] if column.quantiles else None
            spread = (
                f"min {number(column.minimum)}  p50 {number(median)}  max {number(column.maximum)}"
            )
        else:
            top = sorted(column.categories.items(), key=lambda kv: -kv[1])[:3]
            spread = ", ".join(f"{k} ({v})" for k, v in top)
        rows.append((column.name, column.kind, column.type, f"{column.missing_rate:.1%}", spread))
    console.print(table(title, ["column", "kind", "type", "missing", "distribution"], rows))


@click.command("profile")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", default=None, help="Write the profile as JSON to this file.")
@json_option
def profile(path: Path, output: str | None, as_json: bool) -> None:
    """Profile a Parquet or CSV file: per column type, missing rate, quantiles or counts."""
    from modelyard.monitoring.profile import profile_file

    found = profile_file(path)
    if output is not None:
        Path(output).write_text(json.dumps(found.to_dict()))
        console.print(f"profile of {path.name} ({found.rows} rows) written to {output}")
        return
    if as_json:
        emit_json(found.to_dict())
        return
    _profile_table(found, f"{path.name}: {found.rows} rows")


@click.command("worker")
@click.option("--monitor", "monitors", multiple=True, help="Only these monitors (repeatable).")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600))
@click.option("--once", is_flag=True, help="Run every due monitor once, then exit.")
@click.option(
    "--lease",
    default=600.0,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds a window this worker dies on waits before another worker takes it "
    "(renewed while the window is computed).",
)
@pass_context
def worker(
    ctx: CliContext, monitors: tuple[str, ...], poll: float, once: bool, lease: float
) -> None:
    """Run monitors on their schedules until stopped (SIGINT or SIGTERM)."""
    import logging
    import signal
    import threading

    from modelyard.bootstrap import bootstrap
    from modelyard.monitoring.worker import Worker

    settings = ctx.store()  # workers share the store's row locks, never the API
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = bootstrap(settings)
    try:
        running = Worker(
            services.monitors, services.predictions, only=monitors, poll=poll, lease=lease
        )
        if once:
            reports = running.run_once(force=True)
            console.print(
                f"ran {len(reports)} monitors: "
                f"{sum(len(r.computed) for r in reports)} windows, "
                f"{sum(len(r.alerts) for r in reports)} alerts"
            )
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        running.run(stop)
    finally:
        services.close()
