"""The serving data plane's state: loaded versions, live endpoints, hot reload.

``Runtime`` hosts one or many endpoints in one process. Each version is loaded
once (verified against its package digest) and shared by every endpoint that
uses it. A background thread asks the control plane every ``refresh`` seconds
what each endpoint should serve; when a revision changes or a followed alias
moves, the new versions are loaded *before* the endpoint's routing table is
swapped in one assignment, so requests never see a half-loaded endpoint and
none fail during a change. A change that cannot take effect (a version that
fails to load, an alias moved to an incompatible version) is reported in
``status`` and the endpoint keeps serving what it served.

Every answer is logged before it is given. A prediction whose log write the disk
refuses (full, read-only) is answered 503 ``LogUnavailable`` ("prediction log cannot
be written: no space left on device (...)"), never acknowledged; the process keeps
running and reports not ready while an endpoint's log is failing. The watcher
probes a failing log folder every ``refresh`` seconds (``Journal.probe``), and the
next prediction that is logged clears it too: once space returns, predictions
succeed again without a restart. Shadows are computed
and logged in a child process (``serving/shadows.py``); this process only hands
it a copy of each answered request. A loaded version is a ``Model``
(``serving/models.py``).

A runtime is given what it uses: the endpoint service (what to serve, retention
policies), a ``ModelLoader`` (versions from the catalog, packages from the
artifact store), the prediction log, the retention service (the hourly prune) and
the settings the shadow process starts with. ``serving/server.py`` builds it from
bootstrap's ``Services``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import secrets
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from modelyard.config import Settings
from modelyard.domain.actors import Actor, acting_as
from modelyard.domain.endpoints import Spec, Target, check_compatible
from modelyard.domain.explanations import Explanation
from modelyard.errors import (
    LogUnavailable,
    ModelFailed,
    ModelyardError,
    NotFound,
    NotReady,
    os_reason,
)
from modelyard.serving.batching import Batcher
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.explain_worker import ExplainProcess
from modelyard.serving.explanations import Explainers
from modelyard.serving.journal import Journal
from modelyard.serving.metrics import ServingMetrics
from modelyard.serving.models import Model, ModelLoader, journal_lines
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.retention import PRUNE_EVERY, SERVING_USER, Retention
from modelyard.serving.shadows import ShadowProcess, ShadowTarget
from modelyard.serving.sqllog import SqlJournal

log = logging.getLogger("modelyard.serving")


# -- endpoints -------------------------------------------------------------


@dataclass
class Lane:
    """A target of one endpoint revision; a route has its batcher, a shadow runs in the
    shadow process (``serving/shadows.py``)."""

    target: Target
    model: Model
    batcher: Batcher | None
    role: str


@dataclass
class EndpointState:
    name: str
    revision: int
    spec: Spec
    routes: list[Lane]
    shadows: list[Lane]
    bounds: list[int] = field(default_factory=list)
    shadow_targets: list[ShadowTarget] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bounds = list(itertools.accumulate(lane.target.weight for lane in self.routes))
        self.shadow_targets = [
            (lane.model.model, lane.model.version, lane.model.digest) for lane in self.shadows
        ]

    @property
    def contract(self) -> Model:
        return self.routes[0].model

    def pick(self, sticky: str | None) -> Lane:
        point = zlib.crc32(sticky.encode()) % 100 if sticky is not None else random.random() * 100
        for lane, bound in zip(self.routes, self.bounds, strict=True):
            if point < bound:
                return lane
        return self.routes[-1]


class Runtime:
    """What a serving process hosts: endpoints, their loaded versions and the log."""

    def __init__(
        self,
        endpoints: EndpointService,
        loader: ModelLoader,
        predictions: PredictionLog,
        retention: Retention,
        settings: Settings,
        names: list[str] | None = None,
        *,
        refresh: float = 1.0,
        explainers: Explainers | None = None,
    ) -> None:
        self.names = names or None
        self.refresh = refresh
        self.endpoints_service = endpoints
        self.loader = loader
        self.log = predictions
        self.retention = retention
        self.metrics = ServingMetrics()
        self.endpoints: dict[str, EndpointState] = {}
        self.status: dict[str, str] = {}
        self.log_failures: dict[str, str] = {}  # endpoint: why its log cannot be written
        self.loop: asyncio.AbstractEventLoop | None = None
        self._models: dict[tuple[str, int, str], Model] = {}
        self._journals: dict[str, Journal | SqlJournal] = {}
        self.shadows = ShadowProcess(settings, self.metrics)  # the child bootstraps from them
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._expected: set[str] = set()
        self._ids = itertools.count(1)
        self._id_prefix = f"{secrets.token_hex(4)}{os.getpid() % 0xFFFF:04x}"
        self.explainers = explainers or Explainers()
        # explanations are computed in a child process (started by the first one), one at
        # a time: SHAP holds the GIL, which the predictions need; this thread reads the
        # reference data a version's explainer compares with
        self.explain_process = ExplainProcess(self.explainers.limits)
        self._explaining = ThreadPoolExecutor(1, thread_name_prefix="explain")

    # -- lifecycle ------------------------------------------------------------

    def check_names(self) -> None:
        """Refuse to start for endpoints that do not exist."""
        if self.names:
            known = {e.name for e in self.endpoints_service.list()}
            for name in self.names:
                if name not in known:
                    raise NotFound(f"endpoint '{name}' does not exist")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = threading.Thread(target=self._watch, name="endpoint watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for state in list(self.endpoints.values()):
            for lane in state.routes:
                if lane.batcher is not None:
                    lane.batcher.stop()
        self.shadows.stop()
        self._explaining.shutdown(wait=True, cancel_futures=True)
        self.explain_process.stop()
        for journal in self._journals.values():
            journal.close()

    @property
    def ready(self) -> bool:
        """Every hosted endpoint is loaded and its prediction log can be written."""
        return (
            bool(self._expected)
            and not self.log_failures
            and all(
                name in self.endpoints and not self.status.get(name, "").startswith("loading")
                for name in self._expected
            )
        )

    def _watch(self) -> None:
        next_prune = time.monotonic() + self.refresh
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:
                log.exception("could not refresh endpoints")
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                self._prune()
            for journal in list(self._journals.values()):
                if journal.due():
                    journal.rotate()
            self._probe_failing_logs()
            self._stop.wait(self.refresh)

    def _probe_failing_logs(self) -> None:
        """Clear the failure of every log folder that takes a small write again, so the
        process is ready again before traffic comes back to it."""
        for name in list(self.log_failures):
            journal = self._journals.get(name)
            if not isinstance(journal, Journal):
                continue
            try:
                journal.probe()
            except OSError:
                continue
            self._log_recovered(name)

    def _log_recovered(self, name: str) -> None:
        if self.log_failures.pop(name, None) is not None:
            log.warning("endpoint %s: the prediction log can be written again", name)

    def _prune(self) -> None:
        """Apply the retention policy of every hosted endpoint that has one, as the
        serving process (never as whoever started it)."""
        try:
            policies = self.endpoints_service.retention()
        except Exception:
            log.exception("could not read retention policies")
            return
        for name in sorted(set(policies) & self._expected):
            try:
                with acting_as(Actor(SERVING_USER, client="serving")):
                    deleted = self.retention.prune_on_schedule(name)
                if deleted:
                    log.info("endpoint %s: pruned %d predictions past retention", name, deleted)
            except Exception:
                log.exception("endpoint %s: could not apply retention", name)

    def sync(self) -> None:
        """Bring every hosted endpoint to what the control plane says now."""
        live = self.endpoints_service.live(self.names)
        self._expected = {name for name, _, _ in live}
        for name, revision, spec in live:
            current = self.endpoints.get(name)
            if current is not None and current.revision == revision and current.spec == spec:
                continue
            if current is None:
                self.status[name] = "loading"
            try:
                self._apply(name, revision, spec, current)
                self.status[name] = f"serving revision {revision}"
            except Exception as exc:
                message = exc.message if isinstance(exc, ModelyardError) else repr(exc)
                kept = f"; still serving revision {current.revision}" if current else ""
                self.status[name] = f"cannot serve revision {revision}: {message}{kept}"
                log.error("endpoint %s: %s", name, self.status[name])

    def _apply(self, name: str, revision: int, spec: Spec, current: EndpointState | None) -> None:
        models = {target.ref: self._model(target) for _, target in spec.targets()}
        signatures = {ref: model.signature.to_dict() for ref, model in models.items()}
        check_compatible(spec, signatures)
        if current is not None and current.revision == revision:
            # a followed alias moved: the requests clients send today must still be readable
            served = current.routes[0]
            check_compatible(
                Spec(routes=[served.target, *spec.routes], shadows=spec.shadows),
                {**signatures, served.target.ref: served.model.signature.to_dict()},
            )
        if name not in self._journals:
            journal = self._journals[name] = self.log.journal(name)
            if isinstance(journal, Journal):  # a disk read-only or full from the start
                try:
                    journal.probe()
                except OSError as exc:
                    self._log_failed(name, journal, exc)
        reusable = {}
        if current is not None and current.spec.batching == spec.batching:
            reusable = {
                (lane.role, lane.target.ref): lane for lane in current.routes + current.shadows
            }
        lanes: dict[str, list[Lane]] = {"primary": [], "shadow": []}
        for role, target in spec.targets():
            model = models[target.ref]
            if role == "shadow":
                self._watch_shadow(name, model)
                lanes[role].append(Lane(target, model, None, role))
                continue
            old = reusable.pop((role, target.ref), None)
            if old is not None:
                lanes[role].append(Lane(target, old.model, old.batcher, role))
                continue
            lanes[role].append(Lane(target, model, self._batcher(name, model, spec), role))
        if lanes["shadow"]:
            self.shadows.start()  # before the first copy: the process loads while we serve
        self.endpoints[name] = EndpointState(
            name, revision, spec, lanes["primary"], lanes["shadow"]
        )
        kept = {id(lane.batcher) for lane in lanes["primary"]}
        for lane in current.routes if current is not None else []:
            if lane.batcher is not None and id(lane.batcher) not in kept:
                # finish its queue and any late arrival, then end
                lane.batcher.stop(wait=False)
        self._forget_unused_models()
        log.info("endpoint %s: serving revision %s", name, revision)

    def _forget_unused_models(self) -> None:
        """Drop versions no endpoint routes to any more (a long-running process changes often)."""
        used = {
            (lane.model.model, lane.model.version, lane.model.digest)
            for state in list(self.endpoints.values())
            for lane in state.routes + state.shadows
        }
        for key in [k for k in self._models if k not in used]:
            del self._models[key]

    def _model(self, target: Target) -> Model:
        version = self.loader.version(target.model, target.version)
        key = (target.model, target.version, version.package_digest)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = self.loader.load(version)
        return model

    def _batcher(self, endpoint: str, model: Model, spec: Spec) -> Batcher:
        batcher = Batcher(
            f"{endpoint} {model.ref}",
            model.predict,
            loop=self.loop,
            max_batch_size=spec.batching.max_batch_size,
            max_wait_ms=spec.batching.max_wait_ms,
            on_batch=self.metrics.batch_size.labels(endpoint, model.ref, "primary").observe,
        )
        self.metrics.queue_depth.labels(endpoint, model.ref, "primary").set_function(
            lambda: batcher.depth
        )
        return batcher

    def _watch_shadow(self, endpoint: str, model: Model) -> None:
        shadows, ref = self.shadows, model.ref
        self.metrics.queue_depth.labels(endpoint, ref, "shadow").set_function(
            lambda: shadows.depth(endpoint, ref)
        )

    # -- the request path ---------------------------------------------------

    def endpoint(self, name: str) -> EndpointState:
        state = self.endpoints.get(name)
        if state is not None:
            return state
        if name in self._expected or (self.names and name in self.names):
            raise NotReady(f"endpoint '{name}' is loading")
        raise NotFound(f"endpoint '{name}' is not served here")

    def new_ids(self, count: int) -> list[str]:
        prefix = self._id_prefix
        return [f"{prefix}-{next(self._ids):08x}" for _ in range(count)]

    async def predict(
        self,
        state: EndpointState,
        rows: list[dict[str, Any]],
        sticky: str | None,
        lane: Lane | None = None,
    ) -> tuple[Lane, list[str], list[Any], list[Any] | None]:
        """Answer ``rows`` from one route picked by weight or ``sticky`` (or the ``lane``
        given, a shadow's version too); log them; hand a copy to every shadow when a route
        answered."""
        lane = lane if lane is not None else state.pick(sticky)
        started = time.perf_counter()
        prepared = lane.model.prepare(rows)  # SignatureError names the column
        ids = self.new_ids(len(rows))
        try:
            if lane.batcher is not None:
                outputs, scores = await lane.batcher.submit(prepared, len(rows))
            else:  # a shadow's version asked for by name: answered here, outside any batch
                (answer,) = await asyncio.to_thread(lane.model.predict, [prepared])
                if isinstance(answer, ModelFailed):
                    raise answer
                outputs, scores = answer
        except ModelFailed as failure:
            self._log(state, lane, ids, rows, None, None, started, failure.message)
            raise
        committed = self._log(state, lane, ids, rows, outputs, scores, started, None)
        if committed is not None:  # a database log: answer only once the rows are committed
            try:
                await asyncio.wrap_future(committed)
            except Exception as exc:
                message = f"the prediction log could not store the answer: {exc}"
                log.error("endpoint %s: %s", state.name, message)
                raise LogUnavailable(message) from None
        if state.shadows and lane.role == "primary":
            # handed over on the loop's next turn: after this answer has been written
            asyncio.get_running_loop().call_soon(
                self.shadows.offer, state.name, state.revision, state.shadow_targets, ids, rows
            )
        return lane, ids, outputs, scores

    async def explain(self, model: Model, rows: list[dict[str, Any]], top: int) -> Explanation:
        """Explain ``rows`` with ``model`` in the explanation process."""
        model.prepare(rows)  # SignatureError names the column before anything is handed over
        loop = asyncio.get_running_loop()
        background = await loop.run_in_executor(
            self._explaining, self.explainers.background_of, model
        )
        future = self.explain_process.submit(model, background, rows, top)
        try:
            outcome = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            raise self.explain_process.failed(model) from None
        return self.explain_process.answer(outcome, model)

    def _log(
        self,
        state: EndpointState,
        lane: Lane,
        ids: list[str],
        rows: list[dict[str, Any]],
        outputs: list[Any] | None,
        scores: list[Any] | None,
        started: float,
        error: str | None,
    ) -> Future[None] | None:
        elapsed = time.perf_counter() - started
        answers = (outputs, scores) if outputs is not None else None
        lines = journal_lines(
            state.name,
            state.revision,
            lane.model,
            lane.role,
            ids,
            rows,
            answers,
            elapsed * 1000.0,
            error,
        )
        journal = self._journals[state.name]
        try:
            committed = journal.append(lines)
        except OSError as exc:  # the file log: the disk refuses (full, read-only)
            raise self._log_failed(state.name, journal, exc) from None
        if state.name in self.log_failures:
            self._log_recovered(state.name)
        self.metrics.observe(state.name, lane.model.ref, lane.role, elapsed, error is not None)
        return committed

    def _log_failed(self, name: str, journal: Journal | SqlJournal, exc: OSError) -> LogUnavailable:
        """Remember that ``name``'s log cannot be written (not ready until it can); the
        error the request is answered with."""
        where = journal.directory if isinstance(journal, Journal) else self.log.describe()
        message = f"prediction log cannot be written: {os_reason(exc)} ('{where}')"
        if self.log_failures.get(name) != message:  # once per failure, not per request
            log.error("endpoint %s: %s; predictions are answered 503 until it can", name, message)
        self.log_failures[name] = message
        self.metrics.log_failures.labels(name).inc()
        return LogUnavailable(message)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "revision": state.revision if (state := self.endpoints.get(name)) else None,
                "status": self.status.get(name, "loading"),
                "routes": [
                    {"version": lane.model.ref, "weight": lane.target.weight}
                    for lane in (state.routes if state else [])
                ],
                "shadows": [lane.model.ref for lane in (state.shadows if state else [])],
                "log_error": self.log_failures.get(name),
            }
            for name in sorted(self._expected)
        ]
