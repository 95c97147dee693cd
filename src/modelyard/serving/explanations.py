"""Explanations of an endpoint's answers: rows now, or a logged prediction by its id.

``Explainers`` keeps one ``VersionExplainer`` per loaded version; the serving
process (``POST /endpoints/{name}/explain``) and the control plane share it.
``ExplanationService`` is the control plane's side (``yard.endpoints.explain``,
``modelyard explain``): it explains rows with the version the endpoint would
answer them with (by weight, or the sticky key), or a version named; and a logged
prediction with the exact version that answered it. A prediction's explanation is
stored (``prediction_explanations``, recorded as ``"explain prediction"``), so asking
again months later gives the same answer, even after the endpoint moved on; erasing the
prediction's subject or pruning it past retention deletes it too (``serving/retention.py``).

>>> service.explain("churn", [{"age": 41, "plan": "pro"}]).rows[0].text
>>> service.explain_prediction("churn", "3f9c0a1b2c3d-0000002a").ref
'churn/4'
"""

from __future__ import annotations

import random
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DuplicateRow

from modelyard.catalog.registry import Catalog
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.endpoints import Spec, Target
from modelyard.domain.events import Changed
from modelyard.domain.explanations import TREE, Explanation
from modelyard.domain.models import ModelRef
from modelyard.errors import InvalidInput, NotFound
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.explainers import Limits, VersionExplainer
from modelyard.serving.models import Model, ModelLoader
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

# (model, version, rows) -> a frame of the version's training data, or None
BackgroundSource = Callable[[str, int, int], Any]
DEFAULT_TOP = 5
LOADED_VERSIONS = 8  # versions the control plane keeps loaded for explanations


class Explainers:
    """One explainer per loaded version, each built on its first explanation.

    ``background`` gives a version's reference data, read only for explainers that
    compare with it (linear and model-agnostic), never for tree models.
    """

    def __init__(self, background: BackgroundSource | None = None, limits: Limits | None = None):
        self.background = background
        self.limits = limits or Limits()
        self._explainers: dict[tuple[str, int, str], VersionExplainer] = {}
        self._backgrounds: dict[tuple[str, int, str], Any] = {}
        self._lock = threading.Lock()

    def explain(self, model: Model, rows: list[dict[str, Any]], top: int) -> Explanation:
        """Explain ``rows`` with ``model`` (blocking: CPU-bound)."""
        return self.of(model).explain(rows, top=top)

    def of(self, model: Model) -> VersionExplainer:
        key = (model.model, model.version, model.digest)
        background = self.background_of(model)
        with self._lock:
            found = self._explainers.get(key)
            if found is None or found.model is not model:
                found = self._explainers[key] = VersionExplainer(model, background, self.limits)
        return found

    def background_of(self, model: Model) -> Any:
        """The version's reference data sample (read once), None for tree models."""
        method = model.flavor.explainer(model.loaded.model)
        if method in (None, TREE) or self.background is None:
            return None
        key = (model.model, model.version, model.digest)
        with self._lock:
            if key in self._backgrounds:
                return self._backgrounds[key]
        sample = self.background(model.model, model.version, self.limits.background_rows)
        with self._lock:
            self._backgrounds[key] = sample
        return sample


def choose_target(name: str, spec: Spec, version: Any, sticky: str | None) -> Target:
    """The target that answers (or would answer) a request to endpoint ``name``: the one
    named by ``version`` (``N`` or ``MODEL/N``, a route or a shadow), else the route the
    sticky key, or the weights, choose."""
    if version is None:
        point = zlib.crc32(sticky.encode()) % 100 if sticky is not None else random.random() * 100
        bound = 0
        for target in spec.routes:
            bound += target.weight
            if point < bound:
                return target
        return spec.routes[-1]
    wanted = str(version)
    targets = [target for _, target in spec.targets()]
    matches = [t for t in targets if wanted in (t.ref, str(t.version))]
    served = ", ".join(t.ref for t in targets)
    if not matches:
        raise NotFound(f"endpoint '{name}' does not serve version {wanted} (it serves {served})")
    if len({m.ref for m in matches}) > 1:
        raise InvalidInput(
            f"version {wanted} of endpoint '{name}' is ambiguous ({served}): name it MODEL/N"
        )
    return matches[0]


def top_of(value: Any) -> int:
    """The number of top contributions asked for (default 5)."""
    if value is None:
        return DEFAULT_TOP
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"'top' must be a whole number of features, 0 or more, got {value!r}")
    return value


class ExplanationService:
    """Explain an endpoint's answers on the control plane, and keep explanations of
    logged predictions."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        endpoints: EndpointService,
        loader: ModelLoader,
        predictions: PredictionLog,
        explainers: Explainers,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.endpoints = endpoints
        self.loader = loader
        self.predictions = predictions
        self.explainers = explainers
        self._models: OrderedDict[tuple[str, int, str], Model] = OrderedDict()
        self._lock = threading.Lock()

    def explain(
        self,
        endpoint: str,
        rows: list[dict[str, Any]],
        *,
        version: Any = None,
        sticky_key: str | None = None,
        top: int | None = None,
    ) -> Explanation:
        """Explain ``rows`` with the version endpoint ``endpoint`` would answer them with
        (or ``version``, one it routes or shadows to)."""
        if not rows:
            raise InvalidInput("there are no rows to explain")
        live = self.endpoints.live([endpoint])
        if not live:
            self.endpoints.get(endpoint)  # raises NotFound naming it
            raise NotFound(f"endpoint '{endpoint}' serves nothing")
        _, _, spec = live[0]
        target = choose_target(endpoint, spec, version, sticky_key)
        model = self.model(target.model, target.version)
        explanation = self.explainers.explain(model, rows, top_of(top))
        return replace(explanation, endpoint=endpoint)

    def explain_version(
        self, ref: ModelRef | str, rows: list[dict[str, Any]], *, top: int | None = None
    ) -> Explanation:
        """Explain ``rows`` with version ``ref`` (``churn/3``, ``churn@champion``)."""
        if not rows:
            raise InvalidInput("there are no rows to explain")
        version = self.catalog.get_version(ref)
        model = self.model(version.model, version.version)
        return self.explainers.explain(model, rows, top_of(top))

    def explain_prediction(
        self, endpoint: str, prediction_id: str, *, top: int | None = None
    ) -> Explanation:
        """The explanation of logged prediction ``prediction_id``, by the version that
        answered it: computed and stored the first time, the stored one afterwards."""
        served = self.endpoints.get(endpoint)
        stored = self.stored(endpoint, prediction_id)
        if stored is not None:
            return stored
        logged = self._logged(endpoint, prediction_id)
        model = self.model(str(logged["model"]), int(logged["version"]))
        row = orjson.loads(logged["input"])
        computed = self.explainers.explain(model, [row], top_of(top))
        explanation = replace(
            computed,
            endpoint=endpoint,
            prediction_id=prediction_id,
            created_by=current_actor().user,
            created_at=now_ms(),
        )
        columns = {"package_digest": model.digest, "input": row, "predicted_at": logged.get("ts")}
        try:
            self._store(explanation, columns, served.workspace)
        except DuplicateRow:  # explained at the same moment by someone else: theirs stands
            kept = self.stored(endpoint, prediction_id)
            assert kept is not None
            return kept
        return explanation

    def stored(self, endpoint: str, prediction_id: str) -> Explanation | None:
        """The stored explanation of a logged prediction, if it was explained."""
        c = t.prediction_explanations.c
        with self.db.read() as conn:
            row = conn.execute(
                select(c.explanation).where(
                    c.endpoint == endpoint, c.prediction_id == prediction_id
                )
            ).first()
        return None if row is None else Explanation.from_dict(row.explanation)

    def model(self, name: str, number: int) -> Model:
        """Version ``name/number`` loaded (verified against its digest), a few kept."""
        version = self.loader.version(name, number)
        key = (name, number, version.package_digest)
        with self._lock:
            found = self._models.get(key)
            if found is not None:
                self._models.move_to_end(key)
                return found
        loaded = self.loader.load(version)
        with self._lock:
            self._models[key] = loaded
            while len(self._models) > LOADED_VERSIONS:
                self._models.popitem(last=False)
        return loaded

    def _logged(self, endpoint: str, prediction_id: str) -> dict[str, Any]:
        table = self.predictions.query(
            endpoint, ids=[prediction_id], role="primary", limit=1, with_labels=False
        )
        if table.num_rows == 0:
            raise NotFound(f"endpoint '{endpoint}' logged no prediction '{prediction_id}'")
        row: dict[str, Any] = table.to_pylist()[0]
        if row.get("error"):
            raise InvalidInput(
                f"prediction '{prediction_id}' failed ({row['error']}): there is no answer "
                "to explain"
            )
        return row

    def _store(self, explanation: Explanation, columns: dict[str, Any], workspace: str) -> None:
        endpoint, prediction_id = explanation.endpoint, explanation.prediction_id
        assert endpoint is not None and prediction_id is not None
        with self.db.write() as conn:
            conn.execute(
                t.prediction_explanations.insert().values(
                    endpoint=endpoint,
                    prediction_id=prediction_id,
                    model_id=self.catalog.model_id(conn, explanation.model),
                    version=explanation.version,
                    explanation=explanation.to_dict(),
                    **columns,
                    created_by=explanation.created_by or "",
                    created_at=explanation.created_at or now_ms(),
                )
            )
            after = {"version": explanation.ref, "method": explanation.method}
            resource = f"endpoints/{endpoint}/predictions/{prediction_id}/explanation"
            publish(conn, Changed("explain prediction", resource, workspace, None, after))
