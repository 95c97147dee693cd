"""The data plane on Ray Serve: one small Ray head and one deployment for the module.

The head runs in this process on 127.0.0.1 (two CPUs, a 100 MB object store, no
dashboard); Ray Serve's proxy listens on a free loopback port. The endpoint is
served by two replicas (half a CPU each), each the local data plane over the same
SQLite store and the same prediction log folder. Everything is shut down after
the module.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from tests.conftest import sqlite_settings
from tests.serving.models import cancer, classifier

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = pytest.mark.slow  # starts a Ray head, Ray Serve and its replicas

ENDPOINT = "ray-api"


@dataclass
class Served:
    url: str
    key: str
    services: Services
    rows: list[dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from modelyard.serving.rayserve import deploy

    home = tmp_path_factory.mktemp("ray-serve-home")
    services = bootstrap(sqlite_settings(home))
    yard = Yard(LocalBackend(services))
    features, _ = cancer()
    yard.models.register(classifier(1.0), name="cancer", input_example=features.head())
    yard.models.register(classifier(0.001), name="cancer", input_example=features.head())
    yard.endpoints.create(
        ENDPOINT,
        routes=["cancer/1=70", "cancer/2=30"],
        batching={"min_replicas": 2, "max_replicas": 2, "target_ongoing_requests": 4},
    )
    services.identity.create_user("caller", "contributor")
    key = services.identity.create_key("caller")[1]
    port = _free_port()
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        scaling = deploy(services, [ENDPOINT], refresh=0.25, replica_cpus=0.5)
        assert (scaling["min_replicas"], scaling["max_replicas"]) == (2, 2)
        rows = features.head(2).to_dict(orient="records")
        yield Served(f"http://127.0.0.1:{port}", key, services, rows)
    finally:
        serve.shutdown()
        ray.shutdown()
        services.close()


def _replicas() -> list[str]:
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith("SERVE_REPLICA::")
    ]


def _logged(served: Served) -> list[str]:
    table = served.services.predictions.query(ENDPOINT, limit=None, with_labels=False)
    return list(table.column("id").to_pylist())


def test_predictions_need_a_key_follow_weights_and_are_logged_once(served: Served) -> None:
    predict = f"{served.url}/endpoints/{ENDPOINT}/predict"
    refused = httpx.post(predict, json={"records": served.rows}, timeout=30)
    assert refused.status_code == 401
    assert refused.json()["error"]["kind"] == "not_authenticated"

    versions: Counter[int] = Counter()
    acknowledged: list[str] = []
    with httpx.Client(headers={"Authorization": f"Bearer {served.key}"}, timeout=30) as http:
        for _ in range(200):
            answer = http.post(predict, json={"records": served.rows[:1]})
            assert answer.status_code == 200, answer.text
            versions[answer.json()["version"]] += 1
            acknowledged.extend(answer.json()["ids"])
        sticky = {
            http.post(predict, json={"records": served.rows, "sticky_key": "customer-7"}).json()[
                "version"
            ]
            for _ in range(20)
        }
        metrics = http.get(f"{served.url}/metrics")
    assert 0.55 <= versions[1] / 200 <= 0.85  # 70% of the traffic, roughly
    assert len(sticky) == 1  # one key, one version, whichever replica answers
    assert metrics.status_code == 200 and "modelyard" in metrics.text
    logged = _logged(served)
    assert len(logged) == len(set(logged))  # each prediction once
    assert set(acknowledged) <= set(logged)


def test_a_killed_replica_is_replaced_and_loses_no_acknowledged_prediction(
    served: Served,
) -> None:
    predict = f"{served.url}/endpoints/{ENDPOINT}/predict"
    acknowledged: list[str] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {served.key}"}, timeout=30) as http:
            for _ in range(400):  # bounded
                if stop.is_set():
                    return
                try:
                    answer = http.post(predict, json={"records": served.rows})
                except httpx.HTTPError:
                    continue  # not acknowledged
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        acknowledged.extend(answer.json()["ids"])

    before = _replicas()
    assert len(before) == 2
    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)  # mid-load
        while len(acknowledged) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(acknowledged) >= 600, statuses
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = _replicas()
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.5)
    assert len(now) == 2 and before[0] not in now  # replaced

    logged = _logged(served)  # the first read seals the dead replica's journal
    assert set(acknowledged) <= set(logged)
    assert len(logged) == len(set(logged))


def test_a_new_revision_reaches_every_replica_without_failed_requests(served: Served) -> None:
    predict = f"{served.url}/endpoints/{ENDPOINT}/predict"
    answers: list[tuple[int, int | None]] = []  # (status, revision)
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {served.key}"}, timeout=30) as http:
            for _ in range(1500):  # bounded
                if stop.is_set():
                    return
                answer = http.post(predict, json={"records": served.rows})
                revision = answer.json().get("revision") if answer.status_code == 200 else None
                with lock:
                    answers.append((answer.status_code, revision))

    before = served.services.endpoints.get(ENDPOINT).revision
    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        served.services.endpoints.update(ENDPOINT, routes=[TargetRequest.parse("cancer/2=100")])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                recent = [revision for _, revision in answers[-40:]]
            if len(recent) == 40 and set(recent) == {before + 1}:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: len(answers)}  # no request failed during the change
    revisions = [revision for _, revision in answers]
    assert revisions[0] == before and revisions[-40:] == [before + 1] * 40  # both replicas
