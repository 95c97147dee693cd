"""Schemathesis against the live OpenAPI of ``modelyard server``: every operation, with an
admin key, over the quickstart's data (so names in paths lead somewhere), a bounded number
of generated requests each. No answer may be a server error, an undocumented status or
content type, or a body that breaks its documented schema.

The store is a throwaway one: fuzzing writes (it may move an alias or retire a model).
Operations that could lock the fuzzer out (revoking its own key, demoting its own user)
are pointed at a spare user and key.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import ServerProcess, modelyard_command
from tests.integration.fuzzing import fuzz

pytest.importorskip("schemathesis")

EXAMPLES = 6


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    for args in (("quickstart",), ("admin", "init", "--name", "admin")):
        done = subprocess.run(
            modelyard_command(*args), env=env, check=True, capture_output=True, text=True
        )
    key = done.stdout.strip().splitlines()[-1]
    secret = {"MODELYARD_SECRET_KEY": Fernet.generate_key().decode()}
    server = ServerProcess(home, env=secret).start()
    try:
        yield server, key
    finally:
        server.stop()


def _config(server: ServerProcess, key: str, folder: Path) -> Path:
    """Names and ids that exist, for the path parameters of each kind of route."""
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        run = api.get("/runs/search", params={"experiments": "quickstart"}).json()["runs"][0]
        used = api.get(f"/runs/{run['id']}/datasets").json()[0]
        alert = api.get("/alerts").json()[0]["id"]
        retraining = api.get("/retraining-requests").json()[0]["id"]
        api.post("/users", json={"name": "spare", "role": "viewer"}).raise_for_status()
        spare_key = api.post("/users/spare/keys", json={"name": "fuzzed"}).json()["key"]["id"]
    dataset = used.get("dataset", used)
    lines = [
        "[parameters]",
        'name = "breast-cancer"',
        'selector = "1"',
        f'run_id = "{run["id"]}"',
        f'environment_id = "{run.get("environment_id") or ""}"',
        f'alert_id = "{alert}"',
        f'request_id = "{retraining}"',
        'workspace = "default"',
        'alias = "champion"',
        'user = "spare"',
        f'key_id = "{spare_key}"',
        f'fingerprint = "{dataset["fingerprint"]}"',
        "",
        "[[operations]]",
        'include-path-regex = "^/api/v1/experiments/"',
        'parameters = { name = "quickstart" }',
        "",
        "[[operations]]",
        'include-path-regex = "^/api/v1/users/"',
        'parameters = { name = "spare" }',
        "",
        "[[operations]]",
        'include-path-regex = "^/api/v1/datasets/\\\\{name\\\\}"',
        f'parameters = {{ name = "{dataset["name"]}" }}',
    ]
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_every_operation_answers_as_documented(
    fuzzed: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, key = fuzzed
    config = _config(server, key, tmp_path)
    tested, _, operations = fuzz(config, f"{server.url}/openapi.json", key, EXAMPLES)
    assert tested == operations >= 100  # every operation
