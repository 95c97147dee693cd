"""The quickstart: the whole core lifecycle on a dataset scikit-learn ships.

Trains three classifiers on the breast-cancer dataset, logs each as a run
(params, per-step metrics, the train and test datasets, an evaluation artifact,
the environment), registers each as a version of ``breast-cancer``, gives the
best one by ROC AUC the alias ``champion`` and moves it to staging. Running it
again adds new runs and versions and moves the alias to the best of the run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

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

from modelyard.cli.output import number, table
from modelyard.client.yard import Yard
from modelyard.domain.models import ModelVersion, Stage
from modelyard.domain.runs import Run

EXPERIMENT = "quickstart"
MODEL = "breast-cancer"
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
