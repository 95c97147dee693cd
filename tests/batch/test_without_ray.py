"""Serving and local batch scoring work where Ray is not installed, and never import it.

A fresh interpreter makes ``import ray`` fail as it does without the package, then
imports the CLI, scores a file with the local engine (in this process and with two
worker processes), serves a prediction over HTTP, and asks for the Ray engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.batch.engine import engine_for
from modelyard.batch.local import LocalEngine
from modelyard.errors import InvalidInput

WITHOUT_RAY = """
import json, sys
sys.modules["ray"] = None  # `import ray` now fails as it does when Ray is not installed

import httpx
import modelyard.cli.main
from modelyard.bootstrap import bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.errors import NotConfigured
from modelyard.serving.inprocess import serve_in_thread
from tests.batch.data import FEATURES, frame, model, write_parts
from tests.conftest import sqlite_settings

root = __import__("pathlib").Path(sys.argv[1])
services = bootstrap(sqlite_settings(root / "home"))
yard = Yard(LocalBackend(services))
yard.models.register(model(), name="churn", input_example=frame(5)[FEATURES])
yard.endpoints.create("churn-api", routes=["churn/1=100"])
folder = write_parts(root / "in", parts=2, rows=100)
jobs = [
    yard.batch.score("churn/1", folder, root / f"out{n}.parquet", workers=n, batch_rows=32)
    for n in (1, 2)
]
services.identity.create_user("ana", "admin")
_, key = services.identity.create_key("ana")
with serve_in_thread(services, ["churn-api"]) as url:
    answer = httpx.post(
        f"{url}/endpoints/churn-api/predict",
        json={"records": frame(3)[FEATURES].to_dict(orient="records")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
try:
    yard.batch.score("churn/1", folder, root / "ray.parquet", workers=1, engine="ray")
    refused = ""
except NotConfigured as exc:
    refused = str(exc)
services.close()
print(json.dumps({
    "jobs": [(job.status.value, job.rows_out, job.output_fingerprint) for job in jobs],
    "status": answer.status_code,
    "predictions": len(answer.json()["predictions"]),
    "refused": refused,
    "ray_loaded": sys.modules.get("ray") is not None,
    "ray_modules": sorted(name for name in sys.modules if name.startswith("ray.")),
}))
"""


@pytest.mark.slow  # starts a process, which starts a server thread and worker processes
def test_serving_and_local_batch_work_without_ray(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    (one, one_rows, one_print), (two, two_rows, two_print) = found["jobs"]
    assert (one, one_rows, two, two_rows) == ("succeeded", 200, "succeeded", 200)
    assert one_print == two_print  # the same bytes with one worker or two
    assert (found["status"], found["predictions"]) == (200, 3)
    assert "install modelyard with the 'ray' extra" in found["refused"]
    assert not found["ray_loaded"] and found["ray_modules"] == []


def test_engines_are_named_and_the_ray_engine_is_built_without_importing_ray() -> None:
    assert isinstance(engine_for("local", workers=1), LocalEngine)
    assert type(engine_for("ray", workers=2, address="127.0.0.1:6379")).__name__ == "RayEngine"
    with pytest.raises(InvalidInput, match="engine 'spark' is not one of local, ray"):
        engine_for("spark", workers=1)
    with pytest.raises(InvalidInput, match="goes with the ray engine only"):
        engine_for("local", workers=1, address="127.0.0.1:6379")
