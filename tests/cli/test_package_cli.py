"""`package export --format onnx|function` and `package build` on an embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from tests.cli.test_cli import invoke
from tests.conftest import embedded_yard

pytest.importorskip("onnxruntime")


class Constant:
    def predict(self, frame: pd.DataFrame) -> list[int]:
        return [1] * len(frame)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("package-cli")
    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.iloc[:, :6]
    with embedded_yard(home) as yard:
        with yard.start_run(experiment="cli") as run:
            run.log_dataset(features.assign(target=bunch.target), name="bc", role="training")
            model = LogisticRegression(max_iter=3000).fit(features, bunch.target)
            run.log_model(model, name="bc", input_example=features.head())
        yard.models.set_alias("bc", "champion", 1)
        yard.models.register(Constant(), name="constant", input_example=features.head())
    return home


def test_onnx_export_prints_the_check_it_passed(filled: Path, tmp_path: Path) -> None:
    code, out, err = invoke(
        filled, "package", "export", "bc@champion", str(tmp_path / "twin"), "--format", "onnx"
    )
    assert code == 0, err
    out = " ".join(out.split())  # the console wraps long lines
    assert "as ONNX: largest difference" in out
    assert "over 569 rows of the training dataset 'bc' (tolerance 0.0001)" in out
    assert json.loads((tmp_path / "twin" / "manifest.json").read_text())["flavor"] == "onnx"


def test_a_refused_conversion_is_one_line_naming_the_largest_difference(
    filled: Path, tmp_path: Path
) -> None:
    code, _, err = invoke(
        filled,
        "package",
        "export",
        "bc/1",
        str(tmp_path / "twin"),
        "--format",
        "onnx",
        "--tolerance",
        "0",
    )
    assert code == 2
    assert err.startswith("error: the ONNX conversion does not answer as the original model")
    assert "largest difference" in err and err.count("\n") == 1
    assert not any((tmp_path / "twin").iterdir())


def test_an_unsupported_flavor_exits_2_naming_the_converters(filled: Path, tmp_path: Path) -> None:
    code, _, err = invoke(
        filled, "package", "export", "constant/1", str(tmp_path / "x"), "--format", "onnx"
    )
    assert code == 2
    assert "cannot convert a 'pyfunc' model to ONNX" in err and "skl2onnx (sklearn)" in err


def test_function_export_and_container_build_write_their_folders(
    filled: Path, tmp_path: Path
) -> None:
    code, out, err = invoke(
        filled, "package", "export", "bc/1", str(tmp_path / "fn"), "--format", "function"
    )
    assert code == 0, err
    assert (tmp_path / "fn" / "handler.py").is_file() and "(function)" in out
    code, out, err = invoke(
        filled, "package", "build", "bc@champion", str(tmp_path / "ctx"), "--endpoint", "bc-api"
    )
    assert code == 0, err
    assert "docker build -t IMAGE" in " ".join(out.split())
    record = json.loads((tmp_path / "ctx" / "modelyard-build.json").read_text())
    assert (record["model"], record["version"], record["endpoint"]) == ("bc", 1, "bc-api")
    code, _, err = invoke(filled, "package", "build", "bc/1", str(tmp_path / "ctx"))
    assert code == 2 and "exists and is not empty" in err


def test_package_twin_registers_the_twin_an_onnx_route_serves(filled: Path) -> None:
    code, out, err = invoke(filled, "package", "twin", "bc@champion", "--json")
    assert code == 0, err
    twin = json.loads(out)
    assert (twin["model"], twin["flavor"], twin["tags"]["onnx_twin_of"]) == ("bc", "onnx", "1")
    code, out, err = invoke(
        filled, "endpoint", "create", "bc-edge", "--route", "bc@champion=100,onnx"
    )
    assert code == 0, err
    assert f"bc/{twin['version']} (onnx twin of bc/1)" in " ".join(out.split())
    code, out, err = invoke(
        filled, "endpoint", "create", "bc-edge-2", "--route", "bc/1=100", "--runtime", "onnx"
    )
    assert code == 0, err
    assert f"bc/{twin['version']} (onnx twin of bc/1)" in " ".join(out.split())
    code, out, err = invoke(filled, "endpoint", "update", "bc-edge-2", "--route", "bc/1=100")
    assert code == 0 and "onnx twin" not in out, err  # native again
    code, _, err = invoke(filled, "package", "twin", "constant/1")
    assert code == 2 and "cannot convert a 'pyfunc' model" in err
