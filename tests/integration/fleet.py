"""A control plane at scale, seeded through the services: many models, endpoints, monitors.

``seed`` registers ``models`` models of ``versions`` versions each, all real
registrations (``Catalog.register_version``: the package's files hash-checked, the
row, the audit event, ``VersionRegistered`` to its subscribers), all of one small
package stored once: registering it again is what a retraining that reproduced the
same model would do, and it keeps the seed to the metadata store's work, which is
what this measures. Registrations run on a few threads (each is a database round-trip
bound transaction). Every tenth model gets an endpoint routed to its version 3 (so
its default monitor), each monitor watches windows of ``WINDOW`` rows, and
``send_traffic`` writes each endpoint's predictions to the prediction log as the
serving process does.

Used by ``tests/integration/test_scale.py`` and ``benchmarks/scale.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from modelyard.serving.journal import Journal, canonical, record_line
from tests.batch.data import FEATURES, frame, model

WINDOW = 50  # rows per monitor window
GROUPS = 10  # versions carry the tag group=<model number mod GROUPS>


def model_name(number: int) -> str:
    return f"fleet-{number:04d}"


def endpoint_name(number: int) -> str:
    return f"fleet-api-{number:03d}"


@dataclass
class Fleet:
    models: list[str]
    endpoints: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def seed(
    services: Services,
    *,
    models: int = 1000,
    versions: int = 3,
    endpoints: int = 100,
    threads: int = 6,
) -> Fleet:
    """Register the fleet; ``Fleet.seconds`` says how long each part took."""
    yard = Yard(LocalBackend(services))
    started = time.perf_counter()
    first = yard.models.register(
        model(), name=model_name(0), input_example=frame(5)[FEATURES], tags={"group": "0"}
    )

    def register(number: int) -> None:
        for _ in range(versions - 1 if number == 0 else versions):
            services.catalog.register_version(
                model_name(number),
                source=first.source,
                tags={"group": str(number % GROUPS)},
            )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(register, range(models)))
    seconds = {"register": time.perf_counter() - started}
    started = time.perf_counter()
    step = max(1, models // endpoints)
    names = [endpoint_name(n) for n in range(endpoints)]

    def deploy(number: int) -> None:
        target = TargetRequest.parse(f"{model_name(number * step)}/{versions}=100")
        services.endpoints.create(endpoint_name(number), routes=[target])
        services.monitors.update(endpoint_name(number), {"window": f"{WINDOW} rows"})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(deploy, range(endpoints)))
    seconds["deploy"] = time.perf_counter() - started
    return Fleet([model_name(n) for n in range(models)], names, seconds)


def send_traffic(services: Services, fleet: Fleet, *, windows: int = 2) -> int:
    """Log ``windows`` windows of predictions to every endpoint; returns the rows each got."""
    rows = windows * WINDOW
    data = frame(rows, seed=3)
    fitted = model()
    proba = fitted.predict_proba(data[FEATURES])
    outputs = fitted.classes_[proba.argmax(axis=1)]
    records = data[FEATURES].to_dict(orient="records")
    start = int(time.time() * 1000) - 60_000
    root = Path(services.settings.predictions_root)
    for endpoint in fleet.endpoints:
        version = services.endpoints.get(endpoint).spec.routes[0]
        lines = b"".join(
            record_line(
                id=uuid.uuid4().hex[:16],
                endpoint=endpoint,
                revision=1,
                model=version.model,
                version=version.version,
                role="primary",
                ts=start + index * 10,
                latency_ms=2.0,
                input=orjson.dumps(record),
                output=canonical(output).encode(),
                scores=orjson.dumps(scores.tolist()),
            )
            for index, (record, output, scores) in enumerate(
                zip(records, outputs, proba, strict=True)
            )
        )
        journal = Journal(root / endpoint)
        journal.append(lines)
        journal.close()
    return rows


def start_workers(
    services: Services,
    count: int,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen[str]]:
    """``count`` ``modelyard worker`` processes over the same store (``args`` added to
    their command line, ``env`` to their environment), each started (it said so on
    stderr) before this returns; the caller stops them."""
    settings = services.settings
    environment = {
        **os.environ,
        "MODELYARD_HOME": str(settings.home),
        "MODELYARD_DB_URL": settings.db_url,
        "MODELYARD_ARTIFACTS": settings.artifact_root,
        "OPENBLAS_NUM_THREADS": "1",
        **(env or {}),
    }
    command = [sys.executable, "-m", "modelyard.cli.main", "worker", "--poll", "0.5", *args]
    workers = [
        subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    for worker in workers:
        assert worker.stderr is not None
        line = worker.stderr.readline()
        while line and "started" not in line:
            line = worker.stderr.readline()
        if "started" not in line:
            for started in workers:
                started.kill()
            raise RuntimeError(f"a worker exited before it started: {worker.wait()}")
    return workers
