from __future__ import annotations

import pytest

from modelyard.domain.search import (
    And,
    Comparison,
    Field,
    InList,
    IsNull,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelyard.errors import InvalidInput

AUC = Field("metrics", "auc")


def test_comparison_values_and_namespaces() -> None:
    assert parse_filter('metrics.auc > 0.9 and params.model = "rf"') == And(
        (Comparison(AUC, ">", 0.9), Comparison(Field("params", "model"), "=", "rf"))
    )
    assert parse_filter("metric.loss <= 1e-3") == Comparison(Field("metrics", "loss"), "<=", 0.001)
    assert parse_filter("attributes.start_time > 1700000000000") == Comparison(
        Field("attributes", "start_time"), ">", 1700000000000
    )
    assert parse_filter("tags.ok == true") == Comparison(Field("tags", "ok"), "=", True)
    assert parse_filter("params.x <> -2") == Comparison(Field("params", "x"), "!=", -2)
    assert parse_filter(r"tags.note = 'it\'s'") == Comparison(Field("tags", "note"), "=", "it's")


def test_names_with_dots_and_quotes() -> None:
    assert parse_filter("metrics.val.auc > 1") == Comparison(Field("metrics", "val.auc"), ">", 1)
    assert parse_filter("metrics.`my metric` > 1") == Comparison(
        Field("metrics", "my metric"), ">", 1
    )
    assert parse_filter('params."learning rate" = "0.1"') == Comparison(
        Field("params", "learning rate"), "=", "0.1"
    )


def test_precedence_not_and_or() -> None:
    a, b, c = (Comparison(Field("params", n), "=", "1") for n in "abc")
    assert parse_filter('params.a = "1" or params.b = "1" and params.c = "1"') == Or(
        (a, And((b, c)))
    )
    assert parse_filter('(params.a = "1" or params.b = "1") and params.c = "1"') == And(
        (Or((a, b)), c)
    )
    assert parse_filter('not params.a = "1" and params.b = "1"') == And((Not(a), b))


def test_in_null_like_and_attributes() -> None:
    assert parse_filter('params.C not in ("0.1", "1")') == InList(
        Field("params", "C"), ("0.1", "1"), True
    )
    assert parse_filter("tags.note is not null") == IsNull(Field("tags", "note"), True)
    assert parse_filter('params.model like "rand%"') == Comparison(
        Field("params", "model"), "like", "rand%"
    )
    assert parse_filter('status = "FAILED"') == Comparison(
        Field("attributes", "status"), "=", "FAILED"
    )
    assert parse_filter('id = "abc"') == Comparison(Field("attributes", "run_id"), "=", "abc")
    assert parse_filter("   ") is None and parse_filter(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc > and x", "position 15: expected a value after '>', found 'and'"),
        ("metrics.auc >", "position 14: expected a value after '>', found the end of the filter"),
        ("(metrics.auc > 1", "position 17: expected ')', found the end"),
        (
            "metrics.a > 1 params.b = 2",
            "position 15: expected 'and', 'or' or the end, found 'params.b'",
        ),
        ("foo = 1", "position 1: unknown attribute 'foo'"),
        ('metrics.auc = "high"', "position 13: metrics.auc is numeric"),
        ('params.x = "abc', "position 12: unterminated quoted string"),
        ("params.x ~ 1", "position 10: unexpected character '~'"),
        ("params.x in 1", "position 13: expected '(' after 'in'"),
        ("tags.x is 1", "position 11: expected 'null' after 'is'"),
        ("and = 1", "position 1: expected a field"),
        ("metrics.auc like 'x'", "position 13: metrics.auc is numeric: 'like' does not apply"),
    ],
)
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_order_by() -> None:
    assert parse_order_by("metrics.auc desc, params.C") == [
        OrderKey(AUC, True),
        OrderKey(Field("params", "C"), False),
    ]
    assert parse_order_by(["start_time DESC", "name asc"]) == [
        OrderKey(Field("attributes", "start_time"), True),
        OrderKey(Field("attributes", "name"), False),
    ]
    assert parse_order_by(None) == []
    with pytest.raises(InvalidInput, match="position 13: expected ',', 'asc', 'desc'"):
        parse_order_by("metrics.auc sideways")
