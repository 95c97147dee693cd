"""``modelyard explain``: why a version, an endpoint or a logged prediction answered so.

modelyard explain churn@champion rows.csv           # rows, by a version
modelyard explain churn-api rows.csv --endpoint     # rows, as the endpoint routes them
modelyard explain churn-api --id 3f9c0a1b-0000002a  # a logged prediction (stored)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelyard.cli.context import CliContext, json_option, pass_context
from modelyard.cli.output import console, emit_json, table
from modelyard.domain.explanations import Explanation
from modelyard.errors import InvalidInput


@click.command()
@click.argument("target")
@click.argument("rows", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--endpoint", "is_endpoint", is_flag=True, help="TARGET is an endpoint.")
@click.option("--id", "prediction_id", default=None, help="A logged prediction of endpoint TARGET.")
@click.option(
    "--version", default=None, help="With --endpoint: explain with this route (N or MODEL/N)."
)
@click.option("--top", type=int, default=None, help="Contributions listed per row (default 5).")
@json_option
@pass_context
def explain(
    ctx: CliContext,
    target: str,
    rows: Path | None,
    is_endpoint: bool,
    prediction_id: str | None,
    version: str | None,
    top: int | None,
    as_json: bool,
) -> None:
    """SHAP values of ROWS (.csv or .parquet) by version TARGET (churn@champion, churn/3),
    or by endpoint TARGET (--endpoint); or of a logged prediction of endpoint TARGET (--id)."""
    yard = ctx.yard()
    if prediction_id is not None:
        if rows is not None:
            raise InvalidInput("give ROWS or --id, not both")
        found = yard.endpoints.explain(target, id=prediction_id, top=top)
    else:
        if rows is None:
            raise InvalidInput("give a ROWS file (.csv or .parquet), or --id with an endpoint")
        frame = read_rows(rows)
        if is_endpoint:
            found = yard.endpoints.explain(target, frame, version=version, top=top)
        elif version is not None:
            raise InvalidInput("--version names a route of an endpoint: add --endpoint")
        else:
            found = yard.models.explain(target, frame, top=top)
    if as_json:
        emit_json(found)
        return
    show(found)


def read_rows(file: Path) -> Any:
    import pandas as pd

    if not file.exists():
        raise InvalidInput(f"no file '{file}'")
    if file.suffix == ".parquet":
        return pd.read_parquet(file)
    if file.suffix == ".csv":
        return pd.read_csv(file)
    raise InvalidInput(f"cannot read rows from '{file}': use a .csv or .parquet file")


def show(found: Explanation) -> None:
    where = f" (endpoint {found.endpoint})" if found.endpoint else ""
    what = f"prediction {found.prediction_id}" if found.prediction_id else "rows"
    console.print(f"{what} explained by {found.ref}{where} with the {found.method} explainer")
    for index, row in enumerate(found.rows):
        console.print(f"[bold]row {index}[/bold]: {row.text}", highlight=False)
        console.print(
            table(
                f"row {index}: {row.explained}, base value {row.base_value:.4g}",
                ["feature", "value", "contribution"],
                [[c.feature, c.value, f"{c.contribution:+.4g}"] for c in row.top],
            )
        )
