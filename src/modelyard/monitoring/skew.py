"""Training-serving skew: the live inputs against the training rows of the same entity.

Live rows are joined to the training dataset on the check's entity column (with
DuckDB); each feature reports the share of matched rows whose value differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.domain.monitors import Spec
from modelyard.monitoring.drift import CRITICAL, OK, WARN
from modelyard.monitoring.profile import NUMERIC, Profile
from modelyard.monitoring.reference import Reference
from modelyard.monitoring.results import Result
from modelyard.monitoring.window_data import WindowData, categorical_profile
from modelyard.serving.segments import duckdb_connection

if TYPE_CHECKING:
    import pyarrow as pa


def skew(
    spec: Spec,
    window: WindowData,
    reference: Reference,
    skew_rows: Callable[[Reference, str, str | None], pa.Table],
) -> list[Result]:
    """Share of live rows whose features differ from the training row of the same entity."""
    check = spec.checks.skew
    assert check is not None
    entity = check.entity_column
    names = [n for n in reference.inputs.columns if n != entity]
    profile = Profile(0, dict(reference.inputs.columns))
    if entity not in profile.columns:
        profile.columns[entity] = categorical_profile(entity)
    live, _, present = window.inputs(profile)
    if entity not in present:
        return [
            Result(
                "skew",
                "matched",
                None,
                WARN,
                entity,
                details={"error": f"the live inputs have no column '{entity}'"},
            )
        ]
    try:
        training = skew_rows(reference, entity, check.dataset)
    except Exception as error:
        return [Result("skew", "matched", None, WARN, entity, details={"error": str(error)[:500]})]
    con = duckdb_connection()
    con.register("live", live)
    con.register("training", training)
    quoted = '"' + entity.replace('"', '""') + '"'
    results = []
    matched_row = con.execute(
        f"SELECT count(*) FROM live l JOIN training t ON CAST(l.{quoted} AS VARCHAR) = "
        f"CAST(t.{quoted} AS VARCHAR)"
    ).fetchall()
    matched = int(matched_row[0][0])
    results.append(Result("skew", "matched", float(matched), OK, entity))
    if not matched:
        return results
    for name in names:
        if name not in training.schema.names:
            continue
        column = '"' + name.replace('"', '""') + '"'
        if reference.inputs.columns[name].kind == NUMERIC:
            differs = (
                f"abs(CAST(l.{column} AS DOUBLE) - CAST(t.{column} AS DOUBLE)) > "
                f"1e-9 * greatest(1, abs(CAST(t.{column} AS DOUBLE)))"
            )
        else:
            differs = f"CAST(l.{column} AS VARCHAR) IS DISTINCT FROM CAST(t.{column} AS VARCHAR)"
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE {differs}) FROM live l JOIN training t "
            f"ON CAST(l.{quoted} AS VARCHAR) = CAST(t.{quoted} AS VARCHAR)"
        ).fetchall()
        share = int(row[0][0]) / matched
        severity = CRITICAL if share > check.critical else WARN if share > check.warn else OK
        results.append(
            Result("skew", "mismatch_share", share, severity, name, details={"matched": matched})
        )
    return results
