"""An acknowledged prediction survives ``kill -9`` of the serving process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from tests.conftest import prepare_store
from tests.serving.load import Load
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
    serve = ServeProcess(home, "durable", env=where).start()
    try:
        with Load(serve.url, "durable", key, rows, threads=4) as load:
            load.wait_for(400, timeout=30)
            serve.kill()  # in the middle of the load
    finally:
        serve.stop()
    acknowledged = load.acknowledged
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
