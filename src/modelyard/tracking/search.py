"""Compile a parsed run filter and order keys into one SQL query over the store.

Metrics compare the latest value (``latest_metrics``); params and tags compare as
text, except that a param compared to a number compares numerically (values
that are not numbers never match). A condition on a key a run does not have is
false, so ``not metrics.auc > 0.9`` matches runs without ``auc``. Sorting puts
missing values last in both directions and ends with start time and id, so
pages are stable.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from modelyard.domain.search import (
    And,
    Comparison,
    Field,
    InList,
    IsNull,
    Node,
    Not,
    Or,
    OrderKey,
    Value,
)
from modelyard.errors import InvalidInput
from modelyard.store import schema as t

_TABLES = {"params": t.params, "metrics": t.latest_metrics, "tags": t.tags}
_NUMBER_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def numeric_text(column: Any, dialect: str) -> ColumnElement[Any]:
    """``column`` (text) as a number, or NULL when it is not one, on either dialect."""
    if dialect == "postgresql":
        return case((column.op("~")(_NUMBER_PATTERN), cast(column, Float)), else_=None)
    return func.modelyard_number(column)  # registered on every SQLite connection


def _attribute(name: str) -> ColumnElement[Any]:
    r = t.runs.c
    columns: dict[str, ColumnElement[Any]] = {
        "status": r.status,
        "name": r.name,
        "run_id": r.id,
        "user": r.user,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "duration": r.end_time - r.start_time,
        "experiment": select(t.experiments.c.name)
        .where(t.experiments.c.id == r.experiment_id)
        .scalar_subquery(),
    }
    return columns[name]


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    operations = {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
        "like": lambda: column.like(value),
        "not like": lambda: column.not_like(value),
        "ilike": lambda: column.ilike(value),
        "not ilike": lambda: column.not_ilike(value),
    }
    result: ColumnElement[bool] = operations[op]()
    return result


def _normalise(field: Field, value: Value) -> Value:
    if isinstance(value, bool) and field.namespace != "metrics":
        return str(value)
    if field.namespace == "attributes" and field.name == "status" and isinstance(value, str):
        return value.upper()
    return value


class _Compiler:
    def __init__(self, dialect: str, joined: dict[Field, Any] | None = None) -> None:
        self.dialect = dialect
        self.joined = joined or {}  # fields already inner-joined for sorting

    def node(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*(self.node(part) for part in node.parts))
        if isinstance(node, Or):
            return or_(*(self.node(part) for part in node.parts))
        if isinstance(node, Not):
            return not_(self.node(node.part))
        if isinstance(node, IsNull):
            return self.is_null(node)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.comparison(node)

    def _value_column(self, field: Field, table: Any, sample: Value) -> Any:
        if (
            field.namespace == "params"
            and isinstance(sample, int | float)
            and not isinstance(sample, bool)
        ):
            return numeric_text(table.c.value, self.dialect)
        if field.namespace == "metrics":
            return table.c.value
        return table.c.value

    def _exists(self, field: Field, condition: Any) -> ColumnElement[bool]:
        if field in self.joined:
            result: ColumnElement[bool] = condition(self.joined[field])
            return result
        table = _TABLES[field.namespace]
        return exists().where(
            table.c.run_id == t.runs.c.id, table.c.key == field.name, condition(table)
        )

    def comparison(self, node: Comparison) -> ColumnElement[bool]:
        value = _normalise(node.field, node.value)
        if node.field.namespace == "attributes":
            return self._attribute_comparison(node.field.name, node.op, value)
        return self._exists(
            node.field,
            lambda table: _compare(self._value_column(node.field, table, value), node.op, value),
        )

    def _attribute_comparison(self, name: str, op: str, value: Value) -> ColumnElement[bool]:
        column = _attribute(name)
        if name == "status":
            column = func.upper(column)
        condition = _compare(column, op, value)
        return (
            and_(column.is_not(None), condition) if name in ("end_time", "duration") else condition
        )

    def in_list(self, node: InList) -> ColumnElement[bool]:
        values = [_normalise(node.field, v) for v in node.values]
        condition: ColumnElement[bool]
        if node.field.namespace == "attributes":
            column = _attribute(node.field.name)
            column = func.upper(column) if node.field.name == "status" else column
            condition = column.in_(values)
        else:
            condition = self._exists(
                node.field,
                lambda table: self._value_column(node.field, table, values[0]).in_(values),
            )
        return not_(condition) if node.negated else condition

    def is_null(self, node: IsNull) -> ColumnElement[bool]:
        if node.field.namespace == "attributes":
            column = _attribute(node.field.name)
            return column.is_not(None) if node.negated else column.is_(None)
        present = self._exists(node.field, lambda table: literal(True))
        return present if node.negated else not_(present)


def build_run_query(
    experiment_ids: list[int] | None,
    filter_ast: Node | None,
    order_keys: list[OrderKey],
    limit: int | None,
    offset: int,
    dialect: str = "sqlite",
) -> Select[Any]:
    """Run ids matching ``filter_ast`` in ``experiment_ids`` (all when None), ordered and paged."""
    r = t.runs.c
    query = select(r.id)
    query, order_clauses, joined = _order(query, order_keys, _required_fields(filter_ast))
    if experiment_ids is not None:
        query = query.where(r.experiment_id.in_(experiment_ids) if experiment_ids else false())
    if filter_ast is not None:
        query = query.where(_Compiler(dialect, joined).node(filter_ast))
    query = query.order_by(*order_clauses)
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def _required_fields(node: Node | None) -> set[Field]:
    """Fields every matching run must have: keys compared in a top-level conjunct."""
    parts = node.parts if isinstance(node, And) else (node,) if node is not None else ()
    required = set()
    for part in parts:
        if not isinstance(part, Comparison | InList) or part.field.namespace == "attributes":
            continue
        if not (isinstance(part, InList) and part.negated):
            required.add(part.field)
    return required


def _order(
    query: Select[Any], keys: list[OrderKey], required: set[Field]
) -> tuple[Select[Any], list[Any], dict[Field, Any]]:
    """Joins and ORDER BY clauses for ``keys``; also the tables joined for required fields."""
    clauses: list[Any] = []
    joined: dict[Field, Any] = {}
    for index, key in enumerate(keys):
        if key.field.namespace == "attributes":
            column = _attribute(key.field.name)
        else:
            present = key.field in required and key.field not in joined
            query, table = _join_order_table(query, key.field, index, present)
            column = table.c.value
            if present:
                joined[key.field] = table
        if key.field not in joined:
            clauses.append(column.is_(None))
        clauses.append(column.desc() if key.descending else column.asc())
    clauses.extend([t.runs.c.start_time.desc(), t.runs.c.id])
    return query, clauses, joined


def _join_order_table(
    query: Select[Any], field: Field, index: int, present: bool
) -> tuple[Select[Any], Any]:
    """Join the key's table for sorting; an inner join when the filter requires the key,
    so the database can walk the (key, value) index in order and stop early."""
    table = _TABLES[field.namespace].alias(f"order_{index}")
    on = and_(table.c.run_id == t.runs.c.id, table.c.key == field.name)
    joined = query.join(table, on) if present else query.outerjoin(table, on)
    return joined, table


def encode_cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    """The offset in ``cursor``; refuses a cursor made by a different search."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, owner = int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput(f"cursor {cursor[:40]!r} is not a valid page cursor") from None
    if owner != fingerprint or offset < 0:
        raise InvalidInput(
            "cursor does not belong to this search (filter, order or experiments changed)"
        )
    return offset
