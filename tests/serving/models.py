"""Models for serving tests: a trained classifier, python models that sleep or raise, and
one reading columns of every type."""

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


class Mixed:
    """Reads an integer, a boolean, a string and a float column: count * 2 + flag + len(label)
    + weight, so a test sees each value arrive as sent."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return (
            frame["count"].to_numpy() * 2
            + frame["flag"].to_numpy().astype(int)
            + frame["label"].str.len().to_numpy()
            + frame["weight"].to_numpy()
        ).astype(float)


def mixed_example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "count": [1, 2, 3],
            "flag": [True, False, True],
            "label": ["a", "bb", "ccc"],
            "weight": [0.5, 1.5, 2.5],
        }
    )
