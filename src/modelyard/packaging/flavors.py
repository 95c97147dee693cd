"""Flavors: how a kind of model is saved, loaded and asked for predictions.

A flavor is a small class with one job per method. ``flavor_for(model)`` picks
the most specific one: XGBoost, LightGBM and CatBoost (when installed) before
scikit-learn, before the python-function flavor that takes any object with a
``predict`` method.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.packaging.signature import PANDAS_IMPORT

if TYPE_CHECKING:
    import pandas as pd

    Features: TypeAlias = pd.DataFrame | np.ndarray[Any, Any]

ArrayLayout: TypeAlias = "tuple[type[np.floating[Any]], Literal['C', 'F']]"
"""The float type and memory order of the array a model reads (``Flavor.array_layout``)."""


class Flavor:
    """Save, load and predict for one family of models, and say whether it scores classes.

    ``predict`` and ``predict_proba`` take a batch as served: an enforced frame, or a
    2-D float array in signature order for a model that ``reads_arrays``. A flavor
    whose ``classes`` names labels is served as a classifier: one ``predict_proba``
    call gives each row's scores and its label (the class of the highest score).
    """

    name: ClassVar[str] = ""
    file: ClassVar[str] = "model.pkl"
    requirements: ClassVar[tuple[str, ...]] = ()

    def matches(self, model: Any) -> bool:
        raise NotImplementedError

    def save(self, model: Any, directory: Path) -> list[str]:
        raise NotImplementedError

    def load(self, directory: Path) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, frame: Features) -> Any:
        return model.predict(_features(model, frame))

    def predict_proba(self, model: Any, frame: Features) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"a {type(model).__name__} model has no predict_proba")
        return model.predict_proba(_features(model, frame))

    def classes(self, model: Any) -> np.ndarray[Any, Any] | None:
        """The labels of ``predict_proba``'s columns when ``model`` is served by its class
        scores; None to serve what ``predict`` returns (and log no scores)."""
        return None

    def reads_arrays(self, model: Any, columns: list[str]) -> bool:
        """Whether ``model`` answers a 2-D float array in ``columns`` order as it answers a frame.

        Then an all-float signature is served without building a pandas frame
        (call the model inside ``unnamed_features()``).
        """
        return False

    def array_layout(self, model: Any) -> ArrayLayout:
        """The float type and order of the array given to a model that ``reads_arrays``:
        by default float64 in columns, as a pandas frame of floats holds it (so a linear
        model's products round as they do on the frame)."""
        return np.float64, "F"

    def explainer(self, model: Any) -> str | None:
        """How ``model``'s predictions are explained (``domain.explanations``: ``tree``,
        ``linear`` or ``model-agnostic``); None when this flavor has no explainer."""
        return None


def _features(model: Any, frame: Features) -> Any:
    """Frames for models fitted on named columns, arrays for the others."""
    if isinstance(frame, np.ndarray) or getattr(model, "feature_names_in_", None) is not None:
        return frame
    return frame.to_numpy()


class SklearnFlavor(Flavor):
    name = "sklearn"
    requirements = ("scikit-learn", "joblib", "numpy")

    def matches(self, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:  # pragma: no cover - scikit-learn is a dependency
            return False
        return isinstance(model, BaseEstimator)

    def save(self, model: Any, directory: Path) -> list[str]:
        import joblib

        joblib.dump(model, directory / self.file)
        return [self.file]

    def load(self, directory: Path) -> Any:
        import joblib

        _import_sklearn_without_pandas()
        return joblib.load(directory / self.file)

    def classes(self, model: Any) -> np.ndarray[Any, Any] | None:
        """A fitted classifier's ``classes_``, when it has ``predict_proba`` and one output
        (a classifier of several outputs has a list of them: it is served by ``predict``)."""
        labels = getattr(model, "classes_", None)
        if labels is None or isinstance(labels, list) or not hasattr(model, "predict_proba"):
            return None
        return np.asarray(labels)

    def reads_arrays(self, model: Any, columns: list[str]) -> bool:
        """scikit-learn's own estimators, fitted on these columns in this order (or on arrays).

        A column transformer or a function transformer may select columns by name,
        and a third-party step may expect a frame: those keep the frame.
        """
        fitted = getattr(model, "feature_names_in_", None)
        if fitted is not None and [str(name) for name in fitted] != columns:
            return False
        return all(_reads_arrays(part) for part in _estimators(model))

    def array_layout(self, model: Any) -> ArrayLayout:
        """scikit-learn's trees and tree ensembles copy whatever they are given into float32
        rows before they read it: they are given those rows, copied once from the input
        (a pipeline is not: its first step may read float64)."""
        kind = type(model)
        if kind.__module__.startswith("sklearn.") and kind.__name__ in _SKLEARN_TREES:
            return np.float32, "C"
        return np.float64, "F"

    def explainer(self, model: Any) -> str | None:
        """Trees and linear models by their structure; a pipeline or anything else by
        its answers (model-agnostic)."""
        if type(model).__name__ in _SKLEARN_TREES:
            return "tree"
        if type(model).__module__.startswith("sklearn.linear_model") and hasattr(model, "coef_"):
            return "linear"
        return "model-agnostic"


# scikit-learn models SHAP's tree explainer reads from their fitted trees
_SKLEARN_TREES = frozenset(
    f"{family}{task}"
    for family in ("RandomForest", "ExtraTrees", "GradientBoosting", "DecisionTree")
    for task in ("Classifier", "Regressor")
)


def _import_sklearn_without_pandas() -> None:
    """Import scikit-learn, keeping pandas out of the process if nothing has loaded it yet.

    ``sklearn.utils.fixes`` imports pandas when it is installed and never uses it
    (75 MB for a serving process whose signatures are all floats); it falls back
    cleanly when the import fails. pandas still loads later for whoever needs it.
    """
    if "sklearn" in sys.modules:
        return
    with PANDAS_IMPORT:
        blocked = "pandas" not in sys.modules
        if blocked:
            sys.modules["pandas"] = None  # type: ignore[assignment]
        try:
            import sklearn.base  # noqa: F401
        finally:
            if blocked and sys.modules.get("pandas", 0) is None:
                del sys.modules["pandas"]


_FRAME_STEPS = {"ColumnTransformer", "FunctionTransformer"}


def _estimators(model: Any) -> Iterator[Any]:
    yield model
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    for value in params.values():
        if hasattr(value, "fit"):
            yield value
        elif isinstance(value, list | tuple):  # steps, transformers: (name, estimator) pairs
            for item in value:
                part = item[1] if isinstance(item, tuple) and len(item) > 1 else item
                if hasattr(part, "fit"):
                    yield part


def _reads_arrays(estimator: Any) -> bool:
    kind = type(estimator)
    return kind.__module__.startswith("sklearn.") and kind.__name__ not in _FRAME_STEPS


# scikit-learn warns when a model fitted on named columns is given an array; the array path
# checks the names itself, so exactly that warning is silenced while such calls run
_UNNAMED = r"X does not have valid feature names, but \w+ was fitted with feature names"
_unnamed_lock = threading.Lock()
_unnamed_calls = 0


@contextmanager
def unnamed_features() -> Iterator[None]:
    """Silence scikit-learn's "X does not have valid feature names" warning inside the block.

    ``warnings.catch_warnings`` swaps the process-wide filter list and is not
    thread-safe, and batchers predict on several threads at once: the filter is
    in place while at least one such block runs, and only then.
    """
    global _unnamed_calls
    with _unnamed_lock:
        if _unnamed_calls == 0:
            warnings.filterwarnings("ignore", message=_UNNAMED, category=UserWarning)
        _unnamed_calls += 1
    try:
        yield
    finally:
        with _unnamed_lock:
            _unnamed_calls -= 1
            if _unnamed_calls == 0:
                _remove_unnamed_filter()


def _remove_unnamed_filter() -> None:
    filters: list[Any] = warnings.filters  # type: ignore[assignment]
    for entry in filters:
        message = entry[1]
        if entry[0] == "ignore" and message is not None and message.pattern == _UNNAMED:
            filters.remove(entry)
            return


class PyfuncFlavor(Flavor):
    name = "pyfunc"
    requirements = ("cloudpickle",)

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, directory: Path) -> list[str]:
        import cloudpickle

        with (directory / self.file).open("wb") as out:
            cloudpickle.dump(model, out)
        return [self.file]

    def load(self, directory: Path) -> Any:
        import cloudpickle

        with (directory / self.file).open("rb") as source:
            return cloudpickle.load(source)

    def predict(self, model: Any, frame: Features) -> Any:
        return model.predict(frame)

    def predict_proba(self, model: Any, frame: Features) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"a {type(model).__name__} model has no predict_proba")
        return model.predict_proba(frame)

    def explainer(self, model: Any) -> str | None:
        return "model-agnostic"


class XGBoostFlavor(Flavor):
    """XGBoost's scikit-learn wrappers and Boosters, in XGBoost's own JSON format."""

    name = "xgboost"
    file = "model.json"
    requirements = ("xgboost-cpu", "numpy")

    def explainer(self, model: Any) -> str | None:
        return "tree"

    def matches(self, model: Any) -> bool:
        module = type(model).__module__
        return module.startswith("xgboost") and importlib.util.find_spec("xgboost") is not None

    def save(self, model: Any, directory: Path) -> list[str]:
        model.save_model(directory / self.file)
        (directory / "xgboost_class.txt").write_text(type(model).__name__)
        return [self.file, "xgboost_class.txt"]

    def load(self, directory: Path) -> Any:
        import xgboost

        cls = getattr(xgboost, (directory / "xgboost_class.txt").read_text().strip())
        model = cls()
        model.load_model(directory / self.file)
        return model

    def predict(self, model: Any, frame: Features) -> Any:
        import xgboost

        if isinstance(model, xgboost.Booster):
            return model.predict(xgboost.DMatrix(frame))
        return model.predict(frame)


class LightGBMFlavor(Flavor):
    """LightGBM Boosters and scikit-learn wrappers, saved in LightGBM's text format."""

    name = "lightgbm"
    file = "model.txt"
    requirements = ("lightgbm", "numpy")

    def explainer(self, model: Any) -> str | None:
        return "tree"

    def matches(self, model: Any) -> bool:
        module = type(model).__module__
        return module.startswith("lightgbm") and importlib.util.find_spec("lightgbm") is not None

    def save(self, model: Any, directory: Path) -> list[str]:
        import lightgbm

        if isinstance(model, lightgbm.Booster):
            model.save_model(str(directory / self.file))
            return [self.file]
        import joblib

        joblib.dump(model, directory / "model.pkl")
        return ["model.pkl"]

    def load(self, directory: Path) -> Any:
        import lightgbm

        if (directory / self.file).is_file():
            return lightgbm.Booster(model_file=str(directory / self.file))
        import joblib

        return joblib.load(directory / "model.pkl")

    def predict(self, model: Any, frame: Features) -> Any:
        return np.asarray(model.predict(frame))


class CatBoostFlavor(Flavor):
    """CatBoost's classifiers, regressors and rankers, in CatBoost's own binary format;
    a classifier is served by its class scores."""

    name = "catboost"
    file = "model.cbm"
    requirements = ("catboost", "numpy")
    model_classes = ("CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker", "CatBoost")

    def explainer(self, model: Any) -> str | None:
        return "tree"

    def matches(self, model: Any) -> bool:
        module = type(model).__module__
        return module.startswith("catboost") and importlib.util.find_spec("catboost") is not None

    def save(self, model: Any, directory: Path) -> list[str]:
        model.save_model(str(directory / self.file))
        (directory / "catboost_class.txt").write_text(type(model).__name__)
        return [self.file, "catboost_class.txt"]

    def load(self, directory: Path) -> Any:
        import catboost

        kind = (directory / "catboost_class.txt").read_text().strip()
        if kind not in self.model_classes:
            raise InvalidInput(
                f"catboost model class '{kind}' is not one of {', '.join(self.model_classes)}"
            )
        model = getattr(catboost, kind)()
        model.load_model(str(directory / self.file))
        return model

    def predict(self, model: Any, frame: Features) -> Any:
        predicted = np.asarray(model.predict(frame))
        if predicted.ndim == 2 and predicted.shape[1] == 1:  # a multiclass model's labels
            return predicted[:, 0]
        return predicted

    def predict_proba(self, model: Any, frame: Features) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"a {type(model).__name__} model has no predict_proba")
        return model.predict_proba(frame)

    def classes(self, model: Any) -> np.ndarray[Any, Any] | None:
        import catboost

        if isinstance(model, catboost.CatBoostClassifier):
            return np.asarray(model.classes_)
        return None


class OnnxFlavor(Flavor):
    """An ONNX graph run by onnxruntime (``packaging/onnx.OnnxModel``): the twin that
    ``package export --format onnx`` writes, served by its class scores when it is a
    classifier's. It reads float arrays in signature order."""

    name = "onnx"
    file = "model.onnx"
    requirements = ("onnxruntime", "numpy")

    def matches(self, model: Any) -> bool:
        return type(model).__name__ == "OnnxModel" and type(model).__module__.endswith(".onnx")

    def save(self, model: Any, directory: Path) -> list[str]:
        saved: list[str] = model.save(directory)
        return saved

    def load(self, directory: Path) -> Any:
        from modelyard.packaging.onnx import OnnxModel

        return OnnxModel.load(directory)

    def predict(self, model: Any, frame: Features) -> Any:
        return model.predict(_array(frame))

    def predict_proba(self, model: Any, frame: Features) -> Any:
        return model.predict_proba(_array(frame))

    def classes(self, model: Any) -> np.ndarray[Any, Any] | None:
        return None if model.classes is None else np.asarray(model.classes)

    def reads_arrays(self, model: Any, columns: list[str]) -> bool:
        return True


def _array(frame: Features) -> np.ndarray[Any, Any]:
    if isinstance(frame, np.ndarray):
        return frame
    array: np.ndarray[Any, Any] = frame.to_numpy(dtype=np.float64)
    return array


FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor
    for flavor in (
        XGBoostFlavor(),
        LightGBMFlavor(),
        CatBoostFlavor(),
        OnnxFlavor(),
        SklearnFlavor(),
        PyfuncFlavor(),
    )
}


def flavor_for(model: Any) -> Flavor:
    """The most specific flavor for ``model``; ``InvalidInput`` if it has no ``predict``."""
    for flavor in FLAVORS.values():
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot package a {type(model).__module__}.{type(model).__name__}: "
        "it has no predict method"
    )


def get_flavor(name: str) -> Flavor:
    try:
        return FLAVORS[name]
    except KeyError:
        raise InvalidInput(f"unknown model flavor '{name}' (known: {', '.join(FLAVORS)})") from None
