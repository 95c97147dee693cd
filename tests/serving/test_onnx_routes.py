"""ONNX twins on endpoints: ``package twin`` registers one, a ``,onnx`` route serves it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.domain.endpoints import TargetRequest
from modelyard.errors import InvalidInput, NotFound
from modelyard.serving.inprocess import serve_in_thread
from tests.serving.models import cancer

pytest.importorskip("onnxruntime")


@pytest.fixture
def yard(services: Services) -> Iterator[Yard]:
    """cancer/1 from a run that kept its training data, and cancer/2 its ONNX twin."""
    opened = Yard(LocalBackend(services))
    features, target = cancer()
    model = LogisticRegression(max_iter=5000).fit(features, target)
    with opened.start_run(experiment="twins") as run:
        run.log_dataset(features.assign(target=target), name="cancer-train", role="training")
        run.log_model(model, name="cancer", input_example=features.head())
    opened.models.register_twin("cancer/1")
    yield opened


def route(text: str) -> list[TargetRequest]:
    return [TargetRequest.parse(text)]


def test_a_twin_is_the_next_version_paired_by_tags_and_profiled_like_its_original(
    yard: Yard,
) -> None:
    original, twin = yard.models.version("cancer/1"), yard.models.version("cancer/2")
    assert (twin.flavor, twin.run_id) == ("onnx", original.run_id)
    assert original.tags["onnx_twin"] == "2" and twin.tags["onnx_twin_of"] == "1"
    assert twin.signature == original.signature
    # monitored the same way: the twin has its own reference profile, on the same data
    reference = yard.monitors.reference("cancer/2")
    assert reference.dataset == "cancer-train"
    assert reference.performance["accuracy"] == pytest.approx(
        yard.monitors.reference("cancer/1").performance["accuracy"]
    )


def test_an_onnx_route_resolves_to_the_twin_and_says_so(yard: Yard, services: Services) -> None:
    endpoint = services.endpoints.create("edge", routes=route("cancer/1=100,onnx"))
    [target] = endpoint.spec.routes
    assert (target.version, target.runtime, target.twin_of) == (2, "onnx", 1)
    assert target.describe() == "cancer/2 (onnx twin of cancer/1)"
    assert services.endpoints.get("edge").spec.routes[0] == target  # stored and read back
    with services.db.read() as conn:  # what retirement asks: the twin and its original serve
        serving = services.endpoints.serving(conn)
    assert serving[("cancer", 2)] == serving[("cancer", 1)] == ["edge"]


def test_a_version_without_a_twin_or_with_a_false_one_is_refused(
    yard: Yard, services: Services
) -> None:
    features, target = cancer()
    yard.models.register(
        LogisticRegression(max_iter=5000).fit(features, target),
        name="plain",
        input_example=features.head(),
    )
    with pytest.raises(NotFound, match=r"plain/1 has no ONNX twin: .*package twin plain/1"):
        services.endpoints.create("no-twin", routes=route("plain/1=100,onnx"))
    yard.models.set_version_tags("cancer/1", {"onnx_twin": "1"})
    with pytest.raises(InvalidInput, match="cancer/1, named as the ONNX twin of cancer/1"):
        services.endpoints.create("false-twin", routes=route("cancer/1=100,onnx"))


@pytest.mark.parametrize(
    ("text", "shadow", "message"),
    [
        ("cancer@champion=100,follow", False, None),
        ("cancer/1,onnx", True, "the options are ',follow'"),
        ("cancer/1=100,fast", False, "',follow' or ',onnx'"),
    ],
)
def test_route_options(text: str, shadow: bool, message: str | None) -> None:
    if message is None:
        assert TargetRequest.parse(text, shadow=shadow).follow
        return
    with pytest.raises(InvalidInput, match=message):
        TargetRequest.parse(text, shadow=shadow)


def test_an_onnx_route_cannot_follow_an_alias() -> None:
    with pytest.raises(InvalidInput, match="cannot follow"):
        TargetRequest.from_dict(
            {"model": "m", "alias": "champion", "weight": 100, "follow": True, "runtime": "onnx"}
        )
    with pytest.raises(InvalidInput, match="runtime must be one of native, onnx"):
        TargetRequest.from_dict({"model": "m", "version": 1, "weight": 100, "runtime": "tpu"})


@pytest.mark.slow
def test_the_data_plane_serves_and_logs_the_twin(yard: Yard, services: Services) -> None:
    services.endpoints.create("edge", routes=route("cancer/1=100,onnx"))
    services.identity.create_user("caller", "contributor")
    key = services.identity.create_key("caller", endpoint="edge")[1]
    features, _ = cancer()
    rows: list[dict[str, Any]] = features.iloc[:20].to_dict(orient="records")  # type: ignore[assignment]
    native = yard.models.load("cancer/1").predict(features.iloc[:20]).tolist()
    with serve_in_thread(services, ["edge"]) as url:
        answer = httpx.post(
            f"{url}/endpoints/edge/predict",
            json={"records": rows, "scores": True},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"]) == ("cancer", 2)
    assert body["predictions"] == native
    logged = yard.endpoints.predictions("edge")
    assert len(logged) == 20 and set(logged["version"]) == {2}
    assert isinstance(logged, pd.DataFrame)
