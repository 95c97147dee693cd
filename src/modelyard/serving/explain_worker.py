"""The explanation process of a serving process: SHAP computed off the predictions' GIL.

SHAP's explainers hold the GIL while they compute (a forest of 100 trees takes several
milliseconds a row), so explanations computed in the serving process would stall every
prediction waiting behind them. A serving process therefore hands explanations to one
child process, started by the first explanation it is asked for (so a process never
asked to explain starts none and never loads ``shap``): the request's rows, the
version's package folder and digest, and for the linear and model-agnostic explainers a
sample of its reference data. The child loads each version once (verified against its
digest), keeps its explainer, and answers one explanation at a time, at nice 10 (the
predictions come first on a busy host); errors come back as their kind and message. A
child that dies is started again for the next request; the request it was computing
fails with ``ModelFailed``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from modelyard.domain.explanations import Explanation
from modelyard.errors import ERROR_KINDS, InvalidInput, ModelFailed, ModelyardError
from modelyard.serving.explainers import Limits, VersionExplainer
from modelyard.serving.models import Model

log = logging.getLogger("modelyard.serving")
VersionKey = tuple[str, int, str]  # model, version, package digest
# the child runs below the serving process's priority: on a busy host the predictions
# come first, and explanations take what CPU is left
EXPLAIN_NICE = 10
_explainers: dict[VersionKey, VersionExplainer] = {}  # in the child: one per version


def _explain(
    key: VersionKey,
    directory: str,
    background: Any,
    limits: Limits,
    rows: list[dict[str, Any]],
    top: int,
) -> Explanation | tuple[str, str]:
    """In the child: explain ``rows`` with version ``key`` (loaded on first use)."""
    try:
        explainer = _explainers.get(key)
        if explainer is None:
            from modelyard.packaging import load_package

            loaded = load_package(directory, key[2])
            model = Model(key[0], key[1], key[2], loaded)
            explainer = _explainers[key] = VersionExplainer(model, background, limits)
        return explainer.explain(rows, top=top)
    except ModelyardError as error:  # sent back as data: some errors do not unpickle
        return error.kind, error.message


class ExplainProcess:
    """One child process computing explanations, started on first use."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(
        self, model: Model, background: Any, rows: list[dict[str, Any]], top: int
    ) -> Future[Explanation | tuple[str, str]]:
        key = (model.model, model.version, model.digest)
        arguments = (key, str(model.loaded.directory), background, self.limits, rows, top)
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # no copy of our threads
                self._pool = ProcessPoolExecutor(
                    1, mp_context=context, initializer=os.nice, initargs=(EXPLAIN_NICE,)
                )
            pool = self._pool
        try:
            return pool.submit(_explain, *arguments)
        except BrokenProcessPool:
            self._restart(pool)
            raise ModelFailed("the explanation process stopped; try again") from None

    def answer(self, outcome: Explanation | tuple[str, str], model: Model) -> Explanation:
        """The explanation, or the error the child reported, raised here."""
        if isinstance(outcome, Explanation):
            return outcome
        kind, message = outcome
        error_class = ERROR_KINDS.get(kind, InvalidInput)
        raise error_class(message)

    def failed(self, model: Model) -> ModelFailed:
        """The error for a request the child died computing; the next one starts a new child."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        log.error("the explanation process died explaining with %s", model.ref)
        return ModelFailed(f"the explanation process died explaining with {model.ref}")

    def _restart(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
