"""The Open Inference Protocol (V2) as its clients speak it: Triton's HTTP client against a
real ``modelyard serve`` on 127.0.0.1, hand-written requests for the errors, and every
answer checked against the protocol's REST response shapes (below, from the spec's text)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import numpy as np
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from modelyard.domain.endpoints import TargetRequest
from tests.conftest import prepare_store
from tests.serving.models import Constant, Mixed, cancer, classifier, mixed_example
from tests.serving.process import ServeProcess
from tests.serving.test_serve import Stack, routes

pytestmark = pytest.mark.slow

# -- the V2 REST response shapes, as the protocol's text defines them ----------

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
Parameter = StrictStr | StrictInt | StrictFloat | StrictBool


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ServerMetadataResponse(Spec):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(Spec):
    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadataResponse(Spec):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ResponseOutput(Spec):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Parameter] | None = None
    data: list[Any] | None = None  # absent only when sent as binary data


class InferResponse(Spec):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Parameter] | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(Spec):
    error: str


def check_infer(body: dict[str, Any]) -> InferResponse:
    answer = InferResponse.model_validate(body)
    for output in answer.outputs:
        binary = (output.parameters or {}).get("binary_data_size")
        assert (output.data is None) == (binary is not None), output
        if output.data is not None:
            assert len(output.data) == int(np.prod(output.shape)), output
    return answer


def error_of(response: httpx.Response, status: int, needle: str) -> str:
    assert response.status_code == status, response.text
    message = ErrorResponse.model_validate(response.json()).error
    assert needle in message, message
    return message


# -- the process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("v2") / "home"
    prepare_store(home)
    built = Stack(home)
    features, _ = cancer()
    models = built.yard.models
    models.register(classifier(1.0), name="cancer", input_example=features.head())  # 1
    models.register(classifier(0.001), name="cancer", input_example=features.head())  # 2
    models.register(Mixed(), name="mixed", input_example=mixed_example())
    models.register(Constant(7), name="const", input_example=features.head())
    models.register(named_classifier(), name="named", input_example=features.head())
    for name, model in kinds_of_models().items():
        models.register(model, name=name, input_example=features.head())
    endpoints = built.services.endpoints
    endpoints.create("main", routes=routes("cancer/1=100"))
    endpoints.create(
        "shadowed",
        routes=routes("cancer/1=100"),
        shadows=[TargetRequest.parse("cancer/2", shadow=True)],
    )
    endpoints.create("mixed", routes=routes("mixed/1=100"))
    endpoints.create("split", routes=routes("cancer/1=50", "const/1=50"))
    endpoints.create("named", routes=routes("named/1=100"))
    for name in kinds_of_models():
        endpoints.create(name, routes=routes(f"{name}/1=100"))
    built.services.identity.create_user("v2-user", "contributor")
    built.keys["user"] = built.services.identity.create_key("v2-user")[1]
    built.serve = ServeProcess(home).start()
    yield built
    built.serve.stop()
    built.services.close()


@pytest.fixture
def triton(stack: Stack) -> Iterator[Any]:
    import tritonclient.http as triton_http

    assert stack.serve is not None
    client = triton_http.InferenceServerClient(f"127.0.0.1:{stack.serve.port}")
    yield client
    client.close()


def named_classifier() -> LogisticRegression:
    """A classifier whose labels are words: its ``predict`` output is BYTES."""
    features, target = cancer()
    words = target.map({0: "malignant", 1: "benign"})
    return LogisticRegression(max_iter=5000).fit(features, words)


def kinds_of_models() -> dict[str, Any]:
    """Models whose answers are not one float a row, nor a classifier's label and scores."""
    features, target = cancer()
    head = features.iloc[:, :4]
    two = np.column_stack([target, 1 - target])
    return {
        "words-no-scores": make_pipeline(  # a classifier without predict_proba
            ColumnTransformer([("head", "passthrough", list(head.columns))]),
            LinearSVC(),
        ).fit(features, target.map({0: "malignant", 1: "benign"})),
        "two-targets": LinearRegression().fit(features, two * 1.5),
        "two-labels": DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, two),
        "counts": Constant(7),
    }


# (endpoint, its metadata's outputs) for each kind above, as infer must answer them
KIND_OUTPUTS = {
    "words-no-scores": [("predict", "BYTES", [-1])],
    "two-targets": [("predict", "FP64", [-1, 2])],
    "two-labels": [("predict", "INT64", [-1, 2])],
    "counts": [("predict", "INT64", [-1])],
}


def auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['user']}"}


def rows(count: int, offset: int = 0) -> np.ndarray[Any, Any]:
    features, _ = cancer()
    values: np.ndarray[Any, Any] = features.iloc[offset : offset + count].to_numpy()
    return values


# -- Triton's client -----------------------------------------------------------


def test_triton_client_reads_metadata_and_infers_with_binary_tensors(
    stack: Stack, triton: Any
) -> None:
    import tritonclient.http as triton_http

    headers = auth(stack)
    assert triton.is_server_live() and triton.is_server_ready()
    server = ServerMetadataResponse.model_validate(triton.get_server_metadata(headers=headers))
    assert "binary_tensor_data" in server.extensions
    metadata = ModelMetadataResponse.model_validate(
        triton.get_model_metadata("main", headers=headers)
    )
    names = list(cancer()[0].columns)
    assert [i.name for i in metadata.inputs] == names and metadata.versions == ["1"]
    assert [(o.name, o.datatype, o.shape) for o in metadata.outputs] == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP64", [-1, 2]),
    ]
    assert triton.is_model_ready("main", headers=headers)

    features = rows(6)
    model = classifier(1.0)
    inputs = []
    for index, name in enumerate(names):  # one FP32 tensor per column, sent as binary data
        tensor = triton_http.InferInput(name, [6], "FP32")
        tensor.set_data_from_numpy(features[:, index].astype(np.float32))
        inputs.append(tensor)
    result = triton.infer("main", inputs, request_id="r-1", headers=headers)
    answer = check_infer(result.get_response())
    assert answer.id == "r-1" and answer.model_name == "main" and answer.model_version == "1"
    # no outputs named: every output metadata declares, each as binary data
    assert [(o.name, o.datatype) for o in answer.outputs] == [
        (o.name, o.datatype) for o in metadata.outputs
    ]
    assert all(o.data is None for o in answer.outputs)
    frame = cancer()[0].iloc[:6].astype(np.float32)
    assert result.as_numpy("predict").tolist() == model.predict(frame).tolist()
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (6, 2)
    np.testing.assert_allclose(proba, model.predict_proba(frame), rtol=1e-6)
    ids = str((answer.parameters or {})["prediction_ids"]).split(",")
    assert len(set(ids)) == 6


def test_triton_client_asks_for_one_output_and_sends_one_matrix(stack: Stack, triton: Any) -> None:
    import tritonclient.http as triton_http

    features = rows(5, offset=10)
    matrix = triton_http.InferInput("input-0", list(features.shape), "FP64")
    matrix.set_data_from_numpy(features)
    wanted = [triton_http.InferRequestedOutput("predict_proba", binary_data=False)]
    result = triton.infer(
        "main",
        [matrix],
        outputs=wanted,
        headers=auth(stack),
        request_compression_algorithm="gzip",  # the body arrives gzip-compressed
    )
    answer = check_infer(result.get_response())
    assert [(o.name, o.datatype, o.shape) for o in answer.outputs] == [
        ("predict_proba", "FP64", [5, 2])
    ]
    expected = classifier(1.0).predict_proba(cancer()[0].iloc[10:15])
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=1e-9)
    assert result.as_numpy("predict") is None


def test_word_labels_come_back_as_binary_bytes(stack: Stack, triton: Any) -> None:
    import tritonclient.http as triton_http

    headers = auth(stack)
    metadata = ModelMetadataResponse.model_validate(
        triton.get_model_metadata("named", headers=headers)
    )
    assert [(o.name, o.datatype) for o in metadata.outputs] == [
        ("predict", "BYTES"),
        ("predict_proba", "FP64"),
    ]
    features = rows(30, offset=100)
    matrix = triton_http.InferInput("input-0", list(features.shape), "FP64")
    matrix.set_data_from_numpy(features)
    wanted = [triton_http.InferRequestedOutput("predict")]  # binary by default
    result = triton.infer(
        "named",
        [matrix],
        outputs=wanted,
        headers=headers,
        response_compression_algorithm="deflate",  # asks; a plain answer is read as well
    )
    answer = check_infer(result.get_response())
    assert answer.outputs[0].datatype == "BYTES" and answer.outputs[0].data is None
    words = [value.decode() for value in result.as_numpy("predict").tolist()]
    expected = named_classifier().predict(cancer()[0].iloc[100:130]).tolist()
    assert words == expected and {"benign", "malignant"} <= set(expected)


def test_versioned_paths_answer_with_exactly_that_version(stack: Stack, triton: Any) -> None:
    import tritonclient.http as triton_http
    from tritonclient.utils import InferenceServerException

    headers = auth(stack)
    metadata = ModelMetadataResponse.model_validate(
        triton.get_model_metadata("shadowed", headers=headers)
    )
    assert metadata.versions == ["1", "2"]
    one = ModelMetadataResponse.model_validate(
        triton.get_model_metadata("shadowed", "2", headers=headers)
    )
    assert one.versions == ["2"]
    assert triton.is_model_ready("shadowed", "2", headers=headers)
    features = rows(40)
    matrix = triton_http.InferInput("input-0", list(features.shape), "FP64")
    matrix.set_data_from_numpy(features)
    frame = cancer()[0].iloc[:40]
    for version, model in (("1", classifier(1.0)), ("2", classifier(0.001))):
        result = triton.infer("shadowed", [matrix], model_version=version, headers=headers)
        answer = check_infer(result.get_response())
        assert answer.model_version == version
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), model.predict_proba(frame), rtol=1e-9
        )
    # the two versions really differ on these rows, so the version that answered is proven
    assert not np.allclose(
        classifier(1.0).predict_proba(frame), classifier(0.001).predict_proba(frame)
    )
    with pytest.raises(InferenceServerException) as raised:
        triton.infer("shadowed", [matrix], model_version="7", headers=headers)
    assert "serves no version '7'" in str(raised.value)
    assert raised.value.status() == "404"


def test_every_datatype_reaches_columns_of_every_type(stack: Stack, triton: Any) -> None:
    import tritonclient.http as triton_http

    headers = auth(stack)
    metadata = ModelMetadataResponse.model_validate(
        triton.get_model_metadata("mixed", headers=headers)
    )
    assert [(i.name, i.datatype) for i in metadata.inputs] == [
        ("count", "INT64"),
        ("flag", "BOOL"),
        ("label", "BYTES"),
        ("weight", "FP64"),
    ]
    assert [(o.name, o.datatype) for o in metadata.outputs] == [("predict", "FP64")]
    flags = np.array([True, False, True])
    labels = np.array([b"x", b"yy", b"zzzz"], dtype=np.object_)
    integers = ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
    floats = ["FP16", "FP32", "FP64", "INT32", "UINT8"]  # a float column takes integers too
    for count_type, weight_type in zip(integers, floats * 2, strict=False):
        tensors = []
        for name, datatype, values in (
            ("count", count_type, np.array([1, 2, 3])),
            ("flag", "BOOL", flags),
            ("label", "BYTES", labels),
            (
                "weight",
                weight_type,
                np.array([0.5, 1.0, 2.0] if "FP" in weight_type else [1, 0, 2]),
            ),
        ):
            tensor = triton_http.InferInput(name, [3], datatype)
            dtype = triton_http.triton_to_np_dtype(datatype)  # type: ignore[attr-defined]
            tensor.set_data_from_numpy(values.astype(dtype) if datatype != "BYTES" else values)
            tensors.append(tensor)
        result = triton.infer("mixed", tensors, headers=headers)
        check_infer(result.get_response())
        weights = [0.5, 1.0, 2.0] if "FP" in weight_type else [1, 0, 2]
        expected = [
            c * 2 + f + n + w
            for c, f, n, w in zip([1, 2, 3], [1, 0, 1], [1, 2, 4], weights, strict=True)
        ]
        assert result.as_numpy("predict").tolist() == expected, (count_type, weight_type)


# -- hand-written requests: the errors and the JSON forms ------------------------


def v2_post(
    stack: Stack, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    assert stack.serve is not None
    return httpx.post(
        stack.serve.url + path,
        content=orjson.dumps(body),
        headers={**auth(stack), **(headers or {})},
        timeout=30,
    )


def column(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [len(data)], "data": data}


def mixed_inputs(**changed: dict[str, Any]) -> dict[str, Any]:
    tensors = {
        "count": column("count", "INT64", [1, 2]),
        "flag": column("flag", "BOOL", [True, False]),
        "label": column("label", "BYTES", ["a", "b"]),
        "weight": column("weight", "FP64", [0.5, 1.5]),
    }
    return {"inputs": list({**tensors, **changed}.values())}


def test_json_tensors_and_binary_answers_by_hand(stack: Stack) -> None:
    answer = v2_post(stack, "/v2/models/mixed/infer", mixed_inputs())
    assert answer.status_code == 200, answer.text
    assert check_infer(answer.json()).outputs[0].data == [4.5, 6.5]
    # the binary extension by hand: an INT16 count column as bytes, every output as bytes
    header = mixed_inputs(
        count={
            "name": "count",
            "datatype": "INT16",
            "shape": [2],
            "parameters": {"binary_data_size": 4},
        }
    )
    header["parameters"] = {"binary_data_output": True}
    json_part = orjson.dumps(header)
    response = httpx.post(
        f"{stack.serve.url}/v2/models/mixed/infer" if stack.serve else "",
        content=json_part + struct.pack("<2h", 10, 20),
        headers={**auth(stack), "Inference-Header-Content-Length": str(len(json_part))},
    )
    assert response.status_code == 200, response.text
    size = int(response.headers["Inference-Header-Content-Length"])
    body = check_infer(orjson.loads(response.content[:size]))
    assert body.outputs[0].parameters == {"binary_data_size": 16}
    assert list(struct.unpack("<2d", response.content[size:])) == [22.5, 42.5]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (mixed_inputs(weight=column("weight", "FLOAT", [1.0, 2.0])), 400, "unknown datatype"),
        (mixed_inputs(weight=column("weight", "BYTES", ["1", "2"])), 400, "cannot take BYTES"),
        (mixed_inputs(count=column("count", "FP32", [1.0, 2.0])), 400, "cannot take FP32"),
        (mixed_inputs(flag=column("flag", "INT8", [1, 0])), 400, "cannot take INT8"),
        (mixed_inputs(count=column("count", "INT64", [1.5, 2])), 400, "not a INT64 value"),
        (mixed_inputs(count=column("count", "UINT8", [300, 2])), 400, "not a UINT8 value"),
        (mixed_inputs(count=column("count", "INT64", [None, 2])), 400, "count"),
        (mixed_inputs(weight=column("weight", "FP64", [None, 2.0])), 400, "weight"),
        (mixed_inputs(label=column("label", "BYTES", [None, "b"])), 400, "label"),
        (mixed_inputs(flag=column("flag", "BOOL", [True, None])), 400, "flag"),
        (mixed_inputs(count=column("count", "UINT64", [2**64 - 1, 2])), 400, "past the largest"),
        (
            mixed_inputs(
                count={"name": "count", "datatype": "INT64", "shape": [3], "data": [1, 2]}
            ),
            400,
            "shape [3] holds 3 values; got 2",
        ),
        (
            mixed_inputs(
                count={"name": "count", "datatype": "INT64", "shape": [2, 2], "data": [1, 2, 3, 4]}
            ),
            400,
            "[N] or [N, 1]",
        ),
        (mixed_inputs(extra=column("extra", "FP64", [1.0, 2.0])), 400, "not a column"),
        (
            {**mixed_inputs(), "outputs": [{"name": "predict_proba"}]},
            400,
            "no output 'predict_proba'",
        ),
        ({"inputs": []}, 400, "non-empty 'inputs'"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_v2_input_is_a_400_in_the_protocols_error_shape(
    stack: Stack, body: dict[str, Any], status: int, needle: str
) -> None:
    error_of(v2_post(stack, "/v2/models/mixed/infer", body), status, needle)


def test_other_v2_errors_keep_the_protocols_shape(stack: Stack) -> None:
    assert stack.serve is not None
    url = stack.serve.url
    features = rows(2)
    names = list(cancer()[0].columns)
    nulls = {
        "inputs": [column(n, "FP64", [None, float(features[1, i])]) for i, n in enumerate(names)]
    }
    error_of(v2_post(stack, "/v2/models/main/infer", nulls), 400, names[0])
    # a NaN in binary FP64 data is a null too
    header = {
        "inputs": [
            {
                "name": "m",
                "datatype": "FP64",
                "shape": [1, 30],
                "parameters": {"binary_data_size": 240},
            }
        ]
    }
    json_part = orjson.dumps(header)
    raw = np.full(30, np.nan).tobytes()
    response = httpx.post(
        f"{url}/v2/models/main/infer",
        content=json_part + raw,
        headers={**auth(stack), "Inference-Header-Content-Length": str(len(json_part))},
    )
    error_of(response, 400, names[0])
    bad_length = httpx.post(
        f"{url}/v2/models/main/infer",
        content=json_part,
        headers={**auth(stack), "Inference-Header-Content-Length": "999999"},
    )
    error_of(bad_length, 400, "Inference-Header-Content-Length")
    squeezed = httpx.post(
        f"{url}/v2/models/main/infer",
        content=b"not deflate data",
        headers={**auth(stack), "Content-Encoding": "deflate"},
    )
    error_of(squeezed, 400, "not valid deflate data")
    error_of(v2_post(stack, "/v2/models/main/infer", header), 400, "binary_data_size")
    with httpx.Client(base_url=url, headers=auth(stack), timeout=30) as http:
        error_of(http.get("/v2/models/main/versions/9"), 404, "serves no version '9'")
        error_of(http.post("/v2/models/main/versions/9/infer", content=b"{}"), 404, "version")
        error_of(http.get("/v2/models/nowhere"), 404, "nowhere")
        error_of(http.get("/v2/models/main/nothing/here"), 404, "no route")
        error_of(http.post("/v2/models/main/infer", content=b"{not json"), 400, "not valid JSON")
    error_of(httpx.get(f"{url}/v2/models/main"), 401, "")
    # the server kept serving through all of it
    good = {"inputs": [column(n, "FP64", [float(features[0, i])]) for i, n in enumerate(names)]}
    answer = v2_post(stack, "/v2/models/main/versions/1/infer", good)
    assert answer.status_code == 200, answer.text
    assert check_infer(answer.json()).model_version == "1"


def test_metadata_declares_exactly_the_outputs_infer_returns(stack: Stack) -> None:
    assert stack.serve is not None
    names = list(cancer()[0].columns)
    features = rows(3)
    cancer_body = {
        "inputs": [column(n, "FP64", features[:, i].tolist()) for i, n in enumerate(names)]
    }
    answered: dict[str, set[str]] = {}
    with httpx.Client(base_url=stack.serve.url, headers=auth(stack), timeout=30) as http:
        for endpoint in ("main", "shadowed", "split", "mixed", "named", *KIND_OUTPUTS):
            body = mixed_inputs() if endpoint == "mixed" else cancer_body
            rows_sent = 2 if endpoint == "mixed" else 3
            metadata = ModelMetadataResponse.model_validate(
                http.get(f"/v2/models/{endpoint}").json()
            )
            assert metadata.versions
            paths = [(f"/v2/models/{endpoint}", f"/v2/models/{endpoint}/infer", None)] + [
                (
                    f"/v2/models/{endpoint}/versions/{v}",
                    f"/v2/models/{endpoint}/versions/{v}/infer",
                    v,
                )
                for v in metadata.versions
            ]
            for meta_path, infer_path, version in paths:
                declared = ModelMetadataResponse.model_validate(http.get(meta_path).json())
                for key in range(12 if version is None else 1):  # sticky keys reach every route
                    response = http.post(infer_path, json=body, headers={"X-Sticky-Key": f"k{key}"})
                    assert response.status_code == 200, (infer_path, response.text)
                    answer = check_infer(response.json())
                    assert answer.model_version is not None
                    answered.setdefault(endpoint, set()).add(answer.model_version)
                    if version is not None:
                        assert answer.model_version == version
                    got = [(o.name, o.datatype, o.shape) for o in answer.outputs]
                    wanted = [
                        (o.name, o.datatype, [rows_sent if d == -1 else d for d in o.shape])
                        for o in declared.outputs
                    ]
                    assert got == wanted, (infer_path, got, wanted)
    # the split endpoint routes to two versions numbered 1: each is named by its model
    assert answered["split"] == {"cancer:1", "const:1"}


def test_every_kind_of_model_answers_the_outputs_its_metadata_declares(stack: Stack) -> None:
    """Labels without scores, several outputs a row, integers: metadata says what infer
    answers, as JSON and as binary data, whichever outputs a request asks for."""
    assert stack.serve is not None
    features = rows(3)
    matrix = {"name": "rows", "datatype": "FP64", "shape": [3, 30], "data": features.tolist()}
    with httpx.Client(base_url=stack.serve.url, headers=auth(stack), timeout=30) as http:
        for endpoint, outputs in KIND_OUTPUTS.items():
            for path in (f"/v2/models/{endpoint}", f"/v2/models/{endpoint}/versions/1"):
                metadata = ModelMetadataResponse.model_validate(http.get(path).json())
                assert [(o.name, o.datatype, o.shape) for o in metadata.outputs] == outputs
            expected = kinds_of_models()[endpoint].predict(cancer()[0].iloc[:3])
            for binary in (False, True):
                body = {"inputs": [matrix], "outputs": [{"name": "predict"}]}
                body["outputs"][0]["parameters"] = {"binary_data": binary}
                response = http.post(f"/v2/models/{endpoint}/infer", json=body)
                assert response.status_code == 200, (endpoint, response.text)
                size = int(response.headers.get("Inference-Header-Content-Length", 0))
                header = orjson.loads(response.content[:size] if size else response.content)
                (answer,) = check_infer(header).outputs
                shape = [3 if d == -1 else d for d in outputs[0][2]]
                assert (answer.name, answer.datatype, answer.shape) == (
                    "predict",
                    outputs[0][1],
                    shape,
                )
                if not binary:
                    got = np.asarray(answer.data).reshape(shape)
                    assert got.tolist() == np.asarray(expected).reshape(shape).tolist(), endpoint
            refused = http.post(
                f"/v2/models/{endpoint}/infer",
                json={"inputs": [matrix], "outputs": [{"name": "predict_proba"}]},
            )
            error_of(refused, 400, "no output 'predict_proba'")


def test_a_classifiers_requested_outputs_answer_as_metadata_declares(stack: Stack) -> None:
    """Asking for the probabilities, the label, or both in either order: each output named
    as metadata names it, with its datatype and shape, in the order asked."""
    assert stack.serve is not None
    features = rows(4)
    matrix = {"name": "rows", "datatype": "FP64", "shape": [4, 30], "data": features.tolist()}
    with httpx.Client(base_url=stack.serve.url, headers=auth(stack), timeout=30) as http:
        for endpoint in ("main", "named", "shadowed"):
            metadata = ModelMetadataResponse.model_validate(
                http.get(f"/v2/models/{endpoint}").json()
            )
            declared = {
                o.name: (o.datatype, [4 if d == -1 else d for d in o.shape])
                for o in metadata.outputs
            }
            assert set(declared) == {"predict", "predict_proba"}
            for asked in (["predict_proba"], ["predict"], ["predict_proba", "predict"]):
                body = {"inputs": [matrix], "outputs": [{"name": name} for name in asked]}
                response = http.post(f"/v2/models/{endpoint}/infer", json=body)
                assert response.status_code == 200, response.text
                answer = check_infer(response.json())
                assert [(o.name, o.datatype, o.shape) for o in answer.outputs] == [
                    (name, *declared[name]) for name in asked
                ]


def binary_infer(
    stack: Stack, endpoint: str, inputs: list[tuple[dict[str, Any], bytes]]
) -> httpx.Response:
    """An infer request whose inputs all travel as binary data."""
    assert stack.serve is not None
    tensors = [{**tensor, "parameters": {"binary_data_size": len(raw)}} for tensor, raw in inputs]
    header = orjson.dumps({"inputs": tensors})
    return httpx.post(
        f"{stack.serve.url}/v2/models/{endpoint}/infer",
        content=header + b"".join(raw for _, raw in inputs),
        headers={**auth(stack), "Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "FP16"])
@pytest.mark.parametrize("infinity", [np.inf, -np.inf])
def test_an_infinity_is_a_400_naming_the_input_and_its_position(
    stack: Stack, datatype: str, infinity: float
) -> None:
    """JSON cannot carry an infinity, binary data can: it is refused before the model."""
    features = rows(3)
    matrix = features.astype(np.float64)
    matrix[2, 5] = infinity
    raw = matrix.astype(np.dtype(datatype.replace("FP", "float"))).tobytes()
    tensor = {"name": "rows", "datatype": datatype, "shape": [3, 30]}
    message = error_of(binary_infer(stack, "main", [(tensor, raw)]), 400, "input 'rows'")
    assert "position [2, 5]" in message and "not a finite" in message, message
    names = list(cancer()[0].columns)
    columns = []
    for index, name in enumerate(names):  # one tensor per column: the column and the row
        values = matrix[:, index].astype(np.float64)
        columns.append(({"name": name, "datatype": "FP64", "shape": [3]}, values.tobytes()))
    message = error_of(binary_infer(stack, "main", columns), 400, f"input '{names[5]}'")
    assert "position [2]" in message, message
    # the same rows without the infinity are answered
    matrix[2, 5] = 1.0
    tensor["datatype"] = "FP64"
    fine = binary_infer(stack, "main", [(tensor, matrix.tobytes())])
    assert fine.status_code == 200, fine.text
