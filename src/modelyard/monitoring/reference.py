"""Reference profiles: a version's training data and its own predictions on it.

Registering a version whose run logged a stored ``training`` dataset profiles
that dataset's input columns and the version's outputs on it (the predicted
class or value, and the score of a classifier). When the run also logged a
``test``/``validation``/``evaluation`` dataset with the target column, the
version's performance on it and a calibration of its scores (for estimating
accuracy before labels arrive) are kept too; otherwise the training data serves.

>>> reference = yard.monitors.reference("churn/3")
>>> reference.inputs.columns["age"].quantiles[50], reference.performance["accuracy"]
(41.0, 0.91)
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from modelyard.artifacts.store import ArtifactStore
from modelyard.catalog.packages import package_directory
from modelyard.catalog.registry import Catalog
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.datasets import Dataset
from modelyard.domain.events import Changed, VersionRegistered
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import InvalidInput, NotFound
from modelyard.monitoring.profile import CATEGORICAL, NUMERIC, Profile, profile_table
from modelyard.packaging import load_package
from modelyard.serving.journal import canonical
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for
from modelyard.tracking.dataset_registry import DatasetRegistry

if TYPE_CHECKING:  # serving processes import this module and never load pandas
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger("modelyard.monitoring")

CLASSIFICATION, REGRESSION = "classification", "regression"
PREDICTION, SCORE = "prediction", "score"
EVALUATION_ROLES = ("test", "validation", "evaluation")
TARGET_NAMES = ("target", "label", "y", "class", "outcome")


@dataclass
class Reference:
    """What a version's monitors compare live traffic with."""

    model: str
    version: int
    task: str
    inputs: Profile
    outputs: Profile
    dataset: str | None = None
    evaluated_on: str | None = None
    target: str | None = None
    classes: list[str] | None = None
    performance: dict[str, float | None] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    # each feature's share of the version's importance (``monitoring/importance.py``),
    # filled in by the monitor runner; not part of the stored profile
    importance: dict[str, float] | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "dataset": self.dataset,
            "evaluated_on": self.evaluated_on,
            "target": self.target,
            "classes": self.classes,
            "performance": self.performance,
            "calibration": self.calibration,
            "inputs": self.inputs.to_dict(),
            "outputs": self.outputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        return cls(
            model=data["model"],
            version=int(data["version"]),
            task=data["task"],
            inputs=Profile.from_dict(data["inputs"]),
            outputs=Profile.from_dict(data["outputs"]),
            dataset=data.get("dataset"),
            evaluated_on=data.get("evaluated_on"),
            target=data.get("target"),
            classes=data.get("classes"),
            performance=dict(data.get("performance") or {}),
            calibration=data.get("calibration"),
        )


def score_of(scores: Any, classes: list[str] | None) -> np.ndarray[Any, Any]:
    """One score per row: the positive class's probability for two classes, the
    top probability (the model's confidence) for more."""
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        return matrix
    chosen: np.ndarray[Any, Any] = matrix[:, 1] if matrix.shape[1] == 2 else matrix.max(axis=1)
    return chosen


def build_reference(
    model: str,
    version: int,
    predictor: Any,
    inputs: list[str],
    training: pa.Table,
    evaluation: pa.Table | None = None,
    target: str | None = None,
) -> Reference:
    """Profile ``training[inputs]`` and ``predictor``'s outputs on it; measure and
    calibrate on ``evaluation`` (or ``training``) when it has ``target``."""
    import pyarrow as pa

    missing = [c for c in inputs if c not in training.schema.names]
    if missing:
        raise InvalidInput(f"the training data lacks the input column(s) {', '.join(missing)}")
    features = training.select(inputs)
    outputs, scores = predictor.predict_frame(features.to_pandas())
    task = CLASSIFICATION if scores is not None else _task_of(outputs)
    classes = [canonical(c) for c in predictor.classes] if scores is not None else None
    output_columns: dict[str, Any] = {PREDICTION: _output_array(outputs, task)}
    if scores is not None:
        output_columns[SCORE] = pa.array(score_of(scores, classes))
    kinds = {PREDICTION: CATEGORICAL if task == CLASSIFICATION else NUMERIC, SCORE: NUMERIC}
    reference = Reference(
        model,
        version,
        task,
        inputs=profile_table(features),
        outputs=profile_table(pa.table(output_columns), kinds),
        target=target,
        classes=classes,
    )
    scored = evaluation if evaluation is not None and target in evaluation.schema.names else None
    scored = scored if scored is not None else training if target in training.schema.names else None
    if target and scored is not None:
        _evaluate(reference, predictor, scored.select(inputs), scored.column(target))
    return reference


def _task_of(outputs: list[Any]) -> str:
    sample = outputs[: min(len(outputs), 1000)]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in sample)
    if numeric and any(isinstance(v, float) and not float(v).is_integer() for v in sample):
        return REGRESSION
    return CLASSIFICATION if not numeric or len(set(sample)) <= 20 else REGRESSION


def _output_array(outputs: list[Any], task: str) -> pa.Array:
    import pyarrow as pa

    if task == CLASSIFICATION:
        return pa.array([canonical(v) for v in outputs], pa.string())
    return pa.array(np.asarray(outputs, dtype=np.float64))


def _evaluate(reference: Reference, predictor: Any, features: pa.Table, target: Any) -> None:
    from modelyard.monitoring import performance
    from modelyard.monitoring.calibration import Calibration

    outputs, scores = predictor.predict_frame(features.to_pandas())
    truth = target.to_pylist()
    if reference.task == CLASSIFICATION:
        labels = np.asarray([canonical(v) for v in truth], dtype=object)
        predicted = np.asarray([canonical(v) for v in outputs], dtype=object)
        proba = None if scores is None else np.asarray(scores, dtype=np.float64)
        reference.performance = performance.classification_metrics(
            labels, predicted, proba, reference.classes
        )
        if proba is not None and reference.classes:
            calibration = Calibration.fit(proba, labels, reference.classes)
            reference.calibration = calibration.to_dict()
    else:
        reference.performance = performance.regression_metrics(
            np.asarray(truth, dtype=np.float64), np.asarray(outputs, dtype=np.float64)
        )
    reference.evaluated_on = reference.evaluated_on or "training"


class ReferenceService:
    """Build, keep and fetch the reference profile of each version."""

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        catalog: Catalog,
        datasets: DatasetRegistry,
        cache: Path,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.catalog = catalog
        self.datasets = datasets
        self.cache = cache

    def build(
        self,
        ref: ModelRef | str,
        *,
        dataset: str | None = None,
        target: str | None = None,
    ) -> Reference:
        """Profile the version's training dataset (or the run's dataset named
        ``dataset``) and store it, replacing an older profile, as the current actor's
        (recorded as ``"build reference"``)."""
        version = self.catalog.get_version(ref)
        training, evaluation = self._datasets(version, dataset)
        table = self._read(training)
        evaluation_table = self._read(evaluation) if evaluation is not None else None
        predictor = self._predictor(version)
        inputs = list(predictor.names)
        target = target or _guess_target(table, inputs)
        if target is not None and target not in table.schema.names:
            raise InvalidInput(f"dataset '{training.name}' has no column '{target}'")
        reference = build_reference(
            version.model, version.version, predictor, inputs, table, evaluation_table, target
        )
        reference.dataset = training.name
        if reference.performance:
            scored_on = evaluation if evaluation_table is not None else training
            reference.evaluated_on = scored_on.name if scored_on else None
        self._store(version, training, "ready", "", reference)
        return reference

    def build_quietly(self, version: ModelVersion) -> Reference | None:
        """At registration (as its registrant): profile when the run kept its training
        data; a failure is recorded on the version (and logged), never raised."""
        try:
            training, _ = self._datasets(version, None)
        except NotFound:
            return None
        try:
            return self.build(version.ref)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            log.warning("reference profile of %s failed: %s", version.ref, message)
            self._store(version, training, "failed", message, None)
            return None

    def on_event(self, event: Any) -> None:
        """Profile a version as it is registered (when its run kept training data)."""
        if isinstance(event, VersionRegistered):
            version = self.catalog.get_version(ModelRef(event.model, version=event.version))
            self.build_quietly(version)  # subscribers run in the registrant's context

    def get(self, ref: ModelRef | str) -> Reference:
        version = self.catalog.get_version(ref)
        row = self._row(version)
        if row is None:
            raise NotFound(
                f"version {version.ref} has no reference profile: build it with "
                f"`modelyard monitor reference {version.ref} --dataset NAME`"
            )
        if row.status != "ready":
            raise NotFound(f"the reference profile of {version.ref} failed: {row.error}")
        return Reference.from_dict(row.profile)

    def training_rows(self, reference: Reference, entity: str, dataset: str | None) -> pa.Table:
        """The rows of the reference's training dataset (or the run's ``dataset``), for
        training-serving skew."""
        version = self.catalog.get_version(ModelRef(reference.model, version=reference.version))
        training, _ = self._datasets(version, dataset or reference.dataset)
        table = self._read(training)
        if entity not in table.schema.names:
            raise InvalidInput(f"dataset '{training.name}' has no entity column '{entity}'")
        return table

    def sample(self, model: str, version: int, rows: int) -> pd.DataFrame | None:
        """Up to ``rows`` rows of the version's training dataset, drawn the same way each
        time (None when its run kept none): what explanations compare with."""
        found = self.catalog.get_version(ModelRef(model, version=version))
        try:
            training, _ = self._datasets(found, None)
        except NotFound:
            return None
        frame = self._read(training).to_pandas()
        return frame.sample(rows, random_state=0) if len(frame) > rows else frame

    def status(self, ref: ModelRef | str) -> dict[str, Any] | None:
        version = self.catalog.get_version(ref)
        row = self._row(version)
        if row is None:
            return None
        return {"status": row.status, "error": row.error, "created_at": row.created_at}

    def _row(self, version: ModelVersion) -> Any:
        p = t.reference_profiles.c
        with self.db.read() as conn:
            model_id = self.catalog.model_id(conn, version.model)
            return conn.execute(
                select(t.reference_profiles).where(
                    p.model_id == model_id, p.version == version.version
                )
            ).first()

    def _datasets(self, version: ModelVersion, name: str | None) -> tuple[Dataset, Dataset | None]:
        uses = self.datasets.run_datasets(version.run_id) if version.run_id else []
        stored = [u for u in uses if u.dataset.stored]
        if name is not None:
            chosen = [u for u in stored if u.dataset.name == name]
            if not chosen:
                raise NotFound(f"the run of {version.ref} has no stored dataset named '{name}'")
            training = chosen[0]
        else:
            training_uses = [u for u in stored if u.role == "training"]
            if not training_uses:
                raise NotFound(f"the run of {version.ref} kept no training dataset")
            training = training_uses[0]
        evaluation = next((u.dataset for u in stored if u.role in EVALUATION_ROLES), None)
        return training.dataset, evaluation

    def _read(self, dataset: Dataset) -> pa.Table:
        import pyarrow.parquet as pq

        if not dataset.uri:
            raise NotFound(f"dataset '{dataset.name}' has no stored content")
        path = self.artifacts.local_path(dataset.uri)
        if path is not None:
            return pq.read_table(path)
        with self.artifacts.open(dataset.uri) as handle:
            return pq.read_table(io.BytesIO(handle.read()))

    def _predictor(self, version: ModelVersion) -> Any:
        from modelyard.serving.models import Model

        directory = package_directory(
            self.artifacts, version.source, version.package_digest, self.cache
        )
        loaded = load_package(directory, version.package_digest)
        if loaded.signature is None:
            raise InvalidInput(f"{version.ref} has no signature: its inputs are unknown")
        # training data may hold nulls its input example did not show; requests may not,
        # but the reference records what the model answers on the data it learned from
        loaded.signature = loaded.signature.accepting_nulls()
        return _Predictor(Model(version.model, version.version, version.package_digest, loaded))

    def _store(
        self,
        version: ModelVersion,
        training: Dataset,
        status: str,
        error: str,
        reference: Reference | None,
    ) -> None:
        with self.db.write() as conn:
            model_id = self.catalog.model_id(conn, version.model)
            row = {
                "model_id": model_id,
                "version": version.version,
                "dataset_id": training.id,
                "status": status,
                "error": error,
                "profile": None if reference is None else reference.to_dict(),
                "created_by": current_actor().user,
                "created_at": now_ms(),
            }
            statement = insert_for(self.db.dialect, t.reference_profiles).on_conflict_do_update(
                index_elements=["model_id", "version"],
                set_={k: v for k, v in row.items() if k not in ("model_id", "version")},
            )
            conn.execute(statement, [row])
            after = {
                "status": status,
                "dataset": training.name,
                "target": None if reference is None else reference.target,
            }
            workspace = self.catalog.model_workspace(conn, version.model)
            resource = f"models/{version.model}/{version.version}/reference"
            publish(conn, Changed("build reference", resource, workspace, None, after))


class _Predictor:
    """A loaded version as the reference needs it: names, classes, outputs and scores."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.names = model.names
        self.classes = [] if model._classes is None else model._classes.tolist()

    def predict_frame(self, frame: pd.DataFrame) -> tuple[list[Any], list[Any] | None]:
        prepared = self.model.prepare(frame.to_dict(orient="records"))
        if isinstance(prepared, np.ndarray):
            import pandas as pd

            prepared = pd.DataFrame(prepared, columns=self.names)
        result: tuple[list[Any], list[Any] | None] = self.model.predict_frame(prepared)
        return result


def _guess_target(table: pa.Table, inputs: list[str]) -> str | None:
    extra = [c for c in table.schema.names if c not in inputs]
    if len(extra) == 1:
        return str(extra[0])
    return next((str(c) for c in extra if c.lower() in TARGET_NAMES), None)
