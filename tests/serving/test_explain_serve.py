"""``POST /endpoints/{name}/explain`` on a real ``modelyard serve`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from tests.conftest import prepare_store
from tests.serving.models import cancer
from tests.serving.process import ServeProcess

pytestmark = pytest.mark.slow


class Plane:
    def __init__(self, services: Services, serve: ServeProcess, keys: dict[str, str]) -> None:
        self.services = services
        self.serve = serve
        self.keys = keys

    def post(self, path: str, body: object, who: str = "contributor") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.post(f"{self.serve.url}{path}", json=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    home = tmp_path_factory.mktemp("explain") / "home"
    prepare_store(home)
    services = bootstrap(Settings.from_env(home), create_if_empty=False)
    yard = Yard(LocalBackend(services))
    features, target = cancer()
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(features, target)
    linear = LogisticRegression(max_iter=5000).fit(features, target)
    for model in (forest, linear):
        with yard.start_run("explain") as run:
            run.log_dataset(features.assign(target=target), name="cancer", role="training")
            run.log_model(model, name="cancer", input_example=features.head())
    yard.endpoints.create("risk", routes=["cancer/1=100"], shadows=["cancer/2"])
    identity = services.identity
    keys = {}
    for role in ("viewer", "contributor"):
        identity.create_user(f"explain-{role}", role)
        keys[role] = identity.create_key(f"explain-{role}")[1]
    keys["endpoint"] = identity.create_key("explain-contributor", endpoint="risk")[1]
    serve = ServeProcess(home, env={"MODELYARD_EXPLAIN_MAX_ROWS": "50"}).start()
    yield Plane(services, serve, keys)
    serve.stop()
    services.close()


def loaded_shap(pid: int) -> bool:
    return "/shap/" in Path(f"/proc/{pid}/maps").read_text()


def explain_children(pid: int) -> list[int]:
    """The serving process's explanation process (a multiprocessing child), if started."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_explains_with_the_version_that_answers_and_loads_shap_only_then_off_the_gil(
    plane: Plane,
) -> None:
    assert plane.serve.process is not None
    pid = plane.serve.process.pid
    features, _ = cancer()
    rows = features.iloc[:3].to_dict(orient="records")
    predicted = plane.post("/endpoints/risk/predict", {"records": rows})
    assert predicted.status_code == 200
    assert not loaded_shap(pid) and explain_children(pid) == []  # predicting loads no shap

    answer = plane.post("/endpoints/risk/explain", {"records": rows, "top": 2})
    assert answer.status_code == 200, answer.text
    (child,) = explain_children(pid)  # explanations run in a child, off the predictions' GIL
    assert loaded_shap(child) and not loaded_shap(pid)
    body = answer.json()
    assert (body["endpoint"], body["revision"], body["model"], body["version"]) == (
        "risk",
        1,
        "cancer",
        1,
    )
    assert answer.headers["x-modelyard-version"] == "cancer/1"
    assert body["method"] == "tree" and body["features"] == list(features.columns)
    scores = predicted.json()
    for row, label in zip(body["rows"], scores["predictions"], strict=True):
        assert row["explained"] == f"probability of class '{label}'"
        assert row["base_value"] + sum(row["values"].values()) == pytest.approx(row["output"])
        assert len(row["top"]) == 2 and row["text"].startswith(row["explained"])


def test_a_version_named_in_the_body_explains_with_its_reference_data(plane: Plane) -> None:
    features, _ = cancer()
    rows = features.iloc[:2].to_dict(orient="records")
    linear = plane.post("/endpoints/risk/explain", {"records": rows, "version": "cancer/2"})
    assert linear.status_code == 200, linear.text
    assert (linear.json()["version"], linear.json()["method"]) == (2, "linear")
    by_number = plane.post("/endpoints/risk/explain", {"columns": {"x": [1]}, "version": 7})
    assert by_number.status_code == 404
    assert "does not serve version 7 (it serves cancer/1, cancer/2)" in by_number.text


def test_a_row_too_large_to_explain_is_a_422_naming_the_row(plane: Plane) -> None:
    """Values near the float limit overflow a linear explanation: refused, not answered
    with contributions that are no number."""
    features, _ = cancer()
    rows = features.iloc[:2].to_dict(orient="records")
    rows[1] = dict.fromkeys(rows[1], 1e308)
    answer = plane.post("/endpoints/risk/explain", {"records": rows, "version": "cancer/2"})
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert message.startswith("row 1 cannot be explained: "), message
    assert "not a finite number" in message


def test_the_same_keys_as_predict_and_bounded_rows(plane: Plane) -> None:
    features, _ = cancer()
    rows = features.iloc[:1].to_dict(orient="records")
    assert plane.post("/endpoints/risk/explain", {"records": rows}, "endpoint").status_code == 200
    refused = plane.post("/endpoints/risk/explain", {"records": rows}, "viewer")
    assert refused.status_code == 403
    assert "may not call endpoint 'risk'" in refused.json()["error"]["message"]
    many = features.iloc[:51].to_dict(orient="records")
    too_many = plane.post("/endpoints/risk/explain", {"records": many})
    assert too_many.status_code == 413
    assert "51 rows is more than the 50 one explanation may hold" in too_many.text
    broken = plane.post("/endpoints/risk/explain", {"records": [{"mean radius": "big"}]})
    assert broken.status_code == 422
