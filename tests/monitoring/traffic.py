"""A deployed classifier and real prediction-log traffic for monitoring tests.

The model is trained on generated data; its training and test sets are logged
with the run, so registration builds the reference profile. Traffic is written
to the endpoint's prediction log the way the serving process writes it (one
journal line per prediction, the model's own outputs and class probabilities).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.serving.journal import Journal, canonical, record_line

FEATURES = ["age", "income", "tenure", "visits", "spend"]
WEIGHTS = np.array([1.2, -0.8, 0.6, 0.0, 0.9])


def inputs(rows: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """Standard-normal features; ``shift`` adds that many standard deviations to columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    for column, amount in (shift or {}).items():
        frame[column] = frame[column] + amount
    return frame


def labels_for(frame: pd.DataFrame, seed: int) -> np.ndarray[Any, Any]:
    """Outcomes from one fixed true model: covariate shift only, never concept drift."""
    rng = np.random.default_rng(seed + 10_000)
    logit = frame[FEATURES].to_numpy() @ WEIGHTS
    labels: np.ndarray[Any, Any] = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    return labels


@dataclass
class Deployed:
    yard: Yard
    services: Services
    model: str
    endpoint: str
    fitted: LogisticRegression

    def send(self, frame: pd.DataFrame, *, start_ts: int, step_ms: int = 10) -> list[str]:
        """Log one primary prediction per row, as the serving process does."""
        proba = self.fitted.predict_proba(frame[FEATURES])
        outputs = self.fitted.classes_[proba.argmax(axis=1)]
        ids = [uuid.uuid4().hex[:16] for _ in range(len(frame))]
        records = frame[FEATURES].to_dict(orient="records")
        lines = b"".join(
            record_line(
                id=prediction_id,
                endpoint=self.endpoint,
                revision=1,
                model=self.model,
                version=1,
                role="primary",
                ts=start_ts + index * step_ms,
                latency_ms=2.0,
                input=orjson.dumps(record),
                output=canonical(output).encode(),
                scores=orjson.dumps(row.tolist()),
            )
            for index, (prediction_id, record, output, row) in enumerate(
                zip(ids, records, outputs, proba, strict=True)
            )
        )
        root = self.services.settings.predictions_root
        journal = Journal(Path(root) / self.endpoint)
        journal.append(lines)
        journal.close()
        return ids


def deploy(services: Services, name: str) -> Deployed:
    """Train, log training and test data, register (profiles it and computes its feature
    importance: ``visits``, which the true model ignores, carries almost none), deploy at
    100%."""
    yard = Yard(LocalBackend(services))
    train, test = inputs(4000, 1), inputs(2000, 2)
    fitted = LogisticRegression().fit(train, labels_for(train, 1))
    with yard.start_run(f"{name}-experiment", name="train") as run:
        run.log_dataset(
            train.assign(target=labels_for(train, 1)), name=f"{name}-train", role="training"
        )
        run.log_dataset(test.assign(target=labels_for(test, 2)), name=f"{name}-test", role="test")
        run.log_model(fitted, name=name, input_example=train.head(3))
    services.importances.wait()  # its feature importance, computed in the background
    yard.endpoints.create(name, routes=[f"{name}/1=100"])
    return Deployed(yard, services, name, name, fitted)
