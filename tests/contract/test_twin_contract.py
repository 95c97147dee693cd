"""ONNX twins through the SDK, embedded and through a server: registered, paired, routed."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from modelyard.domain.endpoints import Target

pytest.importorskip("onnxruntime")


def test_register_twin_and_route_to_it(yard: Yard, unique: str) -> None:
    bunch = load_iris(as_frame=True)
    features = bunch.data.set_axis(["sl", "sw", "pl", "pw"], axis=1)
    with yard.start_run(experiment=unique) as run:
        run.log_dataset(features.assign(target=bunch.target), name=unique, role="training")
        run.log_model(
            LogisticRegression(max_iter=1000).fit(features, bunch.target),
            name=unique,
            input_example=features.head(),
        )
    twin = yard.models.register_twin(f"{unique}/1")
    assert (twin.version, twin.flavor, twin.tags["onnx_twin_of"]) == (2, "onnx", "1")
    assert yard.models.version(f"{unique}/1").tags["onnx_twin"] == "2"
    loaded = yard.models.load(twin.ref)
    assert loaded.predict(features.iloc[:30]).tolist() == bunch.target.iloc[:30].tolist()
    endpoint = yard.endpoints.create(unique, routes=[f"{unique}/1=100,onnx"])
    assert endpoint.spec.routes == [
        Target(model=unique, version=2, weight=100, runtime="onnx", twin_of=1)
    ]
    again = yard.endpoints.create(
        f"{unique}-d",
        routes=[{"model": unique, "version": 1, "weight": 100, "runtime": "onnx"}],
    )
    assert again.spec.routes[0].twin_of == 1
