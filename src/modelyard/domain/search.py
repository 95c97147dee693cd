"""The run filter language, parsed into a small tree (no I/O here).

    metrics.auc > 0.9 and params.model = "rf"
    (params.C in ("0.1", "1") or tags.team = 'a') and not status = "FAILED"
    tags.note is null            params.model like "rand%"

Fields are ``metrics.NAME``, ``params.NAME``, ``tags.NAME`` or an attribute
(``status``, ``name``, ``run_id``, ``experiment``, ``user``, ``start_time``,
``end_time``, ``duration``; optionally written ``attributes.status``). Names may
contain ``. - / :`` or be quoted in backticks or double quotes. ``and`` binds
tighter than ``or``; ``not`` tighter than both. A syntax error names the
1-based position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.errors import InvalidInput

ATTRIBUTES = (
    "status",
    "name",
    "run_id",
    "experiment",
    "user",
    "start_time",
    "end_time",
    "duration",
)
_ATTRIBUTE_ALIASES = {"id": "run_id", "run_name": "name"}
_NAMESPACES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not like", "not ilike")
Value = str | float | int | bool


@dataclass(frozen=True)
class Field:
    namespace: str  # metrics, params, tags or attributes
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: Value


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Comparison | InList | IsNull | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool = False


@dataclass(frozen=True)
class Token:
    kind: str  # name, string, number, op, lparen, rparen, comma, end
    text: str
    position: int  # 0-based offset


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<backtick>`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<name>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)


def _fail(text: str, position: int, message: str) -> InvalidInput:
    return InvalidInput(f"invalid filter at position {position + 1}: {message} (in: {text})")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None and text[position] in "\"'`":
            raise _fail(text, position, "unterminated quoted string")
        if match is None:
            raise _fail(text, position, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if token.kind == "string" else body


def _describe(token: Token) -> str:
    return "the end of the filter" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "name" and token.text.lower() in words

    def expect(self, kind: str, what: str) -> Token:
        if self.current.kind != kind:
            raise self.error(f"expected {what}, found {_describe(self.current)}")
        return self.advance()

    def error(self, message: str, token: Token | None = None) -> InvalidInput:
        return _fail(self.text, (token or self.current).position, message)

    def parse(self) -> Node:
        node = self.or_expr()
        if self.current.kind != "end":
            raise self.error(f"expected 'and', 'or' or the end, found {_describe(self.current)}")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.keyword("or"):
            self.advance()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.keyword("and"):
            self.advance()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Node:
        if self.keyword("not"):
            self.advance()
            return Not(self.not_expr())
        if self.current.kind == "lparen":
            self.advance()
            node = self.or_expr()
            self.expect("rparen", "')'")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        field = self.field()
        if self.keyword("is"):
            return self.is_null(field)
        negated = False
        if self.keyword("not"):
            self.advance()
            negated = True
            if not self.keyword("in", "like", "ilike"):
                raise self.error(
                    f"expected 'in', 'like' or 'ilike' after 'not', found {_describe(self.current)}"
                )
        if self.keyword("in"):
            self.advance()
            return InList(field, self.value_list(field), negated)
        op_token = self.current
        op = self.operator(negated)
        value = self.value(field, op_token)
        _check_types(self, field, op, value, op_token)
        return Comparison(field, op, value)

    def is_null(self, field: Field) -> Node:
        self.advance()
        negated = False
        if self.keyword("not"):
            self.advance()
            negated = True
        if not self.keyword("null"):
            raise self.error(f"expected 'null' after 'is', found {_describe(self.current)}")
        self.advance()
        return IsNull(field, negated)

    def operator(self, negated: bool) -> str:
        token = self.current
        if token.kind == "op":
            self.advance()
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        if self.keyword("like", "ilike"):
            self.advance()
            return f"not {token.text.lower()}" if negated else token.text.lower()
        raise self.error(
            "expected a comparison operator (=, !=, <, <=, >, >=, like, in, is), "
            f"found {_describe(token)}"
        )

    def field(self) -> Field:
        token = self.current
        if token.kind == "backtick":
            raise self.error(
                "expected a field such as metrics.auc, found a quoted name with no namespace"
            )
        if token.kind != "name" or token.text.lower() in ("and", "or", "not", "in", "is", "like"):
            raise self.error(
                f"expected a field such as metrics.auc or params.model, found {_describe(token)}"
            )
        self.advance()
        namespace, dot, rest = token.text.partition(".")
        if namespace.lower() in _NAMESPACES and (
            (dot and rest) or self._quoted_name_follows(token)
        ):
            name = rest or self._quoted_name()
            return self._make_field(_NAMESPACES[namespace.lower()], name, token)
        return self._make_field("attributes", token.text, token)

    def _quoted_name_follows(self, token: Token) -> bool:
        return token.text.endswith(".") and self.current.kind in ("backtick", "string")

    def _quoted_name(self) -> str:
        return _unquote(self.advance())

    def _make_field(self, namespace: str, name: str, token: Token) -> Field:
        if namespace != "attributes":
            return Field(namespace, name)
        attribute = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if attribute not in ATTRIBUTES:
            raise self.error(
                f"unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)}; "
                "use metrics.NAME, params.NAME or tags.NAME for logged values)",
                token,
            )
        return Field("attributes", attribute)

    def value(self, field: Field, after: Token) -> Value:
        token = self.current
        if token.kind == "string":
            self.advance()
            return _unquote(token)
        if token.kind == "number":
            self.advance()
            number = float(token.text)
            return (
                int(number)
                if number.is_integer() and not re.search(r"[.eE]", token.text)
                else number
            )
        if self.keyword("true", "false"):
            self.advance()
            return token.text.lower() == "true"
        raise self.error(f"expected a value after {after.text!r}, found {_describe(token)}")

    def value_list(self, field: Field) -> tuple[Value, ...]:
        opening = self.expect("lparen", "'(' after 'in'")
        values = [self.value(field, opening)]
        while self.current.kind == "comma":
            comma = self.advance()
            values.append(self.value(field, comma))
        self.expect("rparen", "')' or ','")
        return tuple(values)


_NUMERIC_ATTRIBUTES = ("start_time", "end_time", "duration")


def _check_types(parser: _Parser, field: Field, op: str, value: Value, token: Token) -> None:
    numeric_field = field.namespace == "metrics" or (
        field.namespace == "attributes" and field.name in _NUMERIC_ATTRIBUTES
    )
    if numeric_field and "like" in op:
        raise parser.error(f"{field} is numeric: '{op}' does not apply", token)
    if numeric_field and isinstance(value, str):
        raise parser.error(f"{field} is numeric: compare it to a number, not {value!r}", token)
    if "like" in op and not isinstance(value, str):
        raise parser.error(f"'{op}' needs a string pattern, not {value!r}", token)


def parse_filter(text: str | None) -> Node | None:
    """The tree for ``text``, or None for an empty filter."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(order_by: str | Sequence[str] | None) -> list[OrderKey]:
    """``"metrics.auc desc, params.C"`` (or a list of such) as order keys."""
    if not order_by:
        return []
    items = [order_by] if isinstance(order_by, str) else list(order_by)
    text = ", ".join(items)
    parser = _Parser(text)
    keys: list[OrderKey] = []
    while True:
        field = parser.field()
        descending = False
        if parser.keyword("asc", "desc"):
            descending = parser.advance().text.lower() == "desc"
        keys.append(OrderKey(field, descending))
        if parser.current.kind == "end":
            return keys
        parser.expect("comma", "',', 'asc', 'desc' or the end")
