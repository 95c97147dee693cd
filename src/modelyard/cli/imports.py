"""``modelyard import``: bring runs and models over from MLflow.

    modelyard import mlflow --tracking-uri sqlite:///mlflow.db [--experiment churn]
    modelyard import mlflow-model mlruns/1/models/m-4f/artifacts --name churn

Both write through the SDK, so with ``--url`` they act through a server as the key's
user, and every change is in the audit log. Running an import again adds nothing twice.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.context import CliContext, pass_context
from modelyard.cli.output import console


@click.group(name="import")
def import_group() -> None:
    """Import experiments, runs and models from MLflow."""


@import_group.command(name="mlflow")
@click.option("--tracking-uri", required=True, help="The MLflow tracking store to read.")
@click.option("--experiment", default=None, help="Only this experiment (and its runs' versions).")
@pass_context
def import_mlflow_store(ctx: CliContext, tracking_uri: str, experiment: str | None) -> None:
    """Copy experiments, runs, registered models, versions and aliases from MLflow."""
    from modelyard.client.mlflow_import import import_mlflow

    summary = import_mlflow(ctx.yard(), tracking_uri, experiment=experiment)
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)


@import_group.command(name="mlflow-model")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The model to register the version under.")
@click.option("--description", default="", help="The version's description.")
@pass_context
def import_mlflow_folder(ctx: CliContext, directory: Path, name: str, description: str) -> None:
    """Register an MLflow model folder (MLmodel: sklearn, xgboost, lightgbm or pyfunc)."""
    from modelyard.client.mlflow_import import import_mlflow_model

    version = import_mlflow_model(ctx.yard(), directory, name, description=description)
    signature = "with" if version.signature else "without"
    console.print(
        f"registered {version.ref} ({version.flavor}, {signature} a signature)",
        markup=False,
        highlight=False,
    )
