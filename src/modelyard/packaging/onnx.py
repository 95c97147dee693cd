"""ONNX: convert a version's model for scoring at the edge, and serve the converted twin.

``convert`` turns a scikit-learn model (skl2onnx), or an XGBoost or LightGBM model
(onnxmltools), into an ``OnnxModel``: the ONNX graph run by onnxruntime, asked for
predictions and class scores as the original is. ``compare`` scores the same rows
with both and measures the largest difference; ``export_onnx`` writes a package of
flavor ``onnx`` (the signature carried over) only when that difference is within
the tolerance.

>>> loaded = load_package("out/churn")
>>> twin = convert(loaded)
>>> compare(loaded, twin, sample).largest
3.1e-08

onnx, onnxruntime, skl2onnx and onnxmltools (the ``onnx`` extra) are imported only
by the functions that use them.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.packaging.flavors import get_flavor
from modelyard.packaging.package import LoadedModel, Manifest, write_package
from modelyard.packaging.signature import enforce

if TYPE_CHECKING:
    import pandas as pd

ONNX_FILE = "model.onnx"
ONNX_SPEC = "onnx.json"
INPUT_NAME = "input"
DEFAULT_TOLERANCE = 1e-4
# the flavors a converter exists for, and the converter that handles each
CONVERTERS = {"sklearn": "skl2onnx", "xgboost": "onnxmltools", "lightgbm": "onnxmltools"}
NUMERIC_TYPES = ("float", "integer")


class OnnxModel:
    """An ONNX graph in an onnxruntime session, answering as the model it was made from.

    A classifier (``classes`` set) answers ``predict_proba`` from the graph's
    probabilities output and ``predict`` with the class of the highest score; a
    regressor (or a classifier served by its labels, as XGBoost's and LightGBM's are)
    answers ``predict`` with its first output.
    """

    def __init__(self, graph: bytes, classes: list[Any] | None, session: Any) -> None:
        self.graph = graph
        self.classes = classes
        self.session = session

    @classmethod
    def from_graph(cls, graph: bytes, classes: list[Any] | None) -> OnnxModel:
        """Open ``graph`` in onnxruntime (one thread per call: a serving process runs
        one call per batcher)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # converters declare shapes onnxruntime warns about
        session = onnxruntime.InferenceSession(
            graph, sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(graph, classes, session)

    @classmethod
    def load(cls, directory: Path) -> OnnxModel:
        spec = json.loads((directory / ONNX_SPEC).read_text())
        return cls.from_graph((directory / ONNX_FILE).read_bytes(), spec.get("classes"))

    def save(self, directory: Path) -> list[str]:
        (directory / ONNX_FILE).write_bytes(self.graph)
        spec = {"input": INPUT_NAME, "classes": self.classes}
        (directory / ONNX_SPEC).write_text(json.dumps(spec, indent=2))
        return [ONNX_FILE, ONNX_SPEC]

    def _run(self, features: Any) -> list[Any]:
        array = np.asarray(features, dtype=np.float32)
        outputs: list[Any] = self.session.run(None, {INPUT_NAME: array})
        return outputs

    def predict_proba(self, features: Any) -> np.ndarray[Any, Any]:
        if self.classes is None:
            raise InvalidInput("an ONNX regressor has no predict_proba")
        probabilities = self._run(features)[-1]
        return np.asarray(probabilities, dtype=np.float64)

    def predict(self, features: Any) -> np.ndarray[Any, Any]:
        if self.classes is not None:
            labels = np.asarray(self.classes)
            return labels[self.predict_proba(features).argmax(axis=1)]  # type: ignore[no-any-return]
        first = np.asarray(self._run(features)[0]).reshape(len(features))
        return first.astype(np.float64) if first.dtype.kind == "f" else first


@dataclass(frozen=True)
class Comparison:
    """How far the ONNX twin's answers are from the original's on ``rows`` rows.

    ``largest`` is the largest |onnx - original| / max(1, |original|) over every
    output (class scores for a classifier, predictions for a regressor), found at
    ``row`` in output ``output``.
    """

    rows: int
    largest: float
    row: int
    output: str
    tolerance: float

    @property
    def within(self) -> bool:
        return self.largest <= self.tolerance

    def describe(self) -> str:
        return (
            f"largest difference {self.largest:.3g} at row {self.row} ({self.output}) over "
            f"{self.rows} rows, tolerance {self.tolerance:g}"
        )


class OutputsDiffer(InvalidInput):
    """The ONNX twin does not answer as the original model within the tolerance."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison
        super().__init__(
            "the ONNX conversion does not answer as the original model: "
            f"{comparison.describe()}; nothing was written"
        )


def check_numeric(loaded: LoadedModel) -> list[str]:
    """The input columns, refusing a signature ONNX's float input cannot carry."""
    if loaded.signature is None:
        raise InvalidInput("an ONNX export needs the version's signature; this package has none")
    for column in loaded.signature.inputs:
        if column.type not in NUMERIC_TYPES:
            raise InvalidInput(
                f"an ONNX export takes numeric inputs: column '{column.name}' is {column.type}"
            )
    return loaded.signature.input_names


def convert(loaded: LoadedModel) -> OnnxModel:
    """The ONNX twin of ``loaded``: scikit-learn by skl2onnx, XGBoost and LightGBM by
    onnxmltools; another flavor is refused naming the converters tried."""
    flavor = loaded.manifest.flavor
    converter = _CONVERTERS.get(flavor)
    if converter is None:
        tried = ", ".join(f"{name} ({kind})" for kind, name in CONVERTERS.items())
        raise InvalidInput(
            f"cannot convert a '{flavor}' model to ONNX: no converter takes that flavor "
            f"(tried {tried})"
        )
    width = len(check_numeric(loaded))
    try:
        graph = converter(loaded.model, width)
    except Exception as exc:
        raise InvalidInput(
            f"{CONVERTERS[flavor]} could not convert the {flavor} model "
            f"({type(loaded.model).__name__}): {exc}"
        ) from None
    classes = get_flavor(flavor).classes(loaded.model)
    return OnnxModel.from_graph(graph, None if classes is None else classes.tolist())


def _sklearn(model: Any, width: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    types = [(INPUT_NAME, FloatTensorType([None, width]))]
    # class scores as one float tensor, not a list of {class: score} maps
    options = {"zipmap": False} if is_classifier(model) else None
    graph = convert_sklearn(model, initial_types=types, options=options)
    return bytes(graph.SerializeToString())


def _xgboost(model: Any, width: int) -> bytes:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [(INPUT_NAME, FloatTensorType([None, width]))]
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    names = booster.feature_names
    booster.feature_names = None  # the converter reads features by position (f0, f1, ...)
    try:
        graph = onnxmltools.convert_xgboost(model, initial_types=types)
    finally:
        booster.feature_names = names
    return bytes(graph.SerializeToString())


def _lightgbm(model: Any, width: int) -> bytes:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [(INPUT_NAME, FloatTensorType([None, width]))]
    graph = onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False)
    return bytes(graph.SerializeToString())


_CONVERTERS: dict[str, Callable[[Any, int], bytes]] = {
    "sklearn": _sklearn,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
}


def _answers(flavor_name: str, model: Any, features: Any, classifier: bool) -> np.ndarray[Any, Any]:
    flavor = get_flavor(flavor_name)
    if classifier:
        return np.asarray(flavor.predict_proba(model, features), dtype=np.float64)
    return np.asarray(flavor.predict(model, features), dtype=np.float64).reshape(len(features), -1)


def compare(
    loaded: LoadedModel, twin: OnnxModel, sample: Any, tolerance: float = DEFAULT_TOLERANCE
) -> Comparison:
    """Score ``sample`` (rows the signature accepts) with the original and with ``twin``."""
    check_numeric(loaded)
    assert loaded.signature is not None
    # reference data may hold nulls the input example did not show: both models see them
    frame = enforce(loaded.signature.accepting_nulls(), sample)
    if len(frame) == 0:
        raise InvalidInput("the sample to compare the ONNX conversion on has no rows")
    classifier = twin.classes is not None
    original = _answers(loaded.manifest.flavor, loaded.model, frame, classifier)
    converted = _answers("onnx", twin, frame.to_numpy(dtype=np.float64), classifier)
    gap = np.abs(converted - original) / np.maximum(1.0, np.abs(original))
    gap = np.where(np.isnan(original) & np.isnan(converted), 0.0, gap)
    gap = np.where(np.isnan(gap), np.inf, gap)
    row, column = np.unravel_index(int(np.argmax(gap)), gap.shape)
    if classifier and twin.classes is not None:
        output = f"score of class {twin.classes[int(column)]!r}"
    else:
        output = "prediction"
    return Comparison(len(frame), float(gap[row, column]), int(row), output, tolerance)


def export_onnx(
    loaded: LoadedModel,
    sample: pd.DataFrame,
    target: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    sample_name: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Manifest, Comparison]:
    """Convert ``loaded``, check it on ``sample``, and only then write the ONNX package.

    Raises ``OutputsDiffer`` (naming the largest difference) when the twin's answers
    are further than ``tolerance`` from the original's; ``target`` is then untouched.
    """
    twin = convert(loaded)
    comparison = compare(loaded, twin, sample, tolerance)
    if not comparison.within:
        raise OutputsDiffer(comparison)
    flavor = loaded.manifest.flavor
    record = {
        **(metadata or {}),
        "converted_from": loaded.manifest.flavor,
        "converter": f"{CONVERTERS[flavor]} {importlib.metadata.version(CONVERTERS[flavor])}",
        "check": {
            "sample": sample_name,
            "rows": comparison.rows,
            "largest_difference": comparison.largest,
            "tolerance": tolerance,
        },
    }
    example = loaded.input_example()
    manifest = write_package(
        twin,
        target,
        input_example=example,
        signature=loaded.signature,
        run_id=loaded.manifest.run_id,
        flavor="onnx",
        metadata=record,
    )
    return manifest, comparison
