"""The quickstart: the whole core lifecycle on a dataset scikit-learn ships.

Trains three classifiers on the breast-cancer dataset, logs each as a run
(params, per-step metrics, the train and test datasets, an evaluation artifact,
the environment), registers each as a version of ``breast-cancer``, gives the
best one by ROC AUC the alias ``champion`` and moves it to staging. Running it
again adds new runs and versions and moves the alias to the best of the run.

Then it deploys: the champion answers 90% of the traffic of endpoint
``breast-cancer``, the runner-up 10% (a canary), and the third version is a
shadow. It serves the endpoint on a loopback port, sends a few hundred requests
with an endpoint key, posts the true labels, and prints the comparison of the
versions on the same requests.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modelyard.bootstrap import Services
from modelyard.cli.endpoints import compare_table
from modelyard.cli.output import number, table
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.clock import now_ms
from modelyard.config import DEFAULT_PORT
from modelyard.domain.identity import Role
from modelyard.domain.models import ModelVersion, Stage
from modelyard.domain.runs import Run
from modelyard.serving.inprocess import serve_in_thread

EXPERIMENT = "quickstart"
MODEL = "breast-cancer"
ENDPOINT = "breast-cancer"
CLIENT = "quickstart-client"
REQUESTS = 300
SEED = 7


@dataclass(frozen=True)
class QuickstartResult:
    runs: list[Run]
    versions: list[ModelVersion]
    champion: ModelVersion


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def load_split() -> Split:
    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.rename(columns=lambda c: c.replace(" ", "_"))
    x_train, x_test, y_train, y_test = train_test_split(
        features, bunch.target, test_size=0.25, random_state=SEED, stratify=bunch.target
    )
    return Split(x_train, x_test, y_train, y_test)


class ScaledSGD:
    """A linear model trained epoch by epoch, so every epoch's loss is a metric step."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.scaler = StandardScaler()
        self.model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=SEED)

    def fit_epoch(self, x: pd.DataFrame, y: pd.Series) -> None:
        if not hasattr(self.scaler, "mean_"):
            self.scaler.fit(x)
        self.model.partial_fit(self.scaler.transform(x), y, classes=np.array([0, 1]))

    def predict(self, x: pd.DataFrame) -> Any:
        return self.model.predict(self.scaler.transform(x))

    def predict_proba(self, x: pd.DataFrame) -> Any:
        return self.model.predict_proba(self.scaler.transform(x))


def _final_metrics(model: Any, split: Split) -> dict[str, float]:
    proba = model.predict_proba(split.test)[:, 1]
    return {
        "accuracy": float(accuracy_score(split.y_test, proba > 0.5)),
        "roc_auc": float(roc_auc_score(split.y_test, proba)),
        "log_loss": float(log_loss(split.y_test, proba)),
    }


def _train_sgd(yard: Yard, split: Split, alpha: float, epochs: int, step: Any) -> ModelVersion:
    params = {"model": "sgd-logistic", "alpha": alpha, "epochs": epochs, "seed": SEED}
    with yard.start_run(EXPERIMENT, name=f"sgd-alpha-{alpha}", params=params) as run:
        _log_data(run, split)
        model = ScaledSGD(alpha)
        for epoch in range(epochs):
            model.fit_epoch(split.train, split.y_train)
            train_proba = model.predict_proba(split.train)[:, 1]
            test_proba = model.predict_proba(split.test)[:, 1]
            run.log_metric("train_loss", log_loss(split.y_train, train_proba), step=epoch)
            run.log_metric("val_loss", log_loss(split.y_test, test_proba), step=epoch)
            step()
        return _finish(run, model, split)


def _train_gbm(yard: Yard, split: Split, stages: int, step: Any) -> ModelVersion:
    params = {"model": "gradient-boosting", "n_estimators": stages, "max_depth": 2, "seed": SEED}
    with yard.start_run(EXPERIMENT, name=f"gbm-{stages}", params=params) as run:
        _log_data(run, split)
        model = GradientBoostingClassifier(n_estimators=stages, max_depth=2, random_state=SEED)
        model.fit(split.train, split.y_train)
        staged = zip(
            model.staged_predict_proba(split.train),
            model.staged_predict_proba(split.test),
            strict=True,
        )
        for stage, (train_proba, test_proba) in enumerate(staged):
            run.log_metric("train_loss", log_loss(split.y_train, train_proba[:, 1]), step=stage)
            run.log_metric("val_loss", log_loss(split.y_test, test_proba[:, 1]), step=stage)
            step()
        return _finish(run, model, split)


def _log_data(run: Any, split: Split) -> None:
    run.log_dataset(
        split.train.assign(target=split.y_train), name="breast-cancer-train", role="training"
    )
    run.log_dataset(split.test.assign(target=split.y_test), name="breast-cancer-test", role="test")


def _finish(run: Any, model: Any, split: Split) -> ModelVersion:
    metrics = _final_metrics(model, split)
    run.log_metrics(metrics, step=0)
    predictions = model.predict(split.test)
    run.log_dict(
        {"labels": [0, 1], "matrix": confusion_matrix(split.y_test, predictions).tolist()},
        "evaluation/confusion_matrix.json",
    )
    version: ModelVersion = run.log_model(
        model,
        name=MODEL,
        input_example=split.train.head(5),
        description=f"{run.name} on {EXPERIMENT}",
    )
    return version


def _promote(yard: Yard, versions: list[ModelVersion]) -> ModelVersion:
    scores = {v.version: yard.runs.get(v.run_id or "").metrics["roc_auc"] for v in versions}
    best = max(versions, key=lambda v: (scores[v.version], v.version))
    yard.models.set_alias(MODEL, "champion", best.version)
    return yard.models.transition(
        best.ref, Stage.STAGING.value, comment="best ROC AUC of the quickstart"
    )


def run_quickstart(yard: Yard, console: Console | None = None) -> QuickstartResult:
    """Train, log, register and promote; print what happened and where it lives."""
    console = console or Console()
    started = now_ms()
    split = load_split()
    plan = [("sgd", 0.0001, 40), ("sgd", 0.01, 40), ("gbm", None, 60)]
    versions: list[ModelVersion] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for kind, alpha, steps in plan:
            label = f"training {kind}" + (f" (alpha={alpha})" if alpha else f" ({steps} stages)")
            task = progress.add_task(label, total=steps)
            advance = functools.partial(progress.advance, task)
            if kind == "sgd":
                versions.append(_train_sgd(yard, split, float(alpha or 0), steps, advance))
            else:
                versions.append(_train_gbm(yard, split, steps, advance))
        promote = progress.add_task("registering the champion", total=1)
        champion = _promote(yard, versions)
        progress.advance(promote)
    runs = [yard.runs.get(v.run_id or "") for v in versions]
    _report(yard, console, runs, champion)
    if isinstance(yard.backend, LocalBackend):
        _deploy(yard, yard.backend.services, console, split, versions, champion)
        _monitor(yard, yard.backend.services, console, split)
        _show_audit(yard.backend.services, console, started)
        console.print(
            f"[bold]see it all in the browser:[/bold] run `modelyard ui` and open the address "
            f"it prints (http://127.0.0.1:{DEFAULT_PORT}/signin#key=…): runs, models, the "
            "endpoint, its monitor, lineage and this audit trail"
        )
    return QuickstartResult(
        runs=runs, versions=[yard.models.version(v.ref) for v in versions], champion=champion
    )


def _report(yard: Yard, console: Console, runs: list[Run], champion: ModelVersion) -> None:
    rows = [
        [
            run.name,
            run.id[:12],
            run.status.value,
            run.params.get("model"),
            number(run.metrics.get("accuracy")),
            number(run.metrics.get("roc_auc")),
            number(run.metrics.get("log_loss")),
        ]
        for run in runs
    ]
    console.print(
        table("runs", ["run", "id", "status", "model", "accuracy", "roc_auc", "log_loss"], rows)
    )
    versions = yard.models.versions(MODEL)[-6:]
    console.print(
        table(
            f"model {MODEL} (latest versions)",
            ["version", "stage", "aliases", "run", "flavor"],
            [
                [v.version, v.stage.value, ", ".join(v.aliases), (v.run_id or "")[:12], v.flavor]
                for v in versions
            ],
        )
    )
    where = f"version {champion.version} ({champion.stage.value})"
    console.print(f"champion: [bold]{MODEL}@champion[/bold] → {where}")
    console.print(f"data lives in: {yard.backend.location}")
    console.print(
        "next: modelyard runs list | modelyard models show breast-cancer | modelyard server"
    )


def _deploy(
    yard: Yard,
    services: Services,
    console: Console,
    split: Split,
    versions: list[ModelVersion],
    champion: ModelVersion,
) -> None:
    """Champion 90%, runner-up 10% canary, the third as a shadow; traffic; labels; compare."""
    scores = {v.version: yard.runs.get(v.run_id or "").metrics["roc_auc"] for v in versions}
    others = sorted(
        (v for v in versions if v.version != champion.version),
        key=lambda v: (scores[v.version], v.version),
        reverse=True,
    )
    routes = [f"{MODEL}/{champion.version}=90", f"{MODEL}/{others[0].version}=10"]
    shadows = [f"{MODEL}/{others[1].version}"]
    comment = "quickstart: champion with a 10% canary and a shadow"
    if any(e.name == ENDPOINT for e in yard.endpoints.list()):
        endpoint = yard.endpoints.update(ENDPOINT, routes=routes, shadows=shadows, comment=comment)
    else:
        endpoint = yard.endpoints.create(ENDPOINT, routes=routes, shadows=shadows, comment=comment)
    key = _endpoint_key(services)
    rows = split.test.to_dict(orient="records")
    truth = split.y_test.tolist()
    answered: dict[str, int] = {}
    with (
        serve_in_thread(services, [ENDPOINT]) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
    ):
        for i in range(REQUESTS):
            row = i % len(rows)
            answer = http.post(f"/endpoints/{ENDPOINT}/predict", json={"records": [rows[row]]})
            answer.raise_for_status()
            answered[answer.json()["ids"][0]] = truth[row]
        _wait_for_shadow(yard, list(answered))
    labels = list(answered.items())[: REQUESTS * 2 // 3]  # some labels have not arrived yet
    yard.endpoints.label(ENDPOINT, labels)
    since = min(_first_seen(yard, list(answered)), now_ms())
    console.print(
        f"endpoint [bold]{ENDPOINT}[/bold] revision {endpoint.revision}: "
        + ", ".join(f"{r.ref} {r.weight}%" for r in endpoint.spec.routes)
        + f"; shadow {shadows[0]}"
    )
    console.print(f"sent {REQUESTS} requests with an endpoint key, posted {len(labels)} labels")
    console.print(compare_table(ENDPOINT, yard.endpoints.compare(ENDPOINT, since=since)))
    _show_lineage(yard, console, next(iter(answered)))
    console.print(
        f"serve it: modelyard serve {ENDPOINT}   (then POST http://127.0.0.1:8701/endpoints/"
        f"{ENDPOINT}/predict with {{\"records\": [...]}} and 'Authorization: Bearer <key>';"
        " make a key with: modelyard admin key create USER --endpoint " + ENDPOINT + ")"
    )
    console.print(
        f"evidence: modelyard endpoint compare {ENDPOINT} | modelyard endpoint accuracy "
        f"{ENDPOINT} | modelyard endpoint revisions {ENDPOINT}"
    )


# column: factor. The champion leans on the two "worst_" features (about 8-9% of its
# importance each), so their drift is critical; mean_texture carries under 5%, so its
# drift is a warning only (monitoring/checks.UNIMPORTANT_SHARE)
DRIFT = {"worst_texture": 1.6, "worst_radius": 1.35, "mean_texture": 1.6}
WINDOW_ROWS = 100


def _monitor(yard: Yard, services: Services, console: Console, split: Split) -> None:
    """Drifted traffic after normal traffic: the endpoint's monitor flags the drifted
    features, alerts (log channel), opens a retraining request; then the HTML report."""
    yard.monitors.update(ENDPOINT, {"window": f"{WINDOW_ROWS} rows", "min_rows": 50})
    services.importances.wait(timeout=120)  # drift is weighed by the versions' feature importance
    rows = split.test.to_dict(orient="records")[:WINDOW_ROWS]
    drifted = [{k: v * DRIFT.get(k, 1.0) for k, v in row.items()} for row in rows]
    key = _endpoint_key(services)
    with (
        serve_in_thread(services, [ENDPOINT]) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
    ):
        for start in range(0, len(drifted), 10):
            body = {"records": drifted[start : start + 10]}
            http.post(f"/endpoints/{ENDPOINT}/predict", json=body).raise_for_status()
    report = yard.monitors.run(ENDPOINT)
    console.print(
        f"sent {len(drifted)} requests with {', '.join(DRIFT)} scaled up; "
        f"monitor [bold]{ENDPOINT}[/bold] ({WINDOW_ROWS}-row windows):"
    )
    grid = table(
        "monitor windows computed now",
        ["rows from", "rows", "severity", "drifted features"],
        [
            (w["start"], w["rows"], w["severity"], ", ".join(w["drifted"]) or "-")
            for w in report["computed"]
        ],
    )
    console.print(grid)
    for alert in report["alerts"]:
        console.print(
            f"alert {alert['event']} ({alert['severity']}) sent to the log: {alert['summary']}"
        )
    for request in yard.monitors.retraining_requests(ENDPOINT, status="open"):
        console.print(f"retraining request {request['id']} open: {request['reason']}")
    target = services.settings.home / "reports" / f"{ENDPOINT}-monitor.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    yard.monitors.report(ENDPOINT, target)
    console.print(f"monitoring report: {target}")


def _endpoint_key(services: Services) -> str:
    """A key that may only call the quickstart endpoint (its user is made on first use)."""
    identity = services.identity
    if not any(user.name == CLIENT for user in identity.list_users()):
        identity.create_user(CLIENT, Role.CONTRIBUTOR)
    _, token = identity.create_key(
        CLIENT, name="quickstart traffic", expires_in_days=1, endpoint=ENDPOINT
    )
    return token


def _wait_for_shadow(yard: Yard, ids: list[str], timeout: float = 20.0) -> None:
    """The shadow answers off the response path: wait until it has logged every request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shadowed = yard.endpoints.predictions(ENDPOINT, ids=ids, role="shadow", limit=None)
        if len(shadowed) >= len(ids):
            return
        time.sleep(0.1)


def _first_seen(yard: Yard, ids: list[str]) -> int:
    logged = yard.endpoints.predictions(ENDPOINT, ids=ids[:1], limit=1)
    return int(logged["ts"].iloc[0]) if len(logged) else now_ms()


def _show_lineage(yard: Yard, console: Console, prediction_id: str) -> None:
    """One prediction traced back to the datasets its version was trained on."""
    graph = yard.lineage(f"prediction:{ENDPOINT}/{prediction_id}")
    answered = next(
        e.source for e in graph.edges if e.target == graph.root and e.relation == "answered"
    )
    runs = [e.source for e in graph.edges if e.target == answered and e.source.startswith("run:")]
    datasets = sorted(
        {
            f"{n.label} ({e.relation}, {n.attributes.get('rows')} rows)"
            for e in graph.edges
            if e.target in runs
            for n in graph.nodes
            if n.ref == e.source
        }
    )
    console.print(
        f"lineage of prediction {prediction_id}: answered by {answered.split(':', 1)[1]}, "
        f"trained in {', '.join(r.split(':', 1)[1][:12] for r in runs)} "
        f"on {'; '.join(datasets)}  (modelyard lineage prediction:{ENDPOINT}/{prediction_id})"
    )


TRACKING_ACTIONS = (
    "create experiment",
    "create run",
    "log batch",
    "finish run",
    "log artifact",
    "log dataset",
)


def _show_audit(services: Services, console: Console, since: int) -> None:
    """The audit trail of what the quickstart changed (hash-chained; `modelyard audit verify`)."""
    events = services.audit.events(since=since)
    tracking = [e for e in events if e.action in TRACKING_ACTIONS]
    rows = [
        [event.actor, event.action, event.resource, _what(event.summary)]
        for event in events
        if event.action not in TRACKING_ACTIONS
    ]
    console.print(table("audit trail of this quickstart", ["who", "did", "to", "what"], rows))
    runs = len({e.resource.split("/")[1] for e in tracking if e.resource.startswith("runs/")})
    console.print(
        f"and {len(tracking)} tracking writes to {runs} runs (runs, metric batches, artifacts, "
        f"datasets): modelyard audit search --action 'log batch'"
    )
    console.print(f"{services.audit.verify()} audit events, hash chain intact")


def _what(summary: dict[str, Any]) -> str:
    before, after = summary.get("before") or {}, summary.get("after") or {}
    if "stage" in after:
        return f"{before.get('stage')} -> {after['stage']}"
    if "version" in after or "version" in before:
        return f"version {before.get('version') or '-'} -> {after.get('version') or '-'}"
    if "digest" in after:
        return f"package {str(after['digest'])[:12]}, run {str(after.get('run_id'))[:12]}"
    if "revision" in after:
        return f"revision {after['revision']}: {', '.join(after.get('changes', {})) or 'created'}"
    if "recorded" in after:
        return f"{after['recorded']} labels ({after['unknown']} unknown ids)"
    return _what_else(before, after)


def _what_else(before: dict[str, Any], after: dict[str, Any]) -> str:
    if "key_id" in after:
        scope = f", endpoint {after['endpoint']}" if after.get("endpoint") else ""
        return f"for {after.get('user')}{scope}"
    if "role" in after:
        return f"{after['role']} in {after.get('workspace')}"
    if "status" in after and "dataset" in after:
        return f"{after['status']}, from {after['dataset']}"
    if "windows" in after:
        return f"{after['windows']} windows, {after.get('alerts', 0)} alerts"
    if "changes" in after:
        toggled = "enabled" in after and before.get("enabled") != after["enabled"]
        changed = [*after["changes"], *(["enabled"] if toggled else [])]
        return f"set {', '.join(changed)}"
    if "spec" in after:
        return f"on {after['spec'].get('endpoint')}"
    return ""
