"""The server over PostgreSQL, driven through the remote SDK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from modelyard.client.yard import connect
from modelyard.errors import InvalidInput
from tests.conftest import ServerProcess, prepare_store

pytestmark = pytest.mark.postgres


def test_remote_lifecycle_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    env = {"MODELYARD_DB_URL": pg_url}
    key = prepare_store(tmp_path / "server", env)
    server = ServerProcess(tmp_path / "server", env=env).start()
    yard = connect(server.url, api_key=key, home=tmp_path / "client")
    try:
        features, target = load_iris(return_X_y=True, as_frame=True)
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, target)
        with yard.start_run("pg", params={"depth": 3}) as run:
            for step in range(1000):
                run.log_metric("loss", 1 / (step + 1), step=step)
            run.log_dataset(features, name="iris", role="training")
            version = run.log_model(model, name="iris-pg", input_example=features.head(2))
        yard.models.set_alias("iris-pg", "champion", version.version)
        page = yard.runs.search("metrics.loss < 0.01 and params.depth = 3", experiments="pg")
        assert [r.id for r in page.runs] == [run.id]
        assert len(yard.runs.history(run.id, "loss")) == 1000
        loaded = yard.models.load("iris-pg@champion")
        np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
        with pytest.raises(InvalidInput, match="position"):
            yard.runs.search("params.depth ==")
    finally:
        yard.close()
        server.stop()
