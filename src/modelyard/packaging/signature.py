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

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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
