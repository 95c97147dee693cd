"""Model signatures: the input (and output) columns a version accepts, with types.

A signature is inferred from an input example and enforced at prediction time;
every violation names the column::

    >>> signature = infer_signature(frame.head())
    >>> enforce(signature, [{"age": "old"}])
    SignatureError: column 'age': expected integer, got 'old' at row 0

Importing this module does not import pandas: the frame work lives in
``packaging.frames`` and is loaded by the first call that needs it, so a serving
process whose signatures are all floats never loads pandas.
"""

from __future__ import annotations

import numbers
import threading
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from modelyard.errors import SignatureError

if TYPE_CHECKING:
    import pandas as pd

_NA_TYPES = ("NAType", "NaTType")
TYPES = ("integer", "float", "boolean", "string", "datetime")
# held while pandas is first imported, and while scikit-learn is imported without it
PANDAS_IMPORT = threading.Lock()


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class Signature:
    inputs: list[ColumnSpec]
    outputs: list[ColumnSpec] | None = None

    @property
    def input_names(self) -> list[str]:
        return [column.name for column in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        def specs(columns: list[ColumnSpec]) -> list[dict[str, Any]]:
            return [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in columns]

        return {
            "inputs": specs(self.inputs),
            "outputs": specs(self.outputs) if self.outputs is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        outputs = data.get("outputs")
        return cls(
            inputs=[ColumnSpec(**c) for c in data["inputs"]],
            outputs=[ColumnSpec(**c) for c in outputs] if outputs is not None else None,
        )

    def accepting_nulls(self) -> Signature:
        """This signature with every input nullable (for data that is not a request)."""
        inputs = [replace(column, nullable=True) for column in self.inputs]
        return Signature(inputs=inputs, outputs=self.outputs)


def frames() -> ModuleType:
    """``packaging.frames``, importing pandas on first use."""
    with PANDAS_IMPORT:
        from modelyard.packaging import frames

    return frames


def to_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, a dict of columns, a list of records or a 2-D array.

    NumPy arrays get the column names ``f0``, ``f1``, ...
    """
    return frames().to_frame(data)  # type: ignore[no-any-return]


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """The signature of ``input_example`` (and of ``output_example`` when given)."""
    return frames().infer_signature(input_example, output_example)  # type: ignore[no-any-return]


def enforce(signature: Signature, data: Any) -> pd.DataFrame:
    """``data`` as a frame with exactly the signature's columns, in order, with safe types.

    Extra columns are dropped; integers are widened to floats where the signature
    says float; anything else that does not fit raises ``SignatureError`` naming
    the column, the problem and the first bad row.
    """
    return frames().enforce(signature, data)  # type: ignore[no-any-return]


def is_missing(value: Any) -> bool:
    """None, a NaN or pandas' NA: what only a nullable column may hold."""
    if value is None or type(value).__name__ in _NA_TYPES:
        return True
    return isinstance(value, numbers.Real) and value != value  # NaN is the only such value


def is_number(value: Any) -> bool:
    """A real number that is not a boolean (True is no float, nor is "12.5")."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def null_problem(row: int) -> str:
    return f"null value at row {row} but the column is not nullable"


def value_problem(expected: str, value: Any, row: int) -> str:
    shown = value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value
    return f"expected {expected}, got {shown!r} at row {row}"


def check_float_rows(signature: Signature, values: list[list[Any]]) -> None:
    """Raise the ``SignatureError`` that ``enforce`` would for these rows of an
    all-float signature (one list per row, in the signature's column order), without
    pandas: the first column with a null it may not hold, or a value that is no number.
    """
    for index, spec in enumerate(signature.inputs):
        column = [line[index] for line in values]
        if not spec.nullable:
            row = next((r for r, value in enumerate(column) if is_missing(value)), None)
            if row is not None:
                raise SignatureError(spec.name, null_problem(row), row=row)
        for row, value in enumerate(column):
            if not (is_missing(value) or is_number(value)):
                raise SignatureError(spec.name, value_problem("float", value, row), row=row)
