"""A loaded version on the serving path: ``Model``, ``ModelLoader`` and its log lines.

A ``Model`` is one version loaded from its package (``ModelLoader`` finds the
version in the catalog, fetches its package from the artifact store and verifies
it against its digest). The serving process (``serving/runtime.py``) and the
shadow process (``serving/shadow_worker.py``) both serve through it, and both
log its answers with ``journal_lines``. Nothing here imports pandas: a model that needs
a frame loads it through ``packaging.frames`` on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelyard.artifacts.store import ArtifactStore
from modelyard.catalog.packages import package_directory
from modelyard.catalog.registry import Catalog
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import InvalidInput, ModelFailed
from modelyard.packaging import LoadedModel, load_package
from modelyard.packaging.flavors import Flavor, get_flavor, unnamed_features
from modelyard.packaging.package import INPUT_EXAMPLE
from modelyard.packaging.signature import Signature, check_float_rows, enforce, frames
from modelyard.serving.journal import canonical

if TYPE_CHECKING:
    import pandas as pd

# the types a JSON body's numbers arrive as; anything else is checked value by value
_PLAIN_NUMBERS = {float, int}


class Model:
    """One loaded version: turns request rows into what it needs, predicts a batch.

    An all-float signature becomes a 2-D NumPy array in the signature's column
    order; a scikit-learn model that reads arrays (``Flavor.reads_arrays``) is
    called with it directly, so serving it never imports pandas. Anything else is
    enforced into a pandas frame (pandas is loaded on first use).
    """

    def __init__(self, model: str, version: int, digest: str, loaded: LoadedModel) -> None:
        self.model = model
        self.version = version
        self.ref = f"{model}/{version}"
        self.digest = digest
        self.loaded = loaded
        self.signature: Signature = loaded.signature  # type: ignore[assignment]
        self.names = self.signature.input_names
        self._numeric = all(c.type == "float" for c in self.signature.inputs)
        self._refuses_nulls = not all(c.nullable for c in self.signature.inputs)
        native = loaded.model
        self._flavor = get_flavor(loaded.manifest.flavor)
        self._arrays = self._numeric and self._flavor.reads_arrays(native, self.names)
        self._classes = self._flavor.classes(native)
        self._output_form: tuple[str, int | None] | None = None

    @property
    def flavor(self) -> Flavor:
        return self._flavor

    @property
    def reads_arrays(self) -> bool:
        """Whether the model is called with a float array rather than a frame."""
        return self._arrays

    @property
    def classes(self) -> np.ndarray[Any, Any] | None:
        """The labels of the scores a classifier is served by; None for anything else."""
        return self._classes

    @property
    def knows_output_form(self) -> bool:
        """Whether ``output_form`` answers without calling the model."""
        return self._output_form is not None or self._classes is not None

    def output_form(self) -> tuple[str, int | None]:
        """(column type, width) of what ``predict`` answers per row: width None for one
        value a row, else that many values. A classifier served by its scores answers its
        labels; anything else is asked once, with the first row of the package's input
        example (a model may answer words, integers or several outputs a row); without
        one, the signature's outputs say, else one float a row."""
        if self._output_form is None:
            if self._classes is not None:
                self._output_form = (_type_of(self._classes.dtype), None)
            else:
                self._output_form = self._answered_form() or self._declared_form()
        return self._output_form

    def _answered_form(self) -> tuple[str, int | None] | None:
        path = self.loaded.directory / INPUT_EXAMPLE
        try:
            example = orjson.loads(path.read_bytes())
            row = dict(zip(example["columns"], example["data"][0], strict=True))
            answered = self.predict([self.prepare([row])])[0]
        except Exception:  # no example, or one the model does not answer: the signature says
            return None
        if isinstance(answered, ModelFailed):
            return None
        array = np.asarray(answered[0])
        if array.ndim not in (1, 2):
            return None
        return _type_of(array.dtype), (int(array.shape[1]) if array.ndim == 2 else None)

    def _declared_form(self) -> tuple[str, int | None]:
        declared = self.signature.outputs
        if not declared:
            return "float", None
        types = {column.type for column in declared}
        kind = types.pop() if len(types) == 1 else "string"
        return kind, (len(declared) if len(declared) > 1 else None)

    def prepare(self, rows: list[dict[str, Any]]) -> Any:
        """Rows as a 2-D float array (all-float signatures) or an enforced frame.

        Every problem raises ``SignatureError`` naming the column and row: on the
        array path a null in a column that may not hold one, a string or a boolean
        is refused with the same message ``enforce`` gives, without pandas.
        """
        if not self._numeric:
            return enforce(self.signature, rows)
        try:
            values = [[row[name] for name in self.names] for row in rows]
        except (KeyError, TypeError):
            return enforce(self.signature, rows)
        if not {type(v) for line in values for v in line} <= _PLAIN_NUMBERS:
            check_float_rows(self.signature, values)  # raises on the first bad value
        try:
            array = np.array(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return enforce(self.signature, rows)
        if array.ndim != 2:
            return enforce(self.signature, rows)
        if self._refuses_nulls and np.isnan(array).any():
            check_float_rows(self.signature, values)  # NaN outside nullable columns raises
        return array

    def predict(self, prepared: list[Any]) -> list[Any]:
        """One call for the whole batch; per request (outputs, scores) or an error."""
        try:
            if self._arrays and all(isinstance(p, np.ndarray) for p in prepared):
                # column-major, as a frame's values are: BLAS then sums exactly as for a frame
                features = np.asfortranarray(np.concatenate(prepared))
                outputs, scores = self.predict_array(features)
            else:
                outputs, scores = self.predict_frame(self._frame(prepared))
        except Exception as exc:
            failure = ModelFailed(f"{self.ref} failed: {type(exc).__name__}: {exc}")
            return [failure] * len(prepared)
        results: list[Any] = []
        start = 0
        for part in prepared:
            end = start + len(part)
            results.append((outputs[start:end], None if scores is None else scores[start:end]))
            start = end
        return results

    def predict_array(self, features: np.ndarray[Any, Any]) -> tuple[list[Any], list[Any] | None]:
        """(outputs, class probabilities or None) for a float array in signature order."""
        with unnamed_features():
            return self._answer(features)

    def predict_frame(self, frame: pd.DataFrame) -> tuple[list[Any], list[Any] | None]:
        """(outputs, class probabilities or None) for an enforced frame, as served."""
        return self._answer(frame)

    def _frame(self, prepared: list[Any]) -> pd.DataFrame:
        pd = frames().pd

        if all(isinstance(p, np.ndarray) for p in prepared):
            return pd.DataFrame(np.concatenate(prepared), columns=self.names)
        return pd.concat(
            [
                pd.DataFrame(p, columns=self.names) if isinstance(p, np.ndarray) else p
                for p in prepared
            ],
            ignore_index=True,
        )

    def _answer(self, features: Any) -> tuple[list[Any], list[Any] | None]:
        native = self.loaded.model
        if self._classes is not None:  # the flavor serves it by its class scores
            proba = np.asarray(self._flavor.predict_proba(native, features))
            outputs = self._classes[proba.argmax(axis=1)]
            return outputs.tolist(), proba.tolist()
        array = np.asarray(self._flavor.predict(native, features))
        if array.ndim == 0 or len(array) != len(features):
            raise InvalidInput(f"returned {array.size} outputs for {len(features)} rows")
        return array.tolist(), None


def _type_of(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iu":
        return "integer"
    if dtype.kind == "f":
        return "float"
    return "string"


class ModelLoader:
    """Versions as the catalog records them, loaded from their packages.

    >>> loader = ModelLoader(services.catalog, services.artifacts, settings.package_cache)
    >>> model = loader.load(loader.version("churn", 3))
    """

    def __init__(
        self,
        catalog: Catalog,
        artifacts: ArtifactStore,
        cache: Path,
        *,
        check_signature: Callable[[ModelVersion], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        self.cache = cache  # copies of packages from a remote artifact store, by digest
        # SigningService.check_loadable: a signed version's signature, before unpickling
        self.check_signature = check_signature

    def version(self, model: str, number: int) -> ModelVersion:
        """What the catalog records of ``model`` version ``number`` (its package digest)."""
        return self.catalog.get_version(ModelRef(model, number))

    def load(self, version: ModelVersion) -> Model:
        """Load ``version`` from its package, verified against its digest (and its
        signature, with ``check_signature``) before anything is unpickled."""
        if self.check_signature is not None:
            self.check_signature(version)
        directory = package_directory(
            self.artifacts, version.source, version.package_digest, self.cache
        )
        loaded = load_package(directory, version.package_digest)
        if loaded.signature is None:
            raise InvalidInput(f"{version.ref} has no signature")
        return Model(version.model, version.version, version.package_digest, loaded)


def journal_lines(
    endpoint: str,
    revision: int,
    model: Model,
    role: str,
    ids: list[str],
    rows: list[dict[str, Any]],
    answers: tuple[list[Any], list[Any] | None] | None,
    latency_ms: float,
    error: str | None,
) -> bytes:
    """The prediction log's JSON lines for one request: one line per row.

    ``answers`` is (outputs, scores or None), or None when the request failed.
    """
    outputs, scores = answers if answers is not None else (None, None)
    head = orjson.dumps(
        {
            "endpoint": endpoint,
            "revision": revision,
            "model": model.model,
            "version": model.version,
            "role": role,
            "ts": int(time.time() * 1000),
            "latency_ms": round(latency_ms, 3),
            "error": error,
        }
    )[1:-1]
    lines = []
    for index, prediction_id in enumerate(ids):
        output = b"null" if outputs is None else orjson.dumps(canonical(outputs[index]))
        score = b"null" if scores is None else orjson.dumps(_json(scores[index]))
        lines.append(
            b'{"id":"%s",%s,"input":%s,"output":%s,"scores":%s}\n'
            % (
                prediction_id.encode(),
                head,
                orjson.dumps(orjson.dumps(rows[index]).decode()),
                output,
                score,
            )
        )
    return b"".join(lines)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
