"""The data plane on Ray Serve: one small Ray head for the module, two yards served in turn.

The head runs in this process on 127.0.0.1 (two CPUs, a 100 MB object store, no
dashboard); Ray Serve's proxy listens on a free loopback port. Two yards take turns
as its one application, each replica the local data plane (half a CPU each):

- ``served``: SQLite, the prediction log in files; endpoint ``ray-api`` (two versions,
  70/30) on two replicas;
- ``on_database``: a throwaway PostgreSQL database with ``MODELYARD_PREDICTIONS=database``;
  endpoint ``ray-db`` on a model that takes 50 ms a call, autoscaled between one and
  two replicas with delays of a second.

A test names the yard it needs; the application is redeployed only when the other
yard is on, so in file order once. Everything is shut down after the module.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from modelyard.serving.inprocess import serve_in_thread
from tests.conftest import sqlite_settings
from tests.serving.models import Sleepy, cancer, classifier
from tests.stores import throwaway_postgres

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = pytest.mark.slow  # starts a Ray head, Ray Serve and its replicas

ENDPOINT = "ray-api"
DATABASE_ENDPOINT = "ray-db"


@dataclass
class Served:
    url: str
    key: str
    services: Services
    rows: list[dict[str, Any]]
    endpoint: str = ENDPOINT
    keys: dict[str, str] = field(default_factory=dict)  # caller -> key, for the parity test


@dataclass
class Head:
    url: str
    on: Served | None = None  # the yard the application serves now


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
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
        yield Head(f"http://127.0.0.1:{port}")
    finally:
        serve.shutdown()
        ray.shutdown()


def _on(head: Head, yard: Served) -> Served:
    """``yard``, once the application serves it."""
    from modelyard.serving.rayserve import deploy

    if head.on is not yard:
        deploy(yard.services, [yard.endpoint], refresh=0.25, replica_cpus=0.5)
        head.on = yard
    return yard


@pytest.fixture(scope="module")
def files_yard(head: Head, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("ray-serve-home")
    services = bootstrap(sqlite_settings(home))
    try:
        yard = Yard(LocalBackend(services))
        features, _ = cancer()
        yard.models.register(classifier(1.0), name="cancer", input_example=features.head())
        yard.models.register(classifier(0.001), name="cancer", input_example=features.head())
        yard.models.register(classifier(0.1), name="cancer", input_example=features.head())
        yard.endpoints.create(
            ENDPOINT,
            routes=["cancer/1=70", "cancer/2=30"],
            shadows=["cancer/3"],
            batching={"min_replicas": 2, "max_replicas": 2, "target_ongoing_requests": 4},
        )
        identity = services.identity
        keys = {}
        for user, role in (("caller", "contributor"), ("watcher", "viewer")):
            identity.create_user(user, role)
            keys[user] = identity.create_key(user)[1]
        keys["scoped"] = identity.create_key("caller", endpoint=ENDPOINT)[1]
        revoked, keys["revoked"] = identity.create_key("caller")
        identity.revoke_key(revoked.id)
        rows = features.head(2).to_dict(orient="records")
        yield Served(head.url, keys["caller"], services, rows, keys=keys)
    finally:
        services.close()


@pytest.fixture
def served(head: Head, files_yard: Served) -> Served:
    return _on(head, files_yard)


@pytest.fixture(scope="module")
def database_yard(head: Head, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from modelyard.serving.rayserve import APPLICATION

    home = tmp_path_factory.mktemp("ray-serve-database")
    with throwaway_postgres() as url:
        settings = Settings(home, url, str(home / "artifacts"), prediction_root="database")
        services = bootstrap(settings)
        yard: Served | None = None
        try:
            features, _ = cancer()
            client = Yard(LocalBackend(services))
            client.models.register(Sleepy(1, seconds=0.05), name="slow", input_example=features)
            scaling = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2}
            delays = {"upscale_delay_s": 1, "downscale_delay_s": 1}
            client.endpoints.create(
                DATABASE_ENDPOINT, routes=["slow/1=100"], batching={**scaling, **delays}
            )
            services.identity.create_user("caller", "contributor")
            key = services.identity.create_key("caller")[1]
            rows = features.head(1).to_dict(orient="records")
            yard = Served(head.url, key, services, rows, endpoint=DATABASE_ENDPOINT)
            yield yard
        finally:
            if yard is not None and head.on is yard:  # no replica writes to a dropped database
                serve.delete(APPLICATION)
                head.on = None
            services.close()


@pytest.fixture
def on_database(head: Head, database_yard: Served) -> Served:
    return _on(head, database_yard)


def _replicas() -> list[str]:
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith("SERVE_REPLICA::")
    ]


def _replica_states() -> dict[str, int]:
    """How many replicas of the data plane are in each state, by Ray Serve's status API."""
    from modelyard.serving.rayserve import APPLICATION, DEPLOYMENT

    application = serve.status().applications.get(APPLICATION)
    if application is None or DEPLOYMENT not in application.deployments:
        return {}
    return {str(k): int(v) for k, v in application.deployments[DEPLOYMENT].replica_states.items()}


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _logged(served: Served, role: str = "primary") -> list[str]:
    table = served.services.predictions.query(
        served.endpoint, role=role, limit=None, with_labels=False
    )
    return list(table.column("id").to_pylist())


class Load:
    """Threads posting one request after another until stopped (or ``each`` requests);
    the ids of every answered prediction and the count of each status."""

    def __init__(self, served: Served, threads: int, each: int = 2000) -> None:
        self.served = served
        self.acknowledged: list[str] = []
        self.statuses: Counter[int | str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(each,)) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _run(self, each: int) -> None:
        predict = f"{self.served.url}/endpoints/{self.served.endpoint}/predict"
        headers = {"Authorization": f"Bearer {self.served.key}"}
        with httpx.Client(headers=headers, timeout=30) as http:
            for _ in range(each):  # bounded
                if self._stop.is_set():
                    return
                try:
                    answer = http.post(predict, json={"records": self.served.rows})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1  # not acknowledged
                    continue
                with self._lock:
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        self.acknowledged.extend(answer.json()["ids"])


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
    # the shadow answers off the response path, in each replica's own shadow process:
    # copies of answered predictions only, each logged once, by the shadow version
    assert _wait_for(lambda: len(_logged(served, "shadow")) > 0, timeout=120)
    shadowed = served.services.predictions.query(
        ENDPOINT, role="shadow", limit=None, with_labels=False
    )
    ids = shadowed.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    assert set(ids) <= set(logged)
    assert set(shadowed.column("version").to_pylist()) == {3}


CALLERS = ("nobody", "watcher", "caller", "scoped", "revoked")


def _error(answer: httpx.Response) -> Any:
    if answer.status_code < 400:
        return None
    return answer.json().get("error")


def _series(exposition: str) -> set[str]:
    """The series of a /metrics answer (name and labels, not values)."""
    return {line.rsplit(" ", 1)[0] for line in exposition.splitlines() if line and line[0] != "#"}


def _families(exposition: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+ \S+)$", exposition, flags=re.MULTILINE))


def _conversation(url: str, served: Served) -> tuple[list[Any], list[str], str]:
    """The same requests, from every caller: what came back (statuses, errors, the version
    each sticky key reached), the ids predicted, and one /metrics exposition."""
    predict = f"/endpoints/{ENDPOINT}/predict"
    body = {"records": served.rows[:1]}
    facts: list[Any] = []
    for who in CALLERS:
        headers = {"Authorization": f"Bearer {served.keys[who]}"} if who in served.keys else {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for method, path in (
                ("POST", predict),
                ("POST", "/endpoints/other-api/predict"),
                ("GET", "/metrics"),
                ("GET", "/endpoints"),
                ("GET", "/healthz"),
            ):
                answer = http.request(method, path, json=body if method == "POST" else None)
                facts.append((who, method, path, answer.status_code, _error(answer)))
    ids: list[str] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {served.key}"}) as http:
        for number in range(16):
            key = f"customer-{number}"
            by_header = [
                http.post(predict, json=body, headers={"X-Sticky-Key": key}).json()
                for _ in range(3)
            ]
            by_body = http.post(predict, json={**body, "sticky_key": key}).json()
            facts.append((key, sorted({a["version"] for a in [*by_header, by_body]})))
            ids += [i for answer in [*by_header, by_body] for i in answer["ids"]]
        http.post(predict, json={"records": [{"mean radius": "wide"}]})  # a 422, counted
        exposition = http.get("/metrics").text
    return facts, ids, exposition


def _refusals(services: Services) -> int:
    events = services.audit.events(resource="/")
    return sum(1 for e in events if e.summary.get("plane") == "serving" and e.status in (401, 403))


def _labelled(served: Served, ids: list[str]) -> list[tuple[str, Any]]:
    """Label ``ids`` through the control plane; (id, label) as the log then reads them."""
    result = served.services.feedback.record(ENDPOINT, [(i, 1) for i in ids] + [("nope", 0)])
    assert (result.recorded, result.unknown) == (len(ids), ["nope"])
    table = served.services.predictions.query(ENDPOINT, ids=ids, role="primary", limit=None)
    return sorted((row["id"], row["label"]) for row in table.to_pylist())


def test_keys_sticky_keys_labels_and_metrics_answer_as_on_the_local_data_plane(
    served: Served,
) -> None:
    audited = _refusals(served.services)
    with serve_in_thread(served.services, [ENDPOINT]) as local_url:
        local, local_ids, local_metrics = _conversation(local_url, served)
    local_refusals = _refusals(served.services) - audited
    on_ray, ray_ids, ray_metrics = _conversation(served.url, served)
    assert on_ray == local  # statuses, error kinds and messages, sticky versions
    status = {(who, path): code for who, _, path, code, _ in on_ray[: len(CALLERS) * 5]}
    predict, other = f"/endpoints/{ENDPOINT}/predict", "/endpoints/other-api/predict"
    assert [status[who, predict] for who in CALLERS] == [401, 403, 200, 200, 401]
    assert [status[who, "/metrics"] for who in CALLERS] == [401, 200, 200, 403, 401]
    assert status["scoped", other] == 403
    assert {tuple(versions) for _, versions in on_ray[-16:]} == {(1,), (2,)}  # both reached
    assert _refusals(served.services) - audited - local_refusals == local_refusals > 0

    local_labels, ray_labels = _labelled(served, local_ids), _labelled(served, ray_ids)
    assert [i for i, _ in ray_labels] == sorted(ray_ids)  # every id Ray's replicas gave
    assert {label for _, label in ray_labels} == {label for _, label in local_labels}

    assert _families(ray_metrics) == _families(local_metrics)
    wanted = _series(local_metrics)  # a replica's answer holds what it served; both, together
    seen = _series(ray_metrics)
    with httpx.Client(headers={"Authorization": f"Bearer {served.key}"}, timeout=30) as http:
        for _ in range(30):  # bounded; scrapes land on either replica
            if wanted <= seen:
                break
            seen |= _series(http.get(f"{served.url}/metrics").text)
    assert wanted <= seen, wanted - seen


def test_a_killed_replica_is_replaced_and_loses_no_acknowledged_prediction(
    served: Served,
) -> None:
    before = _replicas()
    assert len(before) == 2
    with Load(served, threads=3, each=400) as load:
        _wait_for(lambda: load.count() >= 100, timeout=30)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)  # mid-load
        _wait_for(lambda: load.count() >= 600, timeout=30)
    assert len(load.acknowledged) >= 600, load.statuses
    assert _wait_for(lambda: len(_replicas()) == 2 and before[0] not in _replicas(), 60)

    logged = _logged(served)  # the first read seals the dead replica's journal
    assert set(load.acknowledged) <= set(logged)
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


def test_replicas_are_added_under_load_and_removed_after_it(on_database: Served) -> None:
    # one replica at rest; four clients keep about four requests in flight against a
    # target of two per replica, so Ray Serve wants two, and one again once they stop
    assert _wait_for(lambda: _replica_states() == {"RUNNING": 1}, timeout=60), _replica_states()
    with Load(on_database, threads=4) as load:
        added = _wait_for(lambda: _replica_states().get("RUNNING") == 2, timeout=60)
        answered_by_two = load.count()
        _wait_for(lambda: load.count() >= answered_by_two + 40, timeout=10)  # both serve
    assert added, (_replica_states(), load.statuses)
    assert _wait_for(lambda: _replica_states() == {"RUNNING": 1}, timeout=90), _replica_states()
    assert set(load.statuses) == {200}, load.statuses  # scaling failed no request

    logged = _logged(on_database)  # in the database: each replica wrote its own answers
    assert set(load.acknowledged) <= set(logged)
    assert len(logged) == len(set(logged))


def test_replicas_log_into_the_database_and_a_killed_one_loses_no_acknowledged_prediction(
    on_database: Served,
) -> None:
    with Load(on_database, threads=3) as load:
        _wait_for(lambda: load.count() >= 60, timeout=30)
        victim = _replicas()[0]
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)  # mid-load
        killed_at = load.count()
        _wait_for(lambda: load.count() >= killed_at + 100, timeout=60)  # a replacement serves
    assert load.count() >= killed_at + 100, (load.statuses, _replica_states())
    assert victim not in _replicas()

    logged = _logged(on_database)
    assert set(load.acknowledged) <= set(logged)  # committed before each answer was sent
    assert len(logged) == len(set(logged))
    journals = list(on_database.services.settings.home.rglob("journal-*.jsonl"))
    assert journals == []  # nothing went to files


def test_a_scaling_change_reconfigures_the_running_replicas_without_replacing_them(
    on_database: Served,
) -> None:
    from modelyard.serving.rayserve import deploy

    # what `modelyard serve --backend ray` does when it reads new scaling settings
    def redeploy(**scaling: int) -> None:
        on_database.services.endpoints.update(DATABASE_ENDPOINT, batching=scaling)
        deploy(on_database.services, [DATABASE_ENDPOINT], refresh=0.25, replica_cpus=0.5)

    assert _wait_for(lambda: _replica_states() == {"RUNNING": 1}, timeout=90), _replica_states()
    (first,) = _replicas()
    with Load(on_database, threads=2, each=300) as load:
        redeploy(min_replicas=2)  # one more replica; the first keeps serving
        assert _wait_for(lambda: _replica_states() == {"RUNNING": 2}, timeout=60)
        two = _replicas()
        assert first in two
        redeploy(min_replicas=1, target_ongoing_requests=3)  # back to one, another target
        assert _wait_for(lambda: _replica_states() == {"RUNNING": 1}, timeout=90)
    assert set(_replicas()) < set(two)  # one of the two stayed: no replica was replaced
    assert set(load.statuses) == {200}, load.statuses
