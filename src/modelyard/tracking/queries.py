"""Read-side queries over runs: filtered, sorted pages and whole-experiment frames."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, exists, func, select

from modelyard.domain.runs import ExperimentSummary, RunPage
from modelyard.domain.search import parse_filter, parse_order_by
from modelyard.errors import InvalidInput, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database
from modelyard.tracking.runs import load_runs
from modelyard.tracking.search import build_run_query, decode_cursor, encode_cursor

if TYPE_CHECKING:  # serving processes import this module and never load pandas
    import pandas as pd

MAX_PAGE = 10_000
_ATTRIBUTE_COLUMNS = ["run_id", "experiment", "name", "status", "user", "start_time", "end_time"]


def _fingerprint(experiment_ids: list[int] | None, filter: str | None, order_by: Any) -> str:
    key = json.dumps([experiment_ids, filter or "", order_by or ""], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class RunQueries:
    """Search runs with the filter language and load them as pages or a DataFrame."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _query(
        self,
        experiment_ids: list[int] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
        limit: int | None,
        offset: int,
    ) -> Select[Any]:
        ast = parse_filter(filter or "")
        keys = parse_order_by(order_by) if order_by else []
        return build_run_query(experiment_ids, ast, keys, limit, offset, self.db.dialect)

    def search(
        self,
        experiment_ids: list[int] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None,
        max_results: int = 100,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs; ``next_cursor`` is None on the last page."""
        if not 1 <= max_results <= MAX_PAGE:
            raise InvalidInput(f"max_results must be between 1 and {MAX_PAGE}, not {max_results}")
        fingerprint = _fingerprint(experiment_ids, filter, order_by)
        offset = decode_cursor(cursor, fingerprint) if cursor else 0
        query = self._query(experiment_ids, filter, order_by, max_results + 1, offset)
        with self.db.read() as conn:
            ids = [row[0] for row in conn.execute(query)]
            runs = load_runs(conn, ids[:max_results])
        more = len(ids) > max_results
        next_cursor = encode_cursor(offset + max_results, fingerprint) if more else None
        return RunPage(runs=runs, next_cursor=next_cursor)

    def summary(self, experiment: str) -> ExperimentSummary:
        """How many runs ``experiment`` has, its latest start, and its param, metric and
        tag keys (sorted): the columns its runs table can show."""
        r = t.runs.c
        with self.db.read() as conn:
            experiment_id = conn.execute(
                select(t.experiments.c.id).where(t.experiments.c.name == experiment)
            ).scalar()
            if experiment_id is None:
                raise NotFound(f"experiment '{experiment}' does not exist")
            count, last = conn.execute(
                select(func.count(), func.max(r.start_time)).where(r.experiment_id == experiment_id)
            ).one()
            params, metrics, tags = (
                _distinct_keys(conn, table, experiment_id)
                for table in (t.params, t.latest_metrics, t.tags)
            )
        return ExperimentSummary(experiment, int(count), last, params, metrics, tags)

    def frame(
        self,
        experiment_ids: list[int] | None,
        filter: str | None,
        order_by: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every matching run as a row: attributes, then ``params.*``, ``metrics.*``, ``tags.*``."""

        query = self._query(experiment_ids, filter, order_by, None, 0)
        ids = query.with_only_columns(query.selected_columns[0]).subquery()
        with self.db.read() as conn:
            order = [row[0] for row in conn.execute(query)]
            base = _attributes(conn, ids)
            wide = [
                _pivot_texts(conn, t.params, ids, "params."),
                _pivot_numbers(conn, t.latest_metrics, ids, "metrics."),
                _pivot_texts(conn, t.tags, ids, "tags."),
            ]
        frame = base.set_index("run_id")
        for part in wide:
            if not part.empty:
                frame = frame.join(part)
        return frame.reindex(order).reset_index()


def _distinct_keys(conn: Connection, table: Any, experiment_id: int) -> list[str]:
    """The keys of ``table`` some run of the experiment has, sorted.

    The keys are walked one by one along the (key, value) index (each step is the
    smallest key above the last), and each is kept once a run of the experiment is
    found to have it: a few index probes per key, not a pass over every row."""
    column = table.c.key
    walk = select(func.min(column).label("key")).cte("walk", recursive=True)
    following = select(column).where(column > walk.c.key).order_by(column).limit(1)
    walk = walk.union_all(select(following.scalar_subquery()).where(walk.c.key.is_not(None)))
    # driven by the experiment's runs, each probed on the table's (run_id, key) key
    has_key = (
        exists()
        .where(table.c.run_id == t.runs.c.id, table.c.key == walk.c.key)
        .correlate_except(table)
    )
    used = exists().where(t.runs.c.experiment_id == experiment_id, has_key)
    query = select(walk.c.key).where(walk.c.key.is_not(None), used).order_by(walk.c.key)
    return [str(key) for key in conn.execute(query).scalars()]


def _columns_frame(conn: Connection, query: Any, names: list[str]) -> pd.DataFrame:
    """Build the frame column by column: pandas is slow on SQLAlchemy row objects."""
    import pandas as pd

    rows = conn.execute(query).all()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pd.DataFrame({name: list(values) for name, values in zip(names, columns, strict=True)})


def _attributes(conn: Connection, ids: Any) -> pd.DataFrame:
    import pandas as pd

    r, e = t.runs.c, t.experiments.c
    query = (
        select(
            r.id.label("run_id"),
            e.name.label("experiment"),
            r.name,
            r.status,
            r.user,
            r.start_time,
            r.end_time,
        )
        .join(t.experiments, e.id == r.experiment_id)
        .where(r.id.in_(select(ids.c[0])))
    )
    frame = _columns_frame(conn, query, _ATTRIBUTE_COLUMNS)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    return frame


def _pivot_numbers(conn: Connection, table: Any, ids: Any, prefix: str) -> pd.DataFrame:
    """One float column per key, from rows: exact, and NaN and infinities survive."""
    import pandas as pd

    query = select(table.c.run_id, table.c.key, table.c.value).where(
        table.c.run_id.in_(select(ids.c[0]))
    )
    long = _columns_frame(conn, query, ["run_id", "key", "value"])
    if long.empty:
        return pd.DataFrame()
    wide = long.pivot(index="run_id", columns="key", values="value").astype("float64")
    wide.columns = [f"{prefix}{key}" for key in wide.columns]
    return wide


def _pivot_texts(conn: Connection, table: Any, ids: Any, prefix: str) -> pd.DataFrame:
    """One column per key: the database folds each run's text values into one JSON object."""
    import pandas as pd

    aggregate = (
        func.json_object_agg if conn.dialect.name == "postgresql" else func.json_group_object
    )
    query = (
        select(table.c.run_id, aggregate(table.c.key, table.c.value))
        .where(table.c.run_id.in_(select(ids.c[0])))
        .group_by(table.c.run_id)
    )
    rows = conn.execute(query).all()
    if not rows:
        return pd.DataFrame()
    run_ids, documents = zip(*rows, strict=True)
    records = [json.loads(doc) if isinstance(doc, str) else doc for doc in documents]
    wide = pd.DataFrame.from_records(records, index=list(run_ids))
    wide.columns = [f"{prefix}{key}" for key in wide.columns]
    return wide
