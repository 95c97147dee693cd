"""The shadow process: computes and logs shadow predictions away from the primaries.

Started by a serving process (``serving/shadows.py``) as
``python -m modelyard.serving.shadow_worker`` with the serving process's
settings in its environment. It lowers its own CPU priority to the minimum,
reads copies of answered requests from stdin, loads each shadow version on first
use (verified against its digest; a version unused for ``IDLE_UNLOAD`` seconds is
dropped), batches per (endpoint, version) with large batches held open up to a
second, and writes the rows to its own journal per endpoint, exactly as the
serving process logged shadows before: role ``shadow``, the primary's ids and
revision, the batch's compute time as latency, the error of a failing shadow.
Every batch is reported on stdout (one JSON line). When stdin closes it finishes
what it holds, closes its journals (readers of the log seal them) and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from modelyard.bootstrap import bootstrap
from modelyard.config import Settings
from modelyard.errors import ModelFailed, ModelyardError, SignatureError
from modelyard.serving.batching import Batcher
from modelyard.serving.journal import Journal
from modelyard.serving.models import Model, ModelLoader, journal_lines
from modelyard.serving.predictlog import PredictionLog
from modelyard.serving.shadows import ShadowTarget, lower_priority, read_frames
from modelyard.serving.sqllog import SqlJournal

log = logging.getLogger("modelyard.serving.shadow_worker")

# a shadow's model is called rarely, on many rows: up to 512, gathered for a second
SHADOW_BATCH = 512
SHADOW_WAIT_MS = 1000.0
SHADOW_QUEUE = 4096  # copies per (endpoint, version) waiting for a batch
IDLE_UNLOAD = 300.0
HOUSEKEEPING_EVERY = 1.0


class Reports:
    """JSON lines to the serving process, one ``write`` each."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, report: dict[str, Any]) -> None:
        line = orjson.dumps(report) + b"\n"
        with self._lock, contextlib.suppress(OSError):
            self.stream.write(line)
            self.stream.flush()


@dataclass
class ShadowLane:
    endpoint: str
    model: Model
    batcher: Batcher
    used_at: float = field(default_factory=time.monotonic)


class ShadowWorker:
    """What the shadow process holds: loaded versions, their batchers, its journals."""

    def __init__(self, loader: ModelLoader, predictions: PredictionLog, reports: Reports) -> None:
        self.loader = loader
        self.predictions = predictions
        self.reports = reports
        self._models: dict[ShadowTarget, Model] = {}
        self._lanes: dict[tuple[str, ShadowTarget], ShadowLane] = {}
        self._journals: dict[str, Journal | SqlJournal] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, stream: IO[bytes]) -> None:
        """Compute every copy read from ``stream`` until it closes; then finish and close."""
        keeper = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        keeper.start()
        try:
            for copies in read_frames(stream):
                for endpoint, revision, targets, ids, rows in copies:
                    for model, version, digest in targets:
                        self.offer(endpoint, (model, version, digest), revision, ids, rows)
        finally:
            self._stop.set()
            keeper.join()
            self.close()

    def offer(
        self, endpoint: str, target: ShadowTarget, revision: int, ids: list[str], rows: list[Any]
    ) -> None:
        try:
            lane = self._lane(endpoint, target)
        except Exception as exc:
            message = exc.message if isinstance(exc, ModelyardError) else repr(exc)
            log.error("shadow %s/%s of %s cannot load: %s", target[0], target[1], endpoint, message)
            lane = None
        if lane is None or not lane.batcher.offer((revision, ids, rows), len(rows)):
            ref = f"{target[0]}/{target[1]}"
            self.reports.send({"endpoint": endpoint, "version": ref, "dropped": 1})
            return
        lane.used_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            lanes = list(self._lanes.values())
            self._lanes.clear()
        for lane in lanes:
            lane.batcher.stop()
        for journal in self._journals.values():
            journal.close()

    # -- loading ---------------------------------------------------------------

    def _lane(self, endpoint: str, target: ShadowTarget) -> ShadowLane:
        with self._lock:
            lane = self._lanes.get((endpoint, target))
        if lane is not None:
            return lane
        model = self._model(target)
        if endpoint not in self._journals:
            self._journals[endpoint] = self.predictions.journal(endpoint)
        batcher = Batcher(
            f"{endpoint} {model.ref} shadow",
            self._work(endpoint, model),
            loop=None,
            max_batch_size=SHADOW_BATCH,
            max_wait_ms=SHADOW_WAIT_MS,
            max_queue=SHADOW_QUEUE,
        )
        lane = ShadowLane(endpoint, model, batcher)
        with self._lock:
            self._lanes[endpoint, target] = lane
        return lane

    def _model(self, target: ShadowTarget) -> Model:
        model = self._models.get(target)
        if model is not None:
            return model
        name, number, digest = target
        version = self.loader.version(name, number)
        if version.package_digest != digest:
            raise ModelyardError(f"{version.ref} has digest {version.package_digest}, not {digest}")
        model = self._models[target] = self.loader.load(version)
        log.info("shadow version %s loaded", model.ref)
        return model

    def _housekeeping(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_EVERY):
            for journal in list(self._journals.values()):
                if journal.due():
                    journal.rotate()
            self._unload_idle()

    def _unload_idle(self) -> None:
        cutoff = time.monotonic() - IDLE_UNLOAD
        with self._lock:
            idle = [key for key, lane in self._lanes.items() if lane.used_at < cutoff]
            stopped = [self._lanes.pop(key) for key in idle]
            used = {key[1] for key in self._lanes}
        for lane in stopped:
            lane.batcher.stop(wait=False)  # finishes its queue, then ends
            log.info(
                "shadow %s of %s unloaded after %.0f s unused",
                lane.model.ref,
                lane.endpoint,
                IDLE_UNLOAD,
            )
        for target in [t for t in self._models if t not in used]:
            del self._models[target]

    # -- computing -------------------------------------------------------------

    def _work(self, endpoint: str, model: Model) -> Any:
        journal_of = self._journals

        def work(payloads: list[Any]) -> list[Any]:
            started = time.perf_counter()
            prepared, usable, failed = [], [], []
            for revision, ids, rows in payloads:
                try:
                    prepared.append(model.prepare(rows))
                    usable.append((revision, ids, rows))
                except SignatureError as exc:
                    failed.append((revision, ids, rows, exc.message))
            results = model.predict(prepared) if prepared else []
            seconds = time.perf_counter() - started
            lines = []
            for (revision, ids, rows), result in zip(usable, results, strict=True):
                if isinstance(result, ModelFailed):
                    failed.append((revision, ids, rows, result.message))
                    continue
                lines.append(
                    journal_lines(
                        endpoint, revision, model, "shadow", ids, rows, result, seconds * 1000, None
                    )
                )
            for revision, ids, rows, error in failed:
                lines.append(
                    journal_lines(
                        endpoint, revision, model, "shadow", ids, rows, None, seconds * 1000, error
                    )
                )
            try:
                committed = journal_of[endpoint].append(b"".join(lines))
            except OSError as exc:  # a full disk, say: the journal cut the batch back out
                log.error("shadow %s of %s: could not write the log: %s", model.ref, endpoint, exc)
            else:
                if committed is not None:  # the database log: nobody waits, failures are logged
                    committed.add_done_callback(_report_failed_commit)
            self.reports.send(
                {
                    "endpoint": endpoint,
                    "version": model.ref,
                    "requests": len(payloads),
                    "errors": len(failed),
                    "rows": sum(len(rows) for _, _, rows in payloads),
                    "seconds": seconds,
                }
            )
            return [None] * len(payloads)

        return work


def _report_failed_commit(committed: Future[None]) -> None:
    if committed.exception() is not None:
        log.error("shadow rows could not be stored: %s", committed.exception())


def main() -> None:
    """Entry point of the shadow process."""
    lower_priority(0)  # the serving process has done it; this covers a start by hand
    # the serving process decides when this one ends (by closing stdin), not a signal
    # sent to the whole process group (Ctrl-C in a terminal, a supervisor's SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    reports = Reports(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the reports
    level = sys.argv[1] if len(sys.argv) > 1 else "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    services = bootstrap(settings, create_if_empty=False)
    loader = ModelLoader(
        services.catalog,
        services.artifacts,
        settings.package_cache,
        check_signature=services.signing.check_loadable,
    )
    try:
        ShadowWorker(loader, services.predictions, reports).run(sys.stdin.buffer)
    finally:
        services.close()


if __name__ == "__main__":
    main()
