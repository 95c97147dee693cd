"""The data plane for real: ``modelyard serve`` on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from tests.conftest import prepare_store
from tests.serving.models import Broken, Sleepy, cancer, classifier
from tests.serving.process import ServeProcess

pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.services: Services = bootstrap(Settings.from_env(home), create_if_empty=False)
        self.yard = Yard(LocalBackend(self.services))
        self.keys: dict[str, str] = {}
        self.serve: ServeProcess | None = None

    def client(self, who: str = "maintainer") -> httpx.Client:
        assert self.serve is not None
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who in self.keys else {}
        return httpx.Client(base_url=self.serve.url, headers=headers, timeout=30)


def routes(*texts: str) -> list[TargetRequest]:
    return [TargetRequest.parse(t) for t in texts]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("serve") / "home"
    prepare_store(home)
    built = Stack(home)
    features, _ = cancer()
    example = features.head()
    models = built.yard.models
    models.register(classifier(1.0), name="cancer", input_example=example)  # 1
    models.register(classifier(0.001), name="cancer", input_example=example)  # 2
    models.register(Sleepy(7, seconds=3.0), name="slow", input_example=example)
    models.register(Broken(), name="broken", input_example=example)
    models.set_alias("cancer", "champion", 1)
    endpoints = built.services.endpoints
    endpoints.create("main", routes=routes("cancer/1=100"))
    endpoints.create("split", routes=routes("cancer/1=50", "cancer/2=50"))
    endpoints.create(
        "shadowed",
        routes=routes("cancer/1=100"),
        shadows=[
            TargetRequest.parse("slow/1", shadow=True),
            TargetRequest.parse("broken/1", shadow=True),
        ],
    )
    endpoints.create("live", routes=routes("cancer/1=100"))
    endpoints.create("follow", routes=routes("cancer@champion=100,follow"))
    identity = built.services.identity
    for role in ("viewer", "contributor", "maintainer"):
        identity.create_user(f"serve-{role}", role)
        built.keys[role] = identity.create_key(f"serve-{role}")[1]
    built.keys["main-only"] = identity.create_key("serve-contributor", endpoint="main")[1]
    built.serve = ServeProcess(home, args=("--max-body", "200000")).start()
    yield built
    built.serve.stop()
    built.services.close()


def records(count: int = 3, offset: int = 0) -> list[dict[str, Any]]:
    features, _ = cancer()
    rows: list[dict[str, Any]] = features.iloc[offset : offset + count].to_dict(  # type: ignore[assignment]
        orient="records"
    )
    return rows


def test_predict_with_records_and_columns_gives_the_model_answers(stack: Stack) -> None:
    rows = records(5)
    expected = classifier(1.0).predict(cancer()[0].iloc[:5]).tolist()
    with stack.client() as http:
        by_records = http.post("/endpoints/main/predict", json={"records": rows})
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        by_columns = http.post("/endpoints/main/predict", json={"columns": columns, "scores": True})
    assert by_records.status_code == 200, by_records.text
    answer = by_records.json()
    assert answer["predictions"] == expected
    assert (answer["model"], answer["version"], answer["revision"]) == ("cancer", 1, 1)
    assert by_records.headers["x-modelyard-version"] == "cancer/1"
    assert len(set(answer["ids"])) == 5
    second = by_columns.json()
    assert second["predictions"] == expected
    assert len(second["scores"]) == 5 and abs(sum(second["scores"][0]) - 1) < 1e-9
    assert not set(second["ids"]) & set(answer["ids"])


def test_open_inference_protocol_v2(stack: Stack) -> None:
    rows = records(4)
    names = list(rows[0])
    expected = classifier(1.0).predict(cancer()[0].iloc[:4]).tolist()
    with stack.client() as http:
        metadata = http.get("/v2/models/main").json()
        assert metadata["name"] == "main" and metadata["versions"] == ["1"]
        assert [i["name"] for i in metadata["inputs"]] == names
        assert {i["datatype"] for i in metadata["inputs"]} == {"FP64"}
        assert http.get("/v2/models/main/ready").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        per_column = {
            "id": "req-1",
            "inputs": [
                {"name": n, "shape": [4], "datatype": "FP64", "data": [r[n] for r in rows]}
                for n in names
            ],
        }
        one_tensor = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [4, len(names)],
                    "datatype": "FP64",
                    "data": [[r[n] for n in names] for r in rows],
                }
            ]
        }
        first = http.post("/v2/models/main/infer", json=per_column)
        second = http.post("/v2/models/main/infer", json=one_tensor)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["id"] == "req-1" and body["model_name"] == "main" and body["model_version"] == "1"
    assert body["outputs"][0]["data"] == expected
    assert body["outputs"][1]["name"] == "predict_proba" and body["outputs"][1]["shape"] == [4, 2]
    assert len(body["parameters"]["prediction_ids"].split(",")) == 4
    assert second.json()["outputs"][0]["data"] == expected


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"records": [{"mean radius": 1}]}', 422, "column 'mean texture': missing"),
        (b'{"records": 5}', 422, "'records' must be a list"),
        (b'{"records": []}', 422, "no rows"),
        (b'{"rows": []}', 422, "'records' or 'columns'"),
        (b'{"columns": {"a": [1, 2], "b": [1]}}', 422, "differ in length"),
        (b"x" * 250_000, 413, "limit"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_the_server_keeps_serving(
    stack: Stack, body: bytes, status: int, needle: str
) -> None:
    with stack.client() as http:
        answer = http.post(
            "/endpoints/main/predict", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == status, answer.text
        assert needle in answer.json()["error"]["message"]
        assert http.post("/endpoints/main/predict", json={"records": records(1)}).status_code == 200


def test_a_value_of_the_wrong_type_names_the_column_and_row(stack: Stack) -> None:
    rows = records(2)
    rows[1]["mean area"] = "large"
    with stack.client() as http:
        answer = http.post("/endpoints/main/predict", json={"records": rows})
        unknown = http.post("/endpoints/nowhere/predict", json={"records": rows})
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "kind": "signature_error",
        "message": "column 'mean area': expected float, got 'large' at row 1",
    }
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["error"]["message"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "null value at row 1 but the column is not nullable"),
        ("12.5", "expected float, got '12.5' at row 1"),
        (True, "expected float, got True at row 1"),
    ],
)
def test_a_null_string_or_boolean_in_a_float_column_is_a_422_naming_column_and_row(
    stack: Stack, value: object, problem: str
) -> None:
    rows = records(2)
    rows[1]["mean area"] = value
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    with stack.client() as http:
        by_records = http.post("/endpoints/main/predict", json={"records": rows})
        by_columns = http.post("/endpoints/main/predict", json={"columns": columns})
    for answer in (by_records, by_columns):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == {
            "kind": "signature_error",
            "message": f"column 'mean area': {problem}",
        }


def test_keys_roles_and_endpoint_scoped_keys(stack: Stack) -> None:
    body = {"records": records(1)}
    with stack.client("nobody") as anonymous:
        assert anonymous.post("/endpoints/main/predict", json=body).status_code == 401
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/metrics").status_code == 401
    with stack.client("viewer") as viewer:
        refused = viewer.post("/endpoints/main/predict", json=body)
        assert refused.status_code == 403
        assert viewer.get("/metrics").status_code == 200
    with stack.client("main-only") as scoped:
        assert scoped.post("/endpoints/main/predict", json=body).status_code == 200
        assert scoped.post("/v2/models/main/infer", json={"inputs": []}).status_code == 400
        assert scoped.post("/endpoints/split/predict", json=body).status_code == 403
        assert scoped.get("/metrics").status_code == 403
        assert scoped.get("/endpoints").status_code == 403
    denied = [
        e
        for e in stack.services.audit.events()
        if e.status == 403 and e.summary.get("plane") == "serving"
    ]
    assert {e.actor for e in denied} >= {"serve-viewer", "serve-contributor"}
    assert all(stack.keys["main-only"] not in str(e) for e in denied)


def test_an_endpoint_key_off_its_endpoint_is_refused_naming_its_scope(stack: Stack) -> None:
    scope = "an endpoint key for 'main' may only predict on that endpoint"
    with stack.client("main-only") as scoped:
        for path in ("/metrics", "/endpoints", "/v2"):
            refused = scoped.get(path)
            assert refused.status_code == 403, (path, refused.text)
            kind = {"kind": "permission_denied", "message": scope}
            assert refused.json()["error"] == (scope if path == "/v2" else kind)  # V2's shape
        other = scoped.post("/endpoints/split/predict", json={"records": records(1)})
    assert other.status_code == 403
    assert other.json()["error"]["message"] == f"{scope}, not on 'split'"


def test_a_sticky_key_always_reaches_the_same_version(stack: Stack) -> None:
    body = {"records": records(1)}
    with stack.client() as http:
        for key in ("customer-1", "customer-2", "customer-3"):
            seen = {
                http.post(
                    "/endpoints/split/predict", json=body, headers={"x-sticky-key": key}
                ).json()["version"]
                for _ in range(15)
            }
            assert len(seen) == 1
        spread = {
            http.post("/endpoints/split/predict", json={**body, "sticky_key": f"c{i}"}).json()[
                "version"
            ]
            for i in range(60)
        }
    assert spread == {1, 2}


def wait_for(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_shadows_never_slow_or_fail_the_primary(stack: Stack) -> None:
    log = stack.services.predictions
    answered: list[str] = []
    with stack.client() as http:
        for offset in range(10):
            answer = http.post("/endpoints/shadowed/predict", json={"records": records(2, offset)})
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 1
            answered += answer.json()["ids"]
    # each answer came back before its slow shadow (3 s per call) could have logged it
    early = log.query("shadowed", ids=answered, model="slow").num_rows
    assert early < len(answered)
    shadow_rows = wait_for(
        lambda: (
            (t := log.query("shadowed", ids=answered, role="shadow")).num_rows == 2 * len(answered)
            and t
        ),
        timeout=60,
    )
    by_model: dict[Any, Any] = {}
    for row in shadow_rows.to_pylist():
        by_model.setdefault(row["model"], []).append(row)
    assert {r["output"] for r in by_model["slow"]} == {"7"}
    assert all(r["error"] is None for r in by_model["slow"])
    assert all("broken on purpose" in r["error"] for r in by_model["broken"])
    compared = {
        (r["model"], r["role"]): r
        for r in stack.yard.endpoints.compare("shadowed").to_dict(orient="records")
    }
    assert compared[("cancer", "primary")]["requests"] >= len(answered)
    assert compared[("broken", "shadow")]["errors"] == compared[("broken", "shadow")]["requests"]
    slow = compared[("slow", "shadow")]
    assert slow["outputs"] == [{"value": 7, "share": 1.0}]
    assert 0.0 <= slow["agreement"] <= 1.0


def test_changing_weights_under_load_fails_no_request(stack: Stack) -> None:
    failures: list[str] = []
    versions: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def load() -> None:
        with stack.client() as http:
            for _ in range(2000):
                if stop.is_set():
                    return
                try:
                    answer = http.post("/endpoints/live/predict", json={"records": records(1)})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    body = answer.json()
                    versions.append((time.monotonic(), body["revision"], body["version"]))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    endpoints = stack.services.endpoints
    try:
        wait_for(lambda: len(versions) > 20)
        endpoints.update("live", routes=routes("cancer/2=100"), comment="switch")
        wait_for(lambda: versions and versions[-1][1] == 2)
        endpoints.update("live", routes=routes("cancer/1=50", "cancer/2=50"))
        wait_for(lambda: versions and versions[-1][1] == 3)
        endpoints.rollback("live", to=1)
        wait_for(lambda: versions and versions[-1][1] == 4)
        count = len(versions)
        wait_for(lambda: len(versions) > count + 20)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    by_revision: dict[int, set[int]] = {}
    for _, revision, version in versions:
        by_revision.setdefault(revision, set()).add(version)
    assert by_revision[1] == {1} and by_revision[2] == {2} and by_revision[4] == {1}
    assert by_revision[3] <= {1, 2}


def test_a_followed_alias_moves_traffic_and_an_incompatible_move_is_refused(
    stack: Stack,
) -> None:
    body = {"records": records(1)}
    with stack.client() as http:
        assert http.post("/endpoints/follow/predict", json=body).json()["version"] == 1
        stack.yard.models.set_alias("cancer", "champion", 2)
        wait_for(lambda: http.post("/endpoints/follow/predict", json=body).json()["version"] == 2)
        answer = http.post("/endpoints/follow/predict", json=body).json()
        assert answer["revision"] == 1  # the alias moved, the endpoint did not change
        # an alias moved to a version that needs a column the requests do not carry
        wider = cancer()[0].assign(extra=1.0)
        from sklearn.linear_model import LogisticRegression

        narrow = stack.yard.models.register(
            LogisticRegression(max_iter=5000).fit(wider, cancer()[1]),
            name="cancer",
            input_example=wider.head(),
        )
        stack.yard.models.set_alias("cancer", "champion", narrow.version)
        status = wait_for(
            lambda: (
                next(
                    e["status"]
                    for e in http.get("/readyz").json()["endpoints"]
                    if e["name"] == "follow" and "cannot serve" in e["status"]
                )
                if any(
                    "cannot serve" in e["status"] for e in http.get("/readyz").json()["endpoints"]
                )
                else None
            )
        )
        assert "still serving revision 1" in status
        assert http.post("/endpoints/follow/predict", json=body).json()["version"] == 2
        stack.yard.models.set_alias("cancer", "champion", 1)


def test_metrics_count_requests_batches_and_queues(stack: Stack) -> None:
    with stack.client() as http:
        for _ in range(5):
            http.post("/endpoints/main/predict", json={"records": records(1)})
        http.post("/endpoints/main/predict", json={"records": [{"mean radius": 1}]})  # 422
        text = http.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("modelyard_predictions_requests_total")
        and 'endpoint="main"' in line
        and 'version="cancer/1"' in line
        and 'role="primary"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 5
    assert "modelyard_prediction_latency_seconds_bucket" in text
    assert 'modelyard_batch_rows_count{endpoint="main"' in text
    assert 'modelyard_queue_depth{endpoint="main"' in text
    assert 'modelyard_requests_rejected_total{endpoint="main",status="422"}' in text


def test_made_up_names_and_keyless_requests_add_no_metric_series(stack: Stack) -> None:
    def series(text: str) -> set[str]:
        return {
            line.rsplit(" ", 1)[0]
            for line in text.splitlines()
            if line.startswith("modelyard_requests_rejected_total")
        }

    with stack.client() as http:
        before = series(http.get("/metrics").text)
        with stack.client("nobody") as anonymous:
            for number in range(200):
                answer = anonymous.post(f"/endpoints/made-up-{number}/predict", json={})
                assert answer.status_code == 401
        for number in range(20):  # authenticated, but no such endpoint here
            assert http.post(f"/endpoints/other-{number}/predict", json={}).status_code == 404
        after = series(http.get("/metrics").text)
    added = after - before
    assert not any("made-up" in name or "other-" in name for name in after), added
    assert added <= {
        'modelyard_requests_rejected_total{endpoint="",status="401"}',
        'modelyard_requests_rejected_total{endpoint="",status="404"}',
    }


def test_predictions_are_logged_with_their_version_and_take_labels(stack: Stack) -> None:
    with stack.client() as http:
        answer = http.post("/endpoints/main/predict", json={"records": records(4, 10)}).json()
    ids = answer["ids"]
    logged = stack.yard.endpoints.predictions("main", ids=ids)
    assert sorted(logged["id"]) == sorted(ids)
    assert set(logged["version"]) == {1} and set(logged["role"]) == {"primary"}
    assert set(logged["revision"]) == {1}
    assert [int(o) for o in logged.sort_values("id")["output"]] == [
        answer["predictions"][ids.index(i)] for i in sorted(ids)
    ]
    truth = {ids[0]: answer["predictions"][0], ids[1]: 1 - answer["predictions"][1]}
    result = stack.yard.endpoints.label("main", {**truth, "no-such-id": 1})
    assert result.recorded == 2 and result.unknown == ["no-such-id"]
    accuracy = stack.yard.endpoints.accuracy("main")
    row = accuracy[(accuracy.version == 1) & (accuracy.role == "primary")].iloc[0]
    assert row.labelled >= 2
    # a later label for the same id wins; the first is kept in the history
    stack.yard.endpoints.label("main", {ids[1]: answer["predictions"][1]})
    relabelled = stack.yard.endpoints.predictions("main", ids=[ids[1]])
    assert int(relabelled["label"].iloc[0]) == answer["predictions"][1]
    history = stack.services.predictions.label_history("main", ids[1])
    assert [h["label"] for h in history] == [1 - answer["predictions"][1], answer["predictions"][1]]


def test_serving_an_unknown_endpoint_is_refused_before_binding(stack: Stack) -> None:
    process = ServeProcess(stack.home, "no-such-endpoint")
    with pytest.raises(RuntimeError, match="endpoint 'no-such-endpoint' does not exist"):
        process.start(timeout=30)
    assert process.process is not None and process.process.returncode == 2


def test_every_data_plane_route_has_a_rule_and_keeps_it_for_every_caller(stack: Stack) -> None:
    from starlette.routing import Route

    from modelyard.domain.identity import ROLE_PERMISSIONS, Permission, Role
    from modelyard.serving.app import ROUTE_RULES
    from modelyard.serving.server import app_for, runtime_for

    app = app_for(stack.services, runtime_for(stack.services, None))
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert served == {(method, path) for method, path, _ in ROUTE_RULES}
    body = {"records": records(1)}
    callers = ["nobody", "viewer", "contributor", "maintainer", "main-only"]
    for method, path, permission in ROUTE_RULES:
        url = path.replace("{name}", "main")
        for who in callers:
            with stack.client(who) as http:
                answer = http.request(method, url, json=body if method == "POST" else None)
            if permission is None:
                allowed = True
            elif who == "nobody":
                assert answer.status_code == 401, (method, path, who)
                continue
            elif who == "main-only":
                allowed = permission is Permission.PREDICT
            else:
                allowed = permission in ROLE_PERMISSIONS[Role(who)]
            assert (answer.status_code != 403) == allowed, (method, path, who, answer.text)
            assert answer.status_code < 500, (method, path, who, answer.text)


def test_the_openapi_document_lists_every_route_and_the_sticky_key(stack: Stack) -> None:
    from modelyard.serving.app import ROUTE_RULES

    with stack.client("nobody") as anonymous:
        answer = anonymous.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["openapi"].startswith("3.")
    listed = {
        (method.upper(), path, operation.get("x-permission"))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    rules = {(m, p, permission.value if permission else None) for m, p, permission in ROUTE_RULES}
    assert listed == rules
    schemas = document["components"]["schemas"]
    for path, request, read in (
        ("/endpoints/{name}/predict", schemas["PredictRequest"], []),
        (
            "/v2/models/{name}/infer",
            schemas["InferParameters"],
            ["Inference-Header-Content-Length"],
        ),
    ):
        operation = document["paths"][path]["post"]
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == [*read, "X-Sticky-Key"], path
        assert "same version" in headers[-1]["description"]
        assert "X-Sticky-Key" in request["properties"]["sticky_key"]["description"]
    assert document["paths"]["/metrics"]["get"]["security"] == [{"apiKey": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_the_lineage_of_a_prediction_reaches_its_version_and_endpoint(stack: Stack) -> None:
    with stack.client() as http:
        answer = http.post("/endpoints/shadowed/predict", json={"records": records(1)}).json()
    prediction = f"prediction:shadowed/{answer['ids'][0]}"
    graph = stack.yard.lineage(prediction)
    upstream = {n.ref for n in graph.upstream()}
    assert {"version:cancer/1", "endpoint:shadowed"} <= upstream
    relations = {e.source: e.relation for e in graph.edges if e.target == prediction}
    assert relations["version:cancer/1"] == "answered"
    assert relations["endpoint:shadowed"] == "answered at revision 1"
    node = next(n for n in graph.nodes if n.ref == prediction)
    assert node.attributes["output"] == str(answer["predictions"][0])
