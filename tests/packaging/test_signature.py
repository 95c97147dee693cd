from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import InvalidInput, SignatureError
from modelyard.packaging.signature import ColumnSpec, Signature, enforce, infer_signature


def _example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45],
            "income": [1.5, 2.0],
            "plan": ["a", "b"],
            "active": [True, False],
            "joined": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        }
    )


def test_inferred_types_and_round_trip() -> None:
    signature = infer_signature(_example(), output_example=np.array([0, 1]))
    assert [(c.name, c.type) for c in signature.inputs] == [
        ("age", "integer"),
        ("income", "float"),
        ("plan", "string"),
        ("active", "boolean"),
        ("joined", "datetime"),
    ]
    assert signature.outputs == [ColumnSpec("prediction", "integer")]
    assert Signature.from_dict(signature.to_dict()) == signature


def test_every_input_form_is_accepted() -> None:
    signature = infer_signature({"a": [1.0, 2.0], "b": [3, 4]})
    expected = pd.DataFrame({"a": [1.0], "b": [3]})
    for given in (
        {"a": [1.0], "b": [3]},
        {"a": 1.0, "b": 3},
        [{"b": 3, "a": 1.0, "extra": "dropped"}],
        pd.DataFrame({"b": [3], "a": [1]}),
    ):
        pd.testing.assert_frame_equal(enforce(signature, given), expected)
    array_signature = infer_signature(np.zeros((2, 3)))
    assert array_signature.input_names == ["f0", "f1", "f2"]
    assert enforce(array_signature, np.ones((1, 3))).shape == (1, 3)


def test_integers_widen_to_float_but_not_back() -> None:
    signature = infer_signature(pd.DataFrame({"x": [0.5], "n": [1]}))
    frame = enforce(signature, {"x": [1, 2], "n": [3.0, 4.0]})
    assert frame["x"].dtype == np.float64 and frame["n"].dtype == np.int64
    with pytest.raises(SignatureError, match=r"column 'n': expected integer, got 2.5 at row 1"):
        enforce(signature, {"x": [1, 2], "n": [3, 2.5]})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"income": 1.0, "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'age': missing",
        ),
        (
            [{"age": "old", "income": 1.0, "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'age': expected integer, got 'old' at row 0",
        ),
        (
            [{"age": 1, "income": "abc", "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'income': expected float, got 'abc' at row 0",
        ),
        (
            [{"age": 1, "income": None, "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'income': null value at row 0 but the column is not nullable",
        ),
        (
            [{"age": 1, "income": float("nan"), "plan": "a", "active": True, "joined": "2024"}],
            "column 'income': null value at row 0 but the column is not nullable",
        ),
        (
            [{"age": 1, "income": "12.5", "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'income': expected float, got '12.5' at row 0",
        ),
        (
            [{"age": 1, "income": True, "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'income': expected float, got True at row 0",
        ),
        (
            [{"age": "12", "income": 1.0, "plan": "a", "active": True, "joined": "2024-01-01"}],
            "column 'age': expected integer, got '12' at row 0",
        ),
        (
            [{"age": 1, "income": 1.0, "plan": 7, "active": True, "joined": "2024-01-01"}],
            "column 'plan': expected string",
        ),
        (
            [{"age": 1, "income": 1.0, "plan": "a", "active": "yes", "joined": "2024-01-01"}],
            "column 'active': expected boolean, got 'yes' at row 0",
        ),
        (
            [{"age": 1, "income": 1.0, "plan": None, "active": True, "joined": "2024-01-01"}],
            "column 'plan': null value at row 0",
        ),
        (
            [{"age": 1, "income": 1.0, "plan": "a", "active": True, "joined": "someday"}],
            "column 'joined': expected datetime, got 'someday' at row 0",
        ),
    ],
)
def test_violations_name_the_column(rows: list[dict[str, object]], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        enforce(infer_signature(_example()), rows)


def test_a_frame_with_nan_where_the_signature_allows_none_is_refused() -> None:
    signature = infer_signature(pd.DataFrame({"x": [0.5, 1.5], "y": [1.0, None]}))
    assert [c.nullable for c in signature.inputs] == [False, True]
    with pytest.raises(SignatureError, match=r"column 'x': null value at row 2 but the"):
        enforce(signature, pd.DataFrame({"x": [1.0, 2.0, np.nan], "y": [1.0, 2.0, 3.0]}))
    with pytest.raises(SignatureError, match=r"column 'x': expected float, got True at row 0"):
        enforce(signature, pd.DataFrame({"x": [True, False], "y": [1.0, 2.0]}))
    frame = enforce(signature, pd.DataFrame({"x": [1.0, 2.0], "y": [None, np.nan]}))
    assert frame["y"].isna().all()


def test_unusable_input_is_refused() -> None:
    signature = infer_signature(_example())
    with pytest.raises(InvalidInput, match="no rows"):
        enforce(signature, [])
    with pytest.raises(InvalidInput, match="cannot read model input of type str"):
        enforce(signature, "age=3")
