"""Flavors: how a kind of model is saved, loaded and asked for predictions.

A flavor is a small class with one job per method. ``flavor_for(model)`` picks
the most specific one: XGBoost and LightGBM (when installed) before
scikit-learn, before the python-function flavor that takes any object with a
``predict`` method.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from modelyard.errors import InvalidInput


class Flavor:
    """Save, load and predict for one family of models."""

    name: ClassVar[str] = ""
    file: ClassVar[str] = "model.pkl"
    requirements: ClassVar[tuple[str, ...]] = ()

    def matches(self, model: Any) -> bool:
        raise NotImplementedError

    def save(self, model: Any, directory: Path) -> list[str]:
        raise NotImplementedError

    def load(self, directory: Path) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return model.predict(_features(model, frame))

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"a {type(model).__name__} model has no predict_proba")
        return model.predict_proba(_features(model, frame))


def _features(model: Any, frame: pd.DataFrame) -> Any:
    """Frames for models fitted on named columns, arrays for the others."""
    if getattr(model, "feature_names_in_", None) is not None:
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

        return joblib.load(directory / self.file)


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

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return model.predict(frame)

    def predict_proba(self, model: Any, frame: pd.DataFrame) -> Any:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(f"a {type(model).__name__} model has no predict_proba")
        return model.predict_proba(frame)


class XGBoostFlavor(Flavor):
    """XGBoost's scikit-learn wrappers and Boosters, in XGBoost's own JSON format."""

    name = "xgboost"
    file = "model.json"
    requirements = ("xgboost-cpu", "numpy")

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

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        import xgboost

        if isinstance(model, xgboost.Booster):
            return model.predict(xgboost.DMatrix(frame))
        return model.predict(frame)


class LightGBMFlavor(Flavor):
    """LightGBM Boosters and scikit-learn wrappers, saved in LightGBM's text format."""

    name = "lightgbm"
    file = "model.txt"
    requirements = ("lightgbm", "numpy")

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

    def predict(self, model: Any, frame: pd.DataFrame) -> Any:
        return np.asarray(model.predict(frame))


FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor
    for flavor in (XGBoostFlavor(), LightGBMFlavor(), SklearnFlavor(), PyfuncFlavor())
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
