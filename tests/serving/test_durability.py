"""An acknowledged prediction survives ``kill -9`` of the serving process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from tests.conftest import prepare_store
from tests.serving.models import cancer, classifier
from tests.serving.process import ServeProcess
from tests.stores import throwaway_postgres

pytestmark = pytest.mark.slow


@pytest.fixture(params=["files", pytest.param("database", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The file log in the home, or the log in a PostgreSQL metadata database."""
    if request.param == "files":
        yield {}
        return
    with throwaway_postgres() as url:
        yield {"MODELYARD_DB_URL": url, "MODELYARD_PREDICTIONS": "database"}


def test_every_acknowledged_prediction_survives_kill_9(
    tmp_path: Path, where: dict[str, str]
) -> None:
    home = tmp_path / "home"
    prepare_store(home, where)
    settings = Settings(
        home,
        where.get("MODELYARD_DB_URL", f"sqlite:///{home / 'modelyard.db'}"),
        str(home / "artifacts"),
        prediction_root=where.get("MODELYARD_PREDICTIONS"),
    )
    services = bootstrap(settings, create_if_empty=False)
    yard = Yard(LocalBackend(services))
    features, _ = cancer()
    yard.models.register(classifier(), name="cancer", input_example=features.head())
    services.endpoints.create("durable", routes=[TargetRequest.parse("cancer/1=100")])
    services.identity.create_user("loader", "contributor")
    key = services.identity.create_key("loader")[1]
    rows = features.head(2).to_dict(orient="records")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            for _ in range(5000):
                if stop.is_set():
                    return
                try:
                    answer = http.post(f"{url}/endpoints/durable/predict", json={"records": rows})
                except httpx.HTTPError:
                    return  # the server died mid-request: nothing was acknowledged
                if answer.status_code == 200:
                    with lock:
                        acknowledged.extend(answer.json()["ids"])

    serve = ServeProcess(home, "durable", env=where).start()
    threads = [threading.Thread(target=load, args=(serve.url,)) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        serve.kill()  # in the middle of the load
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        serve.stop()
    assert len(acknowledged) >= 400
    folder = home / "predictions" / "durable"
    orphans = [p.name for p in folder.glob("journal-*.jsonl")]
    assert bool(orphans) != bool(where)  # the database log has no journal to leave behind

    # the first read seals the dead process's journal; nothing is lost or doubled
    logged = services.predictions.query("durable", limit=None, with_labels=False)
    ids = logged.column("id").to_pylist()
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(set(ids))
    assert not list(folder.glob("journal-*.jsonl"))
    for orphan in orphans:
        token = orphan.removeprefix("journal-").removesuffix(".jsonl")
        assert (folder / f"segment-{token}.parquet").is_file()
    again = services.predictions.query("durable", limit=None, with_labels=False)
    assert sorted(again.column("id").to_pylist()) == sorted(ids)
    services.close()
