"""The evidence a reviewer reads off the prediction log: accuracy per version, and
the primary and its shadows side by side.

Each function takes a DuckDB connection holding a ``predictions`` view and a
``labels`` table (``PredictionLog`` prepares both, from files or the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

LATEST_LABELS = (
    "SELECT id, arg_max(label, seq) AS label, max(labelled_at) AS labelled_at "
    "FROM labels GROUP BY id"
)

# one row per version and role of ``compare`` (the SDK adds the ``outputs`` column)
COMPARE_COLUMNS = [
    "model",
    "version",
    "role",
    "requests",
    "errors",
    "agreement",
    "latency_p50_ms",
    "latency_p99_ms",
    "labelled",
    "accuracy",
]


def sql_filters(
    version: int | None,
    model: str | None,
    role: str | Sequence[str] | None,
    since: int | None,
    until: int | None,
    *,
    prefix: str = "",
) -> tuple[list[str], list[Any]]:
    """SQL conditions (with ``?`` parameters) for the given filters, and the parameters.

    ``role``: one role, or several (any of them)."""
    conditions: list[str] = []
    params: list[Any] = []
    roles = [role] if isinstance(role, str) else list(role or [])
    if len(roles) > 1:
        conditions.append(f"{prefix}role IN ({', '.join('?' * len(roles))})")
        params.extend(roles)
    for column, op, value in (
        ("version", "=", version),
        ("model", "=", model),
        ("role", "=", roles[0] if len(roles) == 1 else None),
        ("ts", ">=", since),
        ("ts", "<", until),
    ):
        if value is not None:
            conditions.append(f"{prefix}{column} {op} ?")
            params.append(value)
    return conditions, params


def accuracy(con: Any, since: int | None, until: int | None) -> list[dict[str, Any]]:
    """Per version and role: predictions, labelled predictions and accuracy."""
    conditions, params = sql_filters(None, None, None, since, until, prefix="p.")
    where = " AND ".join([*conditions, "p.error IS NULL"])
    sql = f"""
        SELECT p.model, p.version, p.role,
               count(*) AS predictions,
               count(l.label) AS labelled,
               avg(CASE WHEN l.label IS NULL THEN NULL
                        WHEN p.output = l.label THEN 1.0 ELSE 0.0 END) AS accuracy
        FROM predictions p LEFT JOIN ({LATEST_LABELS}) l ON l.id = p.id
        WHERE {where}
        GROUP BY p.model, p.version, p.role ORDER BY p.role, p.model, p.version
    """
    columns = ["model", "version", "role", "predictions", "labelled", "accuracy"]
    return [dict(zip(columns, row, strict=True)) for row in con.execute(sql, params).fetchall()]


def compare(con: Any, since: int | None, until: int | None) -> list[dict[str, Any]]:
    """The primary and each shadow side by side, on the requests the shadow saw.

    For each (model, version, role): requests, errors, agreement with the
    primary answer to the same request, latency p50/p99, accuracy where labels
    exist, and the distribution of outputs (shares of the most common values).
    """
    conditions, params = sql_filters(None, None, None, since, until)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    con.execute(f"CREATE TEMP TABLE window_rows AS SELECT * FROM predictions {where}", params)
    stats = con.execute(
        f"""
        SELECT s.model, s.version, s.role,
               count(*) AS requests,
               count(s.error) AS errors,
               avg(CASE WHEN s.role = 'primary' THEN NULL
                        WHEN s.error IS NULL AND s.output = p.output THEN 1.0
                        ELSE 0.0 END) AS agreement,
               quantile_cont(s.latency_ms, 0.5) AS latency_p50_ms,
               quantile_cont(s.latency_ms, 0.99) AS latency_p99_ms,
               count(l.label) AS labelled,
               avg(CASE WHEN l.label IS NULL OR s.error IS NOT NULL THEN NULL
                        WHEN s.output = l.label THEN 1.0 ELSE 0.0 END) AS accuracy
        FROM window_rows s
        LEFT JOIN window_rows p ON p.id = s.id AND p.role = 'primary'
        LEFT JOIN ({LATEST_LABELS}) l ON l.id = s.id
        GROUP BY s.model, s.version, s.role
        ORDER BY s.role, s.model, s.version
        """
    ).fetchall()
    rows = [dict(zip(COMPARE_COLUMNS, row, strict=True)) for row in stats]
    shares = con.execute(
        """
        SELECT model, version, role, output, count(*) AS n
        FROM window_rows WHERE error IS NULL
        GROUP BY model, version, role, output
        ORDER BY model, version, role, n DESC, output
        """
    ).fetchall()
    for row in rows:
        mine = [s for s in shares if s[:3] == (row["model"], row["version"], row["role"])]
        total = sum(s[4] for s in mine) or 1
        row["outputs"] = [
            {"value": orjson.loads(s[3]), "share": round(s[4] / total, 4)} for s in mine[:10]
        ]
    return rows
