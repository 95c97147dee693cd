"""Container build contexts: the Dockerfile checked by a parser, the entry point run for real
in a virtualenv built from the generated requirements (no container engine here)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from dockerfile_parse import DockerfileParser
from sklearn.linear_model import LogisticRegression

import modelyard
from modelyard.cli.container import KEY_FILE, prepare, start
from modelyard.client.yard import Yard
from modelyard.packaging.container import HOME, PORT
from tests.conftest import embedded_yard, free_port

ROOT = Path(modelyard.__file__).resolve().parents[2]


def small_model() -> tuple[LogisticRegression, pd.DataFrame]:
    frame = pd.DataFrame(
        {"dose": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], "weight": [60, 72, 55, 90, 81, 66]}
    )
    return LogisticRegression().fit(frame, [0, 0, 0, 1, 1, 1]), frame


@pytest.fixture
def context(home: Path, tmp_path: Path) -> Path:
    model, frame = small_model()
    with embedded_yard(home) as yard:
        yard.models.register(model, name="dosage", input_example=frame)
        yard.models.register(model, name="dosage", input_example=frame.head(3))
        yard.models.set_alias("dosage", "champion", 2)
        return yard.models.build("dosage@champion", tmp_path / "context", endpoint="dosage-api")


def test_the_dockerfile_copies_only_what_the_context_holds_and_runs_as_non_root(
    context: Path,
) -> None:
    parser = DockerfileParser(path=str(context / "Dockerfile"))
    assert parser.baseimage == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    copies = [value.split() for kind, value in instructions if kind == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    for *sources, _destination in copies:
        for source in sources:
            assert (context / source).exists(), f"COPY {source}: not in the build context"
    users = [value for kind, value in instructions if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [kind for kind, _ in instructions].index("USER") > max(
        index for index, (kind, _) in enumerate(instructions) if kind == "RUN"
    ), "a RUN after USER would run as the unprivileged user: the install must come first"
    entrypoint = json.loads(next(value for kind, value in instructions if kind == "ENTRYPOINT"))
    assert entrypoint == ["python", "/app/entrypoint.py"]
    assert ["entrypoint.py", "/app/entrypoint.py"] in copies
    assert ("EXPOSE", str(PORT)) in instructions
    assert any(kind == "HEALTHCHECK" and "/healthz" in value for kind, value in instructions)
    assert parser.envs["MODELYARD_HOME"] == HOME
    requirements = (context / "requirements.txt").read_text().splitlines()
    assert requirements[0] == f"modelyard=={modelyard.__version__}"
    assert all("==" in line for line in requirements)
    record = json.loads((context / "modelyard-build.json").read_text())
    assert (record["model"], record["version"], record["endpoint"]) == ("dosage", 2, "dosage-api")


def test_first_start_registers_routes_and_writes_a_private_key_once(
    context: Path, tmp_path: Path
) -> None:
    inside = tmp_path / "inside"
    yard: Yard = embedded_yard(inside)
    with yard:
        for _ in range(2):  # a restart finds everything in place
            prepare(
                yard, context / "package", inside, model="dosage", version=2, endpoint="dosage-api"
            )
        [version] = yard.models.versions("dosage")
        assert version.tags["built_from"] == "dosage/2"
        assert yard.endpoints.get("dosage-api").spec.routes[0].version == version.version
    key_file = inside / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("my_")


def test_a_changed_package_refuses_to_start(
    context: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (context / "package" / "input_example.json").open("a") as example:
        example.write(" ")
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "inside"))
    record = json.loads((context / "modelyard-build.json").read_text())
    with pytest.raises(SystemExit) as exited:
        start(
            context / "package",
            digest=record["package_digest"],
            model="dosage",
            version=2,
            endpoint="dosage-api",
        )
    assert exited.value.code == 2
    assert "refuses to start: package file 'input_example.json' fails its sha256" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "inside").exists()


@pytest.mark.slow
def test_the_entry_point_serves_from_a_virtualenv_of_the_generated_requirements(
    context: Path, tmp_path: Path
) -> None:
    # as the Dockerfile does: wheels/ first (modelyard's own, built from this source), then
    # the pinned requirements; the project's constraints keep the rest at the tested versions
    pip = [sys.executable, "-m", "pip"]
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            *quiet,
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "-w",
            str(context / "wheels"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # offline: the new environment sees this one's packages (the tested versions) through a
    # .pth file, so pip must find every pinned requirement already satisfied by exactly
    # those, and modelyard itself comes from the context's own wheel
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "tested-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [str(python), "-m", "pip", "install", *quiet, "--no-compile", "--no-index"]
    wheels = sorted((context / "wheels").glob("modelyard-*.whl"))
    subprocess.run([*install, "--no-deps", *map(str, wheels)], check=True, timeout=300)
    subprocess.run(
        [
            *install,
            "-r",
            str(context / "requirements.txt"),
            "-c",
            str(ROOT / "constraints.txt"),
        ],
        check=True,
        timeout=600,
        cwd=context,
    )
    where = subprocess.run(
        [str(python), "-c", "import modelyard; print(modelyard.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(purelib), where  # the context's wheel, not this checkout
    port = free_port()
    inside = tmp_path / "inside"
    inside.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "MODELYARD_HOME": str(inside),
        "MODELYARD_HOST": "127.0.0.1",
        "MODELYARD_PORT": str(port),
        "OPENBLAS_NUM_THREADS": "1",
    }
    log = tmp_path / "container.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(python), str(context / "entrypoint.py")], env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(url, process, log)
        assert ready["endpoints"][0]["name"] == "dosage-api"
        assert httpx.get(f"{url}/healthz").status_code == 200
        key = (inside / KEY_FILE).read_text().strip()
        rows = [{"dose": 0.7, "weight": 70}, {"dose": 2.8, "weight": 70}]
        answer = httpx.post(
            f"{url}/endpoints/dosage-api/predict",
            json={"records": rows},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        model, _ = small_model()
        assert answer.json()["predictions"] == model.predict(pd.DataFrame(rows)).tolist()
        refused = httpx.post(f"{url}/endpoints/dosage-api/predict", json={"records": rows})
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the entry point exited: {log.read_text()}")
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
            if answer.status_code == 200:
                ready: dict[str, Any] = answer.json()
                return ready
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in 120 s: {log.read_text()}")
