"""The data of one window: its logged predictions, read as typed columns.

``WindowData`` holds the window's logged predictions (with their newest labels)
and turns the logged JSON into typed columns with DuckDB; ``checks.evaluate``
checks it against the references.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.monitoring.profile import NUMERIC, Profile
from modelyard.monitoring.reference import CLASSIFICATION, PREDICTION, SCORE, Reference, score_of
from modelyard.serving.segments import duckdb_connection

if TYPE_CHECKING:
    import pyarrow as pa


class WindowData:
    """A window's logged predictions (``query`` rows with ``label``) as typed columns."""

    def __init__(self, table: pa.Table, start: int, end: int, kind: str) -> None:
        self.table = table
        self.start = start
        self.end = end
        self.kind = kind
        self._con: Any = None

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def labelled(self) -> int:
        if "label" not in self.table.schema.names:
            return 0
        return int(self.table.num_rows - self.table.column("label").null_count)

    def con(self) -> Any:
        if self._con is None:
            self._con = duckdb_connection()
            self._con.register("window_rows", self.table)
        return self._con

    def versions(self) -> list[tuple[str, int, int]]:
        """(model, version, rows) of the versions that answered, most rows first."""
        rows = (
            self.con()
            .sql(
                "SELECT model, version, count(*) AS n FROM window_rows "
                "GROUP BY model, version ORDER BY n DESC, model, version"
            )
            .fetchall()
        )
        return [(str(m), int(v), int(n)) for m, v, n in rows]

    def inputs(self, profile: Profile) -> tuple[pa.Table, dict[str, int], set[str]]:
        """(typed input columns, unreadable count per column, columns present at all)."""
        import pyarrow as pa

        names = list(profile.columns)
        if not names or not self.rows:
            return pa.table({n: pa.nulls(0) for n in names}), {}, set()
        select, params = [], []
        for index, name in enumerate(names):
            path = '$."' + name.replace('"', '\\"') + '"'
            raw = "json_extract_string(input, ?)"
            if profile.columns[name].kind == NUMERIC:
                select.append(f'TRY_CAST({raw} AS DOUBLE) AS "c{index}"')
                params.append(path)
                select.append(
                    f"count(*) FILTER (WHERE {raw} IS NOT NULL AND TRY_CAST({raw} AS DOUBLE) "
                    f'IS NULL) OVER () AS "bad{index}"'
                )
                params.extend([path, path])
            else:
                select.append(f'{raw} AS "c{index}"')
                params.append(path)
                select.append(f'0 AS "bad{index}"')
            select.append(f'count(json_extract(input, ?)) OVER () AS "has{index}"')
            params.append(path)
        table = self.con().sql(f"SELECT {', '.join(select)} FROM window_rows", params=params)
        arrow = table.to_arrow_table()
        values = pa.table({n: arrow.column(f"c{i}") for i, n in enumerate(names)})
        bad = {n: int(arrow.column(f"bad{i}")[0].as_py()) for i, n in enumerate(names)}
        present = {n for i, n in enumerate(names) if arrow.column(f"has{i}")[0].as_py()}
        return values, bad, present

    def of_version(self, model: str, version: int) -> WindowData:
        import pyarrow as pa

        mask = np.asarray(
            [
                m == model and v == version
                for m, v in zip(
                    self.table.column("model").to_pylist(),
                    self.table.column("version").to_pylist(),
                    strict=True,
                )
            ]
        )
        return WindowData(self.table.filter(pa.array(mask)), self.start, self.end, self.kind)

    def outputs(self, reference: Reference) -> dict[str, Any]:
        """``prediction`` (text or number), ``score`` (per reference), ``label`` text."""
        import pyarrow as pa

        outputs = self.table.column("output").to_pylist()
        columns: dict[str, Any] = {}
        if reference.task == CLASSIFICATION:
            columns[PREDICTION] = pa.array(outputs, pa.string())
        else:
            columns[PREDICTION] = pa.array([float_or_none(v) for v in outputs], pa.float64())
        matrix = self.scores()
        if matrix is not None:
            columns[SCORE] = pa.array(score_of(matrix, reference.classes))
        return columns

    def scores(self) -> np.ndarray[Any, Any] | None:
        import orjson

        raw = self.table.column("scores").to_pylist()
        if not raw or any(r is None for r in raw):
            return None
        return np.asarray([orjson.loads(r) for r in raw], dtype=np.float64)


def float_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is None or not a number."""
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def categorical_profile(name: str) -> Any:
    """A text column's profile, to read input column ``name`` with ``WindowData.inputs``."""
    from modelyard.monitoring.profile import CATEGORICAL, ColumnProfile

    return ColumnProfile(name, CATEGORICAL, "string")
