"""Models for serving tests: a trained classifier, and python models that sleep or raise."""

from __future__ import annotations

import time
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import tests.serving.models as this_module

cloudpickle.register_pickle_by_value(this_module)  # the serving process need not import tests


def cancer() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, target


def classifier(c: float = 1.0) -> LogisticRegression:
    features, target = cancer()
    return LogisticRegression(C=c, max_iter=5000).fit(features, target)


class Constant:
    """Answers ``value`` for every row."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.full(len(frame), self.value)


class Sleepy(Constant):
    """A shadow that takes ``seconds`` per call."""

    def __init__(self, value: int, seconds: float) -> None:
        super().__init__(value)
        self.seconds = seconds

    def predict(self, frame: pd.DataFrame) -> Any:
        time.sleep(self.seconds)
        return super().predict(frame)


class Broken:
    """A shadow that always raises."""

    def predict(self, frame: pd.DataFrame) -> Any:
        raise RuntimeError("this model is broken on purpose")
