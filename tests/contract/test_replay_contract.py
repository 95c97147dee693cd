"""Replaying a logged prediction, embedded and through a server: the data plane answers
and logs a real request, and the SDK scores its input again with the version that
answered."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.replay import differences
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.serving.server import runtime_for
from tests.cli.test_cli import invoke
from tests.conftest import embedded_yard, sqlite_settings


class Noisy:
    """A model whose answers change from call to call: what replay must catch."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.random.default_rng().random(len(frame))


@pytest.fixture
def services(request: pytest.FixtureRequest, yard: Yard) -> Iterator[Services]:
    """The store behind ``yard``: its own services embedded, the server's store remote."""
    if isinstance(yard.backend, LocalBackend):
        yield yard.backend.services
        return
    home = Path(request.getfixturevalue("server").home)
    opened = bootstrap(Settings.from_env(home), create_if_empty=False)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, LogisticRegression]:
    bunch = load_iris(as_frame=True)
    features = bunch.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return features, LogisticRegression(max_iter=1000).fit(features, bunch.target)


def answer(services: Services, endpoint: str, rows: list[dict[str, Any]]) -> list[str]:
    """Serve ``rows`` through the data plane's runtime, which logs them; their ids."""
    runtime = runtime_for(services, [endpoint])

    async def predict() -> list[str]:
        runtime.loop = asyncio.get_running_loop()
        runtime.sync()
        _, ids, _, _ = await runtime.predict(runtime.endpoint(endpoint), rows, None)
        return ids

    try:
        return asyncio.run(predict())
    finally:
        runtime.stop()


def deployed(yard: Yard, name: str, model: Any, example: pd.DataFrame) -> None:
    version = yard.models.register(model, name=name, input_example=example)
    yard.endpoints.create(name, routes=[f"{version.ref}=100"])


def test_a_logged_prediction_replays_to_the_same_answer(
    yard: Yard, services: Services, unique: str, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, fitted = iris
    deployed(yard, unique, fitted, features.head(3))
    rows: list[dict[str, Any]] = features.iloc[[0, 60, 120]].to_dict(orient="records")  # type: ignore[assignment]
    ids = answer(services, unique, rows)
    found = yard.endpoints.replay(unique, ids[1])
    assert found.ok and found.differences == []
    assert (found.model, found.version) == (unique, 1)
    assert found.input == rows[1]
    expected = fitted.predict_proba(features.iloc[[60]])[0]
    assert found.logged_output == found.replayed_output == 1
    assert np.allclose(found.replayed_scores, expected, rtol=1e-12)
    # served in a batch of three, replayed alone: BLAS may sum in another order
    assert np.allclose(found.logged_scores, found.replayed_scores, rtol=1e-12, atol=0)
    with pytest.raises(NotFound, match=f"endpoint '{unique}' logged no prediction 'nope'"):
        yard.endpoints.replay(unique, "nope")
    with pytest.raises(InvalidInput, match="tolerance must be 0 or more"):
        yard.endpoints.replay(unique, ids[0], tolerance=-1)


def test_an_answer_that_changes_is_a_mismatch(
    yard: Yard, services: Services, unique: str, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, _ = iris
    deployed(yard, unique, Noisy(), features.head(3))
    rows: list[dict[str, Any]] = features.head(1).to_dict(orient="records")  # type: ignore[assignment]
    (prediction_id,) = answer(services, unique, rows)
    found = yard.endpoints.replay(unique, prediction_id)
    assert not found.ok
    assert found.differences == [
        f"output: {found.replayed_output!r}, the log has {found.logged_output!r}"
    ]
    assert found.logged_output != found.replayed_output
    assert yard.endpoints.replay(unique, prediction_id, tolerance=1e9).ok  # any number passes


def test_a_changed_package_is_refused_by_its_digest(
    yard: Yard, services: Services, unique: str, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, fitted = iris
    deployed(yard, unique, fitted, features.head(3))
    rows: list[dict[str, Any]] = features.head(1).to_dict(orient="records")  # type: ignore[assignment]
    (prediction_id,) = answer(services, unique, rows)
    version = yard.models.version(f"{unique}/1")
    folder = Path(services.settings.artifact_root) / version.source.strip("/")
    model_file = max(
        (p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"),
        key=lambda p: p.stat().st_size,
    )
    model_file.chmod(0o600)
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(IntegrityError):
        yard.endpoints.replay(unique, prediction_id)


def test_the_cli_prints_both_answers_and_exits_non_zero_on_a_mismatch(
    tmp_path: Path, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    home = tmp_path / "home"
    features, fitted = iris
    with embedded_yard(home) as yard:
        assert isinstance(yard.backend, LocalBackend)
        deployed(yard, "same", fitted, features.head(3))
        deployed(yard, "noisy", Noisy(), features.head(3))
        rows: list[dict[str, Any]] = features.head(1).to_dict(orient="records")  # type: ignore[assignment]
        (same,) = answer(yard.backend.services, "same", rows)
        (noisy,) = answer(yard.backend.services, "noisy", rows)
    code, out, err = invoke(home, "endpoint", "replay", "same", "--id", same)
    assert (code, err) == (0, "")
    assert f"input:    {json.dumps(rows[0])}" in out and out.strip().endswith("match")
    assert "logged:   0" in out and "replayed: 0" in out
    code, out, err = invoke(home, "endpoint", "replay", "noisy", "--id", noisy, "--json")
    assert code == 1
    shown = json.loads(out)
    assert shown["ok"] is False and shown["differences"][0].startswith("output: ")
    code, out, err = invoke(home, "endpoint", "replay", "same", "--id", "unknown")
    assert code == 2 and err == "error: endpoint 'same' logged no prediction 'unknown'\n"


def test_a_prediction_in_the_database_log_replays_too(
    tmp_path: Path, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    home = tmp_path / "home"
    settings = dataclasses.replace(sqlite_settings(home), prediction_root="database")
    features, fitted = iris
    with Yard(LocalBackend(bootstrap(settings))) as yard:
        assert isinstance(yard.backend, LocalBackend)
        deployed(yard, "db", fitted, features.head(3))
        rows: list[dict[str, Any]] = features.iloc[[100]].to_dict(orient="records")  # type: ignore[assignment]
        (prediction_id,) = answer(yard.backend.services, "db", rows)
        assert not (home / "predictions").exists()
        found = yard.endpoints.replay("db", prediction_id)
        assert found.ok and found.logged_output == found.replayed_output == 2


def test_numbers_compare_within_a_relative_tolerance() -> None:
    assert differences([0.5, 1.0], [0.5 + 1e-12, 1.0], 1e-9, "scores") == []
    assert differences([0.5], [0.6], 1e-9, "scores") == ["scores[0]: 0.6, the log has 0.5"]
    assert differences("a", "b", 1.0, "output") == ["output: 'b', the log has 'a'"]
    assert differences([1, 2], [1], 0.0, "scores") == ["scores: 1 values, the log has 2"]
    assert differences(True, 1, 0.0, "output") == ["output: 1, the log has True"]
