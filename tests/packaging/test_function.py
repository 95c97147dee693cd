"""Functions-as-a-service: the written handler, called with recorded events and over ASGI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from tests.conftest import embedded_yard

EVENTS = Path(__file__).with_name("events")


def visits_model() -> tuple[LogisticRegression, pd.DataFrame]:
    generator = np.random.default_rng(7)
    frame = pd.DataFrame(
        {"age": generator.uniform(18, 90, 300), "visits": generator.integers(0, 20, 300)}
    )
    labels = (frame["age"] / 90 + frame["visits"] / 20 + generator.normal(0, 0.2, 300)) > 1
    return LogisticRegression().fit(frame, labels.astype(int)), frame


@pytest.fixture
def exported(home: Path, tmp_path: Path) -> Path:
    model, frame = visits_model()
    yard: Yard = embedded_yard(home)
    with yard:
        yard.models.register(model, name="visits", input_example=frame.head())
        yard.models.set_alias("visits", "champion", 1)
        return yard.models.export("visits@champion", tmp_path / "function", format="function")


def load_handler(folder: Path) -> ModuleType:
    """Import ``handler.py`` the way a function runtime does: a cold start."""
    spec = importlib.util.spec_from_file_location(
        f"handler_{uuid.uuid4().hex}", folder / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def expected(rows: list[dict[str, Any]]) -> list[int]:
    model, _ = visits_model()
    answer: list[int] = model.predict(pd.DataFrame(rows)).tolist()
    return answer


def test_the_function_folder_holds_handler_package_and_pinned_requirements(
    exported: Path,
) -> None:
    assert {p.name for p in exported.iterdir()} == {
        "handler.py",
        "package",
        "requirements.txt",
        "modelyard-function.json",
    }
    requirements = (exported / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("modelyard==")
    assert all("==" in line for line in requirements)
    assert any(line.startswith("scikit-learn==") for line in requirements)
    record = json.loads((exported / "modelyard-function.json").read_text())
    assert (record["model"], record["version"]) == ("visits", 1)
    assert record["package_digest"] in (exported / "handler.py").read_text()


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        (
            "apigateway-rest.json",
            [{"age": 41.0, "visits": 3}, {"age": 23.5, "visits": 0}, {"age": 67.0, "visits": 12}],
        ),
        ("apigateway-http.json", [{"age": 41.0, "visits": 3}, {"age": 23.5, "visits": 0}]),
        ("gcf-pubsub.json", [{"age": 67.0, "visits": 12}]),
    ],
)
def test_recorded_events_are_answered_with_the_model_predictions(
    exported: Path, name: str, rows: list[dict[str, Any]]
) -> None:
    handler = load_handler(exported).handler
    response = handler(event(name), None)
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])
    assert (body["model"], body["version"]) == ("visits", 1)
    assert body["predictions"] == expected(rows)
    if name == "apigateway-http.json":  # that request asked for the class scores
        assert len(body["scores"]) == 2 and abs(sum(body["scores"][0]) - 1) < 1e-9
    else:
        assert "scores" not in body


def test_a_bad_value_answers_400_naming_the_column(exported: Path) -> None:
    response = load_handler(exported).handler(event("apigateway-rest-bad-value.json"), None)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["kind"] == "signature_error"
    assert "column 'age'" in error["message"] and "row 1" in error["message"]


def test_a_body_that_is_not_json_or_has_no_rows_answers_400(exported: Path) -> None:
    handler = load_handler(exported).handler
    not_json = handler({"httpMethod": "POST", "body": "{records: oops"}, None)
    no_rows = handler({"httpMethod": "POST", "body": '{"rows": []}'}, None)
    assert (not_json["statusCode"], no_rows["statusCode"]) == (400, 400)
    assert "not valid JSON" in json.loads(not_json["body"])["error"]["message"]
    assert "'records'" in json.loads(no_rows["body"])["error"]["message"]


def test_a_tampered_package_refuses_to_start_naming_the_file(exported: Path) -> None:
    with (exported / "package" / "model.pkl").open("ab") as model_file:
        model_file.write(b"\0")
    with pytest.raises(RuntimeError, match=r"visits/1 refuses to start: package file 'model.pkl'"):
        load_handler(exported)


def test_a_swapped_manifest_refuses_to_start(exported: Path) -> None:
    manifest = exported / "package" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["metadata"] = {"changed": True}
    manifest.write_text(json.dumps(data))
    with pytest.raises(RuntimeError, match="does not match the registered digest"):
        load_handler(exported)


def test_the_asgi_app_answers_health_predict_and_errors(exported: Path) -> None:
    asyncio.run(asgi_calls(load_handler(exported).app))


async def asgi_calls(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    rows = [{"age": 30.0, "visits": 2}, {"age": 80.0, "visits": 15}]
    async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).json() == {"status": "ok"}
        described = (await http.get("/")).json()
        assert described["signature"]["inputs"][1] == {
            "name": "visits",
            "type": "integer",
            "nullable": False,
        }
        answer = await http.post("/predict", json={"records": rows})
        assert answer.status_code == 200 and answer.json()["predictions"] == expected(rows)
        bad = await http.post("/", json={"records": [{"age": 30.0, "visits": "two"}]})
        assert bad.status_code == 400 and "column 'visits'" in bad.json()["error"]["message"]
        assert (await http.post("/elsewhere", json={})).status_code == 404
