"""One loaded version scoring record batches: the signature enforced per batch, the
outputs as Arrow columns beside the input columns the user keeps.

>>> scorer = Scorer(load_package(directory, digest), keep=["id"])
>>> scorer.score(batch).schema.names
['id', 'prediction', 'score_0', 'score_1']

It answers as serving does (``serving/models.py``): a flavor that names its classes is
asked once, through ``predict_proba``, for the scores and the label (the class of the
highest score); anything else answers ``predict``. An all-float signature and a model
that reads arrays get a float array straight from the Arrow columns (no pandas), in the
type and order the model reads (``Flavor.array_layout``: columns of float64 by default,
rows of float32 for scikit-learn's trees, one copy instead of two); anything else an
enforced pandas frame. A batch that breaks the signature
raises ``SignatureError`` naming the column and the batch's row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from modelyard.domain.batch import PREDICTION, SCORE_PREFIX
from modelyard.errors import InvalidInput, SignatureError
from modelyard.packaging import LoadedModel
from modelyard.packaging.flavors import ArrayLayout, get_flavor, unnamed_features
from modelyard.packaging.signature import Signature, enforce, null_problem


class Scorer:
    """Score record batches with one loaded, verified version."""

    def __init__(self, loaded: LoadedModel, keep: list[str] | tuple[str, ...] = ()) -> None:
        if loaded.signature is None:
            raise InvalidInput("the version has no signature: batch scoring enforces one")
        self.loaded = loaded
        self.signature: Signature = loaded.signature
        self.names = self.signature.input_names
        self.keep = list(keep)
        self._flavor = get_flavor(loaded.manifest.flavor)
        native = loaded.model
        numeric = all(column.type == "float" for column in self.signature.inputs)
        self._arrays = numeric and self._flavor.reads_arrays(native, self.names)
        self._layout = self._flavor.array_layout(native)
        self._classes = self._flavor.classes(native)

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The kept input columns, ``prediction`` and (classifiers) ``score_<class>`` columns."""
        predictions, scores = self.predict(self.features(batch))
        columns = [batch.column(name) for name in self.keep]
        names = list(self.keep)
        columns.append(_arrow(predictions))
        names.append(PREDICTION)
        if scores is not None and self._classes is not None:
            for index, label in enumerate(self._classes.tolist()):
                columns.append(pa.array(scores[:, index]))
                names.append(f"{SCORE_PREFIX}{label}")
        return pa.RecordBatch.from_arrays(columns, names=names)

    def features(self, batch: pa.RecordBatch) -> Any:
        """The batch as the model reads it: a float array, or an enforced frame."""
        if self._arrays:
            array = _float_array(batch, self.signature, self._layout)
            if array is not None:
                return array
        present = [name for name in self.names if name in batch.schema.names]
        return enforce(self.signature, batch.select(present).to_pandas())

    def predict(self, features: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        """(predictions, class scores or None) for prepared ``features``."""
        native = self.loaded.model
        with unnamed_features():
            if self._classes is not None:
                proba = np.asarray(self._flavor.predict_proba(native, features))
                return self._classes[proba.argmax(axis=1)], proba
            answer = np.asarray(self._flavor.predict(native, features))
        if answer.ndim != 1 or len(answer) != len(features):
            raise InvalidInput(
                f"the model returned outputs of shape {answer.shape} for {len(features)} rows: "
                "batch scoring writes one prediction per row"
            )
        return answer, None


def _float_array(
    batch: pa.RecordBatch, signature: Signature, layout: ArrayLayout
) -> np.ndarray[Any, Any] | None:
    """An array of the signature's inputs in the model's ``layout`` (``Flavor.array_layout``:
    float64 in columns, as pandas gives it, so a linear model rounds as it would on the
    frame; float32 rows for a forest, which would copy its input into them anyway), or
    None when a column is missing or is not an integer or float column (the enforced
    frame then names the problem). A null or NaN in a column the signature does not mark
    nullable is refused here, naming the column and row, as ``enforce`` would: it never
    reaches the model."""
    schema = batch.schema
    for column in signature.inputs:
        if column.name not in schema.names:
            return None
        kind = schema.field(column.name).type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            return None
    dtype, order = layout
    array = np.empty((batch.num_rows, len(signature.inputs)), dtype=dtype, order=order)
    with np.errstate(over="ignore"):  # beyond float32: infinite, as the model's own cast makes it
        for index, column in enumerate(signature.inputs):
            array[:, index] = batch.column(column.name).to_numpy(zero_copy_only=False)
    strict = [i for i, column in enumerate(signature.inputs) if not column.nullable]
    if strict:
        _refuse_missing(array, strict, signature)
    return array


def _refuse_missing(array: np.ndarray[Any, Any], strict: list[int], signature: Signature) -> None:
    """Raise naming the first column (in the signature's order) that holds a null or NaN it
    may not hold, and its first such row."""
    columns = array if len(strict) == array.shape[1] else array[:, strict]
    # a column's sum is NaN only if it holds a NaN (or both infinities): a sum reads the
    # array once and allocates nothing, where isnan writes a mask as large as the batch
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, and no error
        sums = columns.sum(axis=0)
    if not np.isnan(sums).any():
        return
    missing = np.isnan(columns)
    flagged = missing.any(axis=0)
    if not flagged.any():
        return
    position = int(np.argmax(flagged))
    row = int(np.argmax(missing[:, position]))
    raise SignatureError(signature.inputs[strict[position]].name, null_problem(row), row=row)


def _arrow(values: np.ndarray[Any, Any]) -> pa.Array:
    if values.dtype == object:
        return pa.array(values.tolist())
    return pa.array(values)
