"""SHAP explanations of a loaded version, bounded in rows and time.

``VersionExplainer`` explains rows with one version (a ``serving.models.Model``):
the version's flavor says how (``Flavor.explainer``): SHAP's tree explainer for
tree ensembles (XGBoost, LightGBM, CatBoost, scikit-learn's forests and gradient
boosting), its linear explainer for scikit-learn's linear models, and a
model-agnostic (kernel) explainer over the version's answers for anything else.
The linear and model-agnostic explainers compare with a bounded sample of the
version's reference data (its training dataset); the tree explainer reads the
trees themselves.

Each row gets its SHAP values, the base value, the explained output (the base
value plus every feature's value: a probability, log-odds or a prediction) and
its top contributions in plain words. A classifier's row is explained for the
class it predicted (for two classes scored by one margin, the second class).

``shap`` is imported on the first explanation only: a serving process that is
never asked to explain never loads it.

>>> explainer = VersionExplainer(model, background=None)
>>> explainer.explain([{"age": 41, "income": 52000.0}], top=3).rows[0].text
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.explanations import (
    LINEAR,
    MODEL_AGNOSTIC,
    TREE,
    Contribution,
    Explanation,
    RowExplanation,
    plain_words,
)
from modelyard.errors import InvalidInput, NotConfigured, NotFound, TooLarge

if TYPE_CHECKING:
    from modelyard.serving.models import Model

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
# the reference data of a version (a pandas frame of its input columns), None if it has none
Background = Callable[["Model"], Any]


@dataclass(frozen=True)
class Limits:
    """How much one explanation may cost: rows per request, seconds of computation,
    reference rows the linear and model-agnostic explainers compare with, and the
    model-agnostic explainer's coalitions per row.

    ``MODELYARD_EXPLAIN_MAX_ROWS`` and ``MODELYARD_EXPLAIN_SECONDS`` override the
    first two (``Limits.from_env``).
    """

    max_rows: int = 1000
    seconds: float = 10.0
    background_rows: int = 100
    agnostic_background: int = 30
    agnostic_samples: int = 512

    @classmethod
    def from_env(cls) -> Limits:
        rows = os.environ.get("MODELYARD_EXPLAIN_MAX_ROWS")
        seconds = os.environ.get("MODELYARD_EXPLAIN_SECONDS")
        try:
            return cls(
                max_rows=int(rows) if rows else cls.max_rows,
                seconds=float(seconds) if seconds else cls.seconds,
            )
        except ValueError:
            raise NotConfigured(
                "MODELYARD_EXPLAIN_MAX_ROWS must be an integer and MODELYARD_EXPLAIN_SECONDS "
                f"a number of seconds (got {rows!r} and {seconds!r})"
            ) from None


def _shap() -> Any:
    try:
        with warnings.catch_warnings():  # shap's plotting imports warn about matplotlib
            warnings.simplefilter("ignore")
            import shap
    except ImportError:
        raise NotConfigured(
            "explanations need the 'shap' package: install modelyard[explain]"
        ) from None
    return shap


class VersionExplainer:
    """The SHAP explainer of one loaded version, built on first use and reused.

    ``background`` is the version's reference data (a frame of its input columns),
    needed by the linear and model-agnostic explainers.
    """

    def __init__(self, model: Model, background: Any = None, limits: Limits | None = None) -> None:
        self.model = model
        self.background = background
        self.limits = limits or Limits()
        method = model.flavor.explainer(model.loaded.model)
        if method is None:
            raise InvalidInput(
                f"flavor '{model.flavor.name}' has no explainer, so {model.ref} cannot be explained"
            )
        self.method: str = method
        self._explainer: Any = None
        self._probabilities: bool | None = None  # does the explained output equal the scores
        self._lock = threading.Lock()

    # -- per row -----------------------------------------------------------------

    def explain(self, rows: list[dict[str, Any]], *, top: int = 5) -> Explanation:
        """SHAP values, base value, output and top ``top`` contributions of every row."""
        if len(rows) > self.limits.max_rows:
            raise TooLarge(
                f"{len(rows)} rows is more than the {self.limits.max_rows} one explanation "
                f"may hold; send at most {self.limits.max_rows}"
            )
        values, base, output, explained = self.values(self.model.prepare(rows))
        names = self.model.names
        _check_finite(values, base, output, names)
        out = []
        for index, row in enumerate(rows):
            shares = values[index]
            order = np.argsort(-np.abs(shares), kind="stable")[: max(top, 0)]
            chosen = [Contribution(names[i], row.get(names[i]), float(shares[i])) for i in order]
            text = plain_words(explained[index], float(output[index]), float(base[index]), chosen)
            out.append(
                RowExplanation(
                    values=dict(zip(names, shares.tolist(), strict=True)),
                    base_value=float(base[index]),
                    output=float(output[index]),
                    explained=explained[index],
                    top=chosen,
                    text=text,
                )
            )
        return Explanation(self.model.model, self.model.version, self.method, list(names), out)

    def values(self, prepared: Any) -> tuple[FloatArray, FloatArray, FloatArray, list[str]]:
        """(SHAP values per row and feature, base value per row, explained output per row,
        what each row's output is) for rows as ``Model.prepare`` returns them, computed in
        chunks and stopped past the time limit."""
        with self._lock:
            explainer = self._built()
            count = len(prepared)
            step = 1 if self.method == MODEL_AGNOSTIC else 256
            started = time.monotonic()
            parts = []
            for start in range(0, count, step):
                if start and time.monotonic() - started > self.limits.seconds:
                    raise TooLarge(
                        f"explaining {count} rows with {self.model.ref} stopped past the time "
                        f"limit of {self.limits.seconds:g} s after {start} rows; send fewer "
                        "rows at once"
                    )
                parts.append(self._chunk(explainer, self._features(prepared[start : start + step])))
            values = np.concatenate([p[0] for p in parts])
            base = np.concatenate([p[1] for p in parts])
            indexes = np.concatenate([p[2] for p in parts])
        output = base + values.sum(axis=1)
        return values, base, output, self._explained(prepared, indexes, output)

    # -- building ----------------------------------------------------------------------

    def _built(self) -> Any:
        if self._explainer is None:
            self._explainer = self._build()
        return self._explainer

    def _build(self) -> Any:
        shap = _shap()
        native = self.model.loaded.model
        if self.method == TREE:
            try:
                return shap.TreeExplainer(native)
            except Exception as exc:  # a tree model SHAP cannot read: explain its answers
                if self.background is None:
                    raise InvalidInput(
                        f"SHAP's tree explainer cannot read {self.model.ref} "
                        f"({type(native).__name__}: {exc})"
                    ) from None
                self.method = MODEL_AGNOSTIC
        background = self._background()
        if self.method == LINEAR:
            return shap.LinearExplainer(native, background)
        sample = shap.sample(background, self.limits.agnostic_background, random_state=0)
        return shap.KernelExplainer(self._answers, sample)

    def _background(self) -> FloatArray:
        if self.background is None or len(self.background) == 0:
            raise NotFound(
                f"{self.model.ref} has no reference data to explain against: its run kept no "
                f"training dataset, which the {self.method} explainer compares with"
            )
        frame = self.background
        if len(frame) > self.limits.background_rows:
            frame = frame.sample(self.limits.background_rows, random_state=0)
        return self._numeric(frame[self.model.names])

    def _answers(self, features: FloatArray) -> FloatArray:
        """What the model-agnostic explainer explains: class scores, else predictions."""
        model = self.model
        if model.reads_arrays:
            outputs, scores = model.predict_array(np.asfortranarray(features))
        else:
            from modelyard.packaging.signature import frames

            frame = frames().pd.DataFrame(features, columns=model.names)
            outputs, scores = model.predict_frame(frame)
        return np.asarray(scores if scores is not None else outputs, dtype=np.float64)

    # -- computing -------------------------------------------------------------------

    def _features(self, prepared: Any) -> Any:
        if self.method == TREE:
            return prepared if isinstance(prepared, np.ndarray) else prepared[self.model.names]
        return self._numeric(prepared)

    def _numeric(self, table: Any) -> FloatArray:
        if isinstance(table, np.ndarray):
            return np.asarray(table, dtype=np.float64)
        for name in self.model.names:
            try:
                table[name].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"the {self.method} explainer needs numeric inputs, and column '{name}' "
                    f"of {self.model.ref} holds {table[name].dtype}"
                ) from None
        return np.asarray(table[self.model.names].to_numpy(dtype=np.float64))

    def _chunk(self, explainer: Any, features: Any) -> tuple[FloatArray, FloatArray, Any]:
        if self.method == MODEL_AGNOSTIC:
            raw = explainer.shap_values(
                features, nsamples=self.limits.agnostic_samples, silent=True
            )
        elif self.method == TREE:
            raw = explainer.shap_values(features, check_additivity=False)
        else:
            raw = explainer.shap_values(features)
        values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
        values = values.astype(np.float64)
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)).ravel()
        rows = np.arange(values.shape[0])
        if values.ndim == 3:  # one output per class: the predicted class's
            chosen = (values.sum(axis=1) + base).argmax(axis=1)
            return values[rows, :, chosen], base[chosen], chosen
        return values, np.full(len(rows), base[0]), np.full(len(rows), -1)

    def _explained(self, prepared: Any, indexes: Any, output: FloatArray) -> list[str]:
        """What each row's output is: a class's probability or raw score, or the prediction."""
        classes = self.model.classes
        if classes is None:
            return ["prediction"] * len(output)
        labels = [str(classes[i]) if i >= 0 else str(classes[-1]) for i in indexes.tolist()]
        if self._probabilities is None:
            _, scores = self.model.predict([prepared[:1]])[0]
            first = np.asarray(scores, dtype=np.float64)[0]
            column = int(indexes[0]) if indexes[0] >= 0 else len(first) - 1
            self._probabilities = bool(abs(first[column] - output[0]) < 1e-4)
        if self._probabilities:
            space = "probability"
        else:
            space = "log-odds" if len(classes) == 2 else "raw score"
        return [f"{space} of class '{label}'" for label in labels]


def mean_absolute(explainer: VersionExplainer, sample: Any) -> dict[str, float]:
    """Global importance: mean |SHAP| per feature over ``sample`` (a frame of inputs),
    largest first."""
    rows = sample[explainer.model.names].to_dict(orient="records")
    values, _, _, _ = explainer.values(explainer.model.prepare(rows))
    means = np.abs(values).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return {explainer.model.names[i]: float(means[i]) for i in order}


def _check_finite(
    values: FloatArray, base: FloatArray, output: FloatArray, names: list[str]
) -> None:
    """Refuse an explanation that overflowed (rows of values too large for the model's
    arithmetic): a contribution that is no number explains nothing."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            f"row {row} cannot be explained: the contribution of '{names[column]}' is not a "
            "finite number (the row's values are too large for the model's arithmetic)"
        )
    rows = np.flatnonzero(~(np.isfinite(base) & np.isfinite(output)))
    if rows.size:
        raise InvalidInput(
            f"row {int(rows[0])} cannot be explained: its output is not a finite number"
        )
