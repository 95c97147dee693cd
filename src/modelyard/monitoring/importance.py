"""Global feature importance: mean |SHAP| per feature on a sample of the training data.

Registering a version whose run kept its training dataset computes its importance
in the background (a thread of the registering process, as its registrant), after
the reference profile: registration never waits for it and never fails by it. A
failure is stored on the version (``failed`` and why). The importance is shown in
the model card, compared between versions (``models compare``) and used by the
drift check, which ranks drifted features by it (``monitoring/checks.py``).

>>> importances.get("churn/3").shares
{'tenure': 0.41, 'plan': 0.22, ...}
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

from sqlalchemy import select

from modelyard.catalog.registry import Catalog
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed, VersionRegistered
from modelyard.domain.explanations import MODEL_AGNOSTIC, Importance
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import NotFound
from modelyard.monitoring.reference import ReferenceService
from modelyard.serving.explainers import Limits, VersionExplainer, mean_absolute
from modelyard.serving.models import ModelLoader
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

log = logging.getLogger("modelyard.monitoring")

SAMPLE_ROWS = 200  # training rows explained for a version's importance
AGNOSTIC_ROWS = 25  # of them for the model-agnostic explainer (hundreds of calls a row)
LIMITS = Limits(max_rows=SAMPLE_ROWS, seconds=60.0, agnostic_samples=256)
READY, FAILED = "ready", "failed"


class ImportanceService:
    """Compute, keep and fetch each version's global feature importance."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        references: ReferenceService,
        loader: ModelLoader,
        limits: Limits = LIMITS,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.references = references
        self.loader = loader
        self.limits = limits
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        """Start computing a registered version's importance in the background."""
        if not isinstance(event, VersionRegistered):
            return
        context = contextvars.copy_context()  # the registrant acts, in the thread too
        thread = threading.Thread(
            target=context.run,
            args=(self._build_quietly, event.model, event.version),
            name=f"importance {event.model}/{event.version}",
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the importances being computed in the background."""
        with self._lock:
            running = list(self._threads)
        for thread in running:
            thread.join(timeout)

    def build(self, ref: ModelRef | str) -> Importance:
        """Compute and store ``ref``'s importance now (recorded as ``"build importance"``)."""
        version = self.catalog.get_version(ref)
        sample = self.references.sample(version.model, version.version, SAMPLE_ROWS)
        if sample is None:
            raise NotFound(
                f"version {version.ref} has no feature importance: its run kept no training "
                "dataset to explain"
            )
        try:
            importance = self._compute(version, sample)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            log.warning("feature importance of %s failed: %s", version.ref, message)
            failed = Importance(version.model, version.version, FAILED, error=message)
            self._store(version, failed)
            return failed
        self._store(version, importance)
        return importance

    def get(self, ref: ModelRef | str) -> Importance:
        """``ref``'s importance (its status says whether it is ready)."""
        version = self.catalog.get_version(ref)
        row = self._row(version)
        if row is None:
            raise NotFound(
                f"version {version.ref} has no feature importance: its run kept no training "
                "dataset to explain"
            )
        return Importance(
            model=version.model,
            version=version.version,
            status=row.status,
            method=row.method,
            rows=row.rows,
            features=dict(row.importance or {}),
            error=row.error,
            created_at=row.created_at,
        )

    def shares(self, model: str, version: int) -> dict[str, float] | None:
        """Each feature's share of the version's total importance (None if not ready)."""
        try:
            importance = self.get(ModelRef(model, version=version))
        except NotFound:
            return None
        return importance.shares if importance.status == READY else None

    def _build_quietly(self, model: str, version: int) -> None:
        try:
            self.build(ModelRef(model, version=version))
        except NotFound:
            return  # no training data kept: nothing to explain
        except Exception:
            log.exception("feature importance of %s/%s failed", model, version)

    def _compute(self, version: ModelVersion, sample: Any) -> Importance:
        model = self.loader.load(version)
        model.signature = model.signature.accepting_nulls()  # training data may hold nulls
        explainer = VersionExplainer(model, sample, self.limits)
        if explainer.method == MODEL_AGNOSTIC:  # each row costs hundreds of model calls
            sample = sample.head(AGNOSTIC_ROWS)
        features = mean_absolute(explainer, sample)
        return Importance(
            version.model,
            version.version,
            READY,
            method=explainer.method,
            rows=len(sample),
            features=features,
        )

    def _row(self, version: ModelVersion) -> Any:
        c = t.version_importances.c
        with self.db.read() as conn:
            model_id = self.catalog.model_id(conn, version.model)
            return conn.execute(
                select(t.version_importances).where(
                    c.model_id == model_id, c.version == version.version
                )
            ).first()

    def _store(self, version: ModelVersion, importance: Importance) -> None:
        with self.db.write() as conn:
            row = {
                "model_id": self.catalog.model_id(conn, version.model),
                "version": version.version,
                "status": importance.status,
                "method": importance.method,
                "rows": importance.rows,
                "importance": importance.features or None,
                "error": importance.error,
                "created_by": current_actor().user,
                "created_at": now_ms(),
            }
            statement = insert_for(self.db.dialect, t.version_importances).on_conflict_do_update(
                index_elements=["model_id", "version"],
                set_={k: v for k, v in row.items() if k not in ("model_id", "version")},
            )
            conn.execute(statement, [row])
            after = {"status": importance.status, "method": importance.method}
            workspace = self.catalog.model_workspace(conn, version.model)
            resource = f"models/{version.model}/{version.version}/importance"
            publish(conn, Changed("build importance", resource, workspace, None, after))
