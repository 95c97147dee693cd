"""Model input as pandas frames: conversion, signature inference and enforcement.

The pandas half of ``signature``: everything here needs pandas, so it is imported
only when a caller reads or checks a frame (the serving path of an all-float
signature never does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelyard.errors import InvalidInput, SignatureError
from modelyard.packaging.signature import (
    ColumnSpec,
    Signature,
    is_missing,
    is_number,
    null_problem,
    value_problem,
)


def to_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, a dict of columns, a list of records or a 2-D array.

    NumPy arrays get the column names ``f0``, ``f1``, ...
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame()
    elif isinstance(data, np.ndarray):
        array = data.reshape(1, -1) if data.ndim == 1 else data
        if array.ndim != 2:
            raise InvalidInput(f"expected a 2-D array, got {data.ndim} dimensions")
        frame = pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])
    elif isinstance(data, dict):
        frame = _frame_from_columns(data)
    elif isinstance(data, list) and all(isinstance(row, dict) for row in data):
        frame = pd.DataFrame.from_records(data)
    else:
        raise InvalidInput(
            f"cannot read model input of type {type(data).__name__}: pass a DataFrame, "
            "a dict of columns, a list of records or a 2-D array"
        )
    if len(frame) == 0:
        raise InvalidInput("model input has no rows")
    return frame


def _frame_from_columns(data: dict[str, Any]) -> pd.DataFrame:
    try:
        return pd.DataFrame({str(k): v if np.ndim(v) else [v] for k, v in data.items()})
    except ValueError as exc:
        raise InvalidInput(f"model input columns do not line up: {exc}") from None


def _type_of(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        return "float"
    return _type_of_objects(series)


def _type_of_objects(series: pd.Series) -> str:
    values = series.dropna()
    if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
        return "boolean"
    if len(values) and all(isinstance(v, int | np.integer) for v in values):
        return "integer"
    if len(values) and all(isinstance(v, float | int | np.number) for v in values):
        return "float"
    return "string"


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """The signature of ``input_example`` (and of ``output_example`` when given)."""
    inputs = _specs(to_frame(input_example))
    outputs = None
    if output_example is not None:
        output = (
            np.asarray(output_example)
            if not isinstance(output_example, pd.DataFrame)
            else output_example
        )
        outputs = _specs(
            to_frame(
                output
                if isinstance(output, pd.DataFrame)
                else pd.DataFrame({"prediction": np.ravel(output)})
            )
        )
    return Signature(inputs=inputs, outputs=outputs)


def _specs(frame: pd.DataFrame) -> list[ColumnSpec]:
    return [
        ColumnSpec(
            name=str(name), type=_type_of(frame[name]), nullable=bool(frame[name].isna().any())
        )
        for name in frame.columns
    ]


def enforce(signature: Signature, data: Any) -> pd.DataFrame:
    """``data`` as a frame with exactly the signature's columns, in order, with safe types.

    Extra columns are dropped; integers are widened to floats where the signature
    says float; anything else that does not fit raises ``SignatureError`` naming
    the column, the problem and the first bad row.
    """
    frame = to_frame(data)
    missing = [name for name in signature.input_names if name not in frame.columns]
    if missing:
        raise SignatureError(
            missing[0],
            f"missing from the input (expected columns: {', '.join(signature.input_names)})",
        )
    columns = {spec.name: _convert(frame[spec.name], spec) for spec in signature.inputs}
    return pd.DataFrame(columns, index=frame.index)


def _first_bad(series: pd.Series, bad: Any) -> tuple[Any, int]:
    position = int(np.flatnonzero(np.asarray(bad))[0])
    return series.iloc[position], position


def _convert(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    nulls = series.isna()
    if nulls.any() and not spec.nullable:
        row = int(np.flatnonzero(nulls.to_numpy())[0])
        raise SignatureError(spec.name, null_problem(row), row=row)
    converter = _CONVERTERS[spec.type]
    return converter(series, spec)


def _only_numbers(series: pd.Series, spec: ColumnSpec, expected: str) -> None:
    """Refuse strings ("12.5") and booleans where a number is expected."""
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return
    bad = ~series.map(lambda value: is_missing(value) or is_number(value)).astype(bool)
    if bad.any():
        value, row = _first_bad(series, bad)
        raise SignatureError(spec.name, value_problem(expected, value, row), row=row)


def _to_float(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    _only_numbers(series, spec, "float")
    return series.astype("float64")


def _to_integer(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    _only_numbers(series, spec, "integer")
    if pd.api.types.is_integer_dtype(series.dtype):
        return series
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.notna() & (converted % 1 != 0)
    if bad.any():
        value, row = _first_bad(series, bad)
        raise SignatureError(spec.name, value_problem("integer", value, row), row=row)
    if converted.isna().any():
        return converted.astype("Int64")
    return converted.astype("int64")


def _to_boolean(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series
    bad = ~series.map(lambda v: isinstance(v, bool | np.bool_) or v is None or v != v)
    if bad.any():
        value, row = _first_bad(series, bad)
        raise SignatureError(spec.name, value_problem("boolean", value, row), row=row)
    return series.astype("boolean") if series.isna().any() else series.astype(bool)


def _to_string(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        bad = ~series.map(lambda v: isinstance(v, str) or v is None or v != v)
        if bad.any():
            value, row = _first_bad(series, bad)
            raise SignatureError(spec.name, value_problem("string", value, row), row=row)
        return series
    raise SignatureError(
        spec.name, f"expected string, got {series.dtype} values like {series.iloc[0]!r}"
    )


def _to_datetime(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series
    converted = pd.to_datetime(series, errors="coerce")
    bad = converted.isna() & series.notna()
    if bad.any():
        value, row = _first_bad(series, bad)
        raise SignatureError(spec.name, value_problem("datetime", value, row), row=row)
    return converted


_CONVERTERS = {
    "float": _to_float,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "string": _to_string,
    "datetime": _to_datetime,
}
