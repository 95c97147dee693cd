"""A serving process whose prediction log disk fills up or turns read-only: it answers
503 instead of acknowledging what it could not log, keeps running, and serves again
once the disk takes writes, with no restart; every acknowledged id is logged once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from tests.conftest import prepare_store
from tests.disk import SmallDisk, small_disk
from tests.serving.models import cancer, classifier
from tests.serving.process import ServeProcess

pytestmark = pytest.mark.slow

ENDPOINT = "logged"
FULL = "prediction log cannot be written: no space left on device"
READ_ONLY = "prediction log cannot be written: read-only file system"
FEATURES = cancer()[0]


@dataclass
class Store:
    home: Path
    key: str
    services: Services


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    home = tmp_path_factory.mktemp("disk") / "home"
    prepare_store(home)
    settings = Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(home / "artifacts"))
    services = bootstrap(settings, create_if_empty=False)
    Yard(LocalBackend(services)).models.register(
        classifier(), name="cancer", input_example=FEATURES.head()
    )
    services.endpoints.create(ENDPOINT, routes=[TargetRequest.parse("cancer/1=100")])
    services.identity.create_user("caller", "contributor")
    yield Store(home, services.identity.create_key("caller")[1], services)
    services.close()


@dataclass
class Caller:
    """Sends predictions (plain and V2) and keeps every id a 200 acknowledged."""

    http: httpx.Client
    acknowledged: list[str] = field(default_factory=list)

    def predict(self) -> httpx.Response:
        rows = FEATURES.head(3).to_dict(orient="records")
        answer = self.http.post(f"/endpoints/{ENDPOINT}/predict", json={"records": rows})
        if answer.status_code == 200:
            self.acknowledged.extend(answer.json()["ids"])
        return answer

    def infer(self) -> httpx.Response:
        features = FEATURES.head(2)
        inputs = [
            {"name": name, "shape": [2], "datatype": "FP64", "data": features[name].tolist()}
            for name in features.columns
        ]
        answer = self.http.post(f"/v2/models/{ENDPOINT}/infer", json={"inputs": inputs})
        if answer.status_code == 200:
            self.acknowledged.extend(answer.json()["parameters"]["prediction_ids"].split(","))
        return answer

    def until_refused(self, attempts: int = 40) -> httpx.Response:
        """Predict until one is refused (the slack of the journal's last page may take a
        few first); that refusal."""
        for _ in range(attempts):
            answer = self.predict()
            if answer.status_code != 200:
                return answer
        raise AssertionError(f"{attempts} predictions were acknowledged on a full disk")

    def ready(self) -> httpx.Response:
        return self.http.get("/readyz")

    def wait_for_log_error(self, timeout: float = 20) -> None:
        """Until the endpoint is loaded and reports that its log cannot be written."""
        deadline = time.monotonic() + timeout
        while not any(e["log_error"] for e in self.ready().json()["endpoints"]):
            assert time.monotonic() < deadline, self.ready().text
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.ready().status_code != 200:
            assert time.monotonic() < deadline, self.ready().text
            time.sleep(0.1)


@contextmanager
def serving(store: Store, *, ready: bool = True) -> Iterator[tuple[ServeProcess, Caller]]:
    serve = ServeProcess(store.home, ENDPOINT).start(ready=ready)
    headers = {"Authorization": f"Bearer {store.key}"}
    try:
        with httpx.Client(base_url=serve.url, headers=headers, timeout=20) as http:
            yield serve, Caller(http)
        assert serve.process is not None and serve.process.poll() is None  # never crashed
    finally:
        serve.stop()


def refused_with(answer: httpx.Response, reason: str, folder: Path) -> None:
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["kind"] == "log_unavailable"
    assert error["message"] == f"{reason} ('{folder}')"


def logged_ids(store: Store) -> list[str]:
    table = store.services.predictions.query(ENDPOINT, limit=None, with_labels=False)
    return list(table.column("id").to_pylist())


def test_a_full_disk_is_answered_503_and_serving_resumes_when_space_returns(
    store: Store,
) -> None:
    folder = store.home / "predictions" / ENDPOINT
    with small_disk(store.home / "predictions") as disk:
        with serving(store) as (_, caller):
            assert caller.predict().status_code == 200
            filler = disk.fill()
            refused_with(caller.until_refused(), FULL, folder)
            refused_with(caller.predict(), FULL, folder)
            v2 = caller.infer()
            assert v2.status_code == 503 and v2.json() == {"error": f"{FULL} ('{folder}')"}
            not_ready = caller.ready()
            assert not_ready.status_code == 503
            assert not_ready.json()["endpoints"][0]["log_error"] == f"{FULL} ('{folder}')"
            assert caller.http.get("/v2/health/ready").status_code == 503
            assert caller.http.get("/healthz").status_code == 200
            metrics = caller.http.get("/metrics").text
            assert (
                f'modelyard_prediction_log_failures_total{{endpoint="{ENDPOINT}"}} 3.0' in metrics
            )

            disk.free(filler)
            caller.wait_ready()  # the process probes its log folder: no request needed
            assert caller.predict().status_code == 200
            assert caller.infer().status_code == 200
        assert_logged_once(store, caller, disk)


def test_a_read_only_disk_is_answered_503_until_it_is_writable_again(store: Store) -> None:
    folder = store.home / "predictions" / ENDPOINT
    with small_disk(store.home / "predictions") as disk:
        disk.remount(read_only=True)  # from the start: the endpoint loads all the same
        with serving(store, ready=False) as (_, caller):
            caller.wait_for_log_error()
            assert caller.ready().status_code == 503
            refused_with(caller.predict(), READ_ONLY, folder)
            disk.remount(read_only=False)
            caller.wait_ready()
            assert caller.predict().status_code == 200

            filler = disk.fill()
            refused_with(caller.until_refused(), FULL, folder)
            disk.free(filler)
            # the failed journal is closed, so Linux lets the disk become read-only
            disk.remount(read_only=True)
            refused_with(caller.predict(), READ_ONLY, folder)
            v2 = caller.infer()
            assert v2.status_code == 503 and v2.json() == {"error": f"{READ_ONLY} ('{folder}')"}
            assert caller.ready().status_code == 503

            disk.remount(read_only=False)
            assert caller.predict().status_code == 200  # at once: the request tries
            caller.wait_ready()
            assert caller.infer().status_code == 200
        assert_logged_once(store, caller, disk)


def assert_logged_once(store: Store, caller: Caller, disk: SmallDisk) -> None:
    """Every acknowledged id is in the log exactly once, and nothing refused is."""
    ids = logged_ids(store)
    assert len(caller.acknowledged) >= 4
    assert len(ids) == len(set(ids))
    assert set(ids) == set(caller.acknowledged)
    assert not list((disk.path / ENDPOINT).glob(".segment-*"))  # no temp file left
