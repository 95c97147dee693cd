"""Package routes: stage a package's files under an upload id, register it, then list
and download the version's files the way the remote SDK does."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sklearn.dummy import DummyClassifier

from modelyard.artifacts.store import iter_files
from modelyard.client.yard import connect
from modelyard.errors import StorageUnavailable
from modelyard.packaging import package_digest, read_manifest, write_package
from tests.conftest import ServerProcess, prepare_store
from tests.disk import small_disk


def test_upload_register_list_and_download(api: httpx.Client, unique: str, tmp_path: Path) -> None:
    package = tmp_path / "model"
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    write_package(model, package, input_example={"x": [0]})
    upload_id = uuid.uuid4().hex
    for relative, path in iter_files(package):
        staged = api.put(f"/api/v1/uploads/{upload_id}/{relative}", content=path.read_bytes())
        assert staged.status_code == 201 and staged.json()["size"] == path.stat().st_size
    source = f"uploads/{upload_id}"
    registered = api.post(f"/api/v1/models/{unique}/versions", json={"source": source})
    assert registered.status_code == 201, registered.text
    assert registered.json()["package_digest"] == package_digest(read_manifest(package))
    api.put(f"/api/v1/models/{unique}/aliases/champion", json={"version": 1})

    for selector in ("1", "latest", "@champion", "%40champion"):
        listing = api.get(f"/api/v1/models/{unique}/versions/{selector}/package")
        assert listing.status_code == 200, (selector, listing.text)
        assert listing.json()["files"] == [relative for relative, _ in iter_files(package)]
    base = f"/api/v1/models/{unique}/versions/1/package"
    for relative, path in iter_files(package):
        assert api.get(f"{base}/{relative}").content == path.read_bytes()
    missing = api.get(f"{base}/nothing.bin")
    assert missing.status_code == 404
    assert (
        missing.json()["error"]["message"] == f"the package of {unique}/1 has no file 'nothing.bin'"
    )
    assert api.get(f"{base}/..%2F..%2Fmodelyard.db").status_code == 422


def test_a_source_that_holds_no_package_is_refused(api: httpx.Client, unique: str) -> None:
    answer = api.post(
        f"/api/v1/models/{unique}/versions", json={"source": f"uploads/{uuid.uuid4().hex}"}
    )
    assert answer.status_code == 404, answer.text
    assert "no package staged as" in answer.json()["error"]["message"]
    upload_id = uuid.uuid4().hex  # staged, but no manifest among its files
    assert api.put(f"/api/v1/uploads/{upload_id}/notes.txt", content=b"x").status_code == 201
    answer = api.post(f"/api/v1/models/{unique}/versions", json={"source": f"uploads/{upload_id}"})
    assert answer.status_code == 404, answer.text
    assert "manifest.json is missing" in answer.json()["error"]["message"]


@pytest.mark.slow
def test_a_full_artifact_store_answers_507_and_the_sdk_raises_storage_unavailable(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with small_disk(tmp_path / "artifacts", "1m") as disk:
        env = {"MODELYARD_ARTIFACTS": str(disk.path)}
        key = prepare_store(home, env)
        server = ServerProcess(home, env).start()
        try:
            yard = connect(server.url, api_key=key, home=tmp_path / "client")
            model = DummyClassifier().fit([[0], [1]], [0, 1])
            filler = disk.fill()
            with pytest.raises(StorageUnavailable, match="no space left on device"):
                yard.models.register(model, name="full", input_example={"x": [0]})
            staged = httpx.put(
                f"{server.url}/api/v1/uploads/{uuid.uuid4().hex}/model.pkl",
                content=b"m" * 10_000,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert staged.status_code == 507
            message = staged.json()["error"]["message"]
            assert staged.json()["error"]["kind"] == "storage_unavailable"
            assert message.startswith("artifact store cannot be written: no space left on device")
            assert str(disk.path) not in message  # the server's paths stay in its log
            disk.free(filler)
            version = yard.models.register(model, name="full", input_example={"x": [0]})
            assert version.version == 1
            yard.close()
        finally:
            server.stop()


def _client(server: ServerProcess, key: str, workspace: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}", "X-Modelyard-Workspace": workspace}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _stage(client: httpx.Client, upload_id: str, package: Path) -> set[int]:
    return {
        client.put(f"/api/v1/uploads/{upload_id}/{relative}", content=path.read_bytes()).status_code
        for relative, path in iter_files(package)
    }


def test_a_staged_upload_is_registered_only_by_the_user_who_staged_it(
    api: httpx.Client, server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    """Ana stages a package in workspace A. Bob (B) cannot register it, nor add or replace
    its files. Ana may register what she staged wherever she may register: a client
    stages in its home workspace and registers into the workspace owning the model.
    Once registered, the upload's files take no more writes: they are the package."""
    teams = {"a": f"{unique}a", "b": f"{unique}b"}
    keys = {}
    for team in teams.values():
        assert api.post("/api/v1/workspaces", json={"name": team}).status_code == 201
    for person, home in (("ana", "a"), ("bob", "b")):
        body = {"name": f"{person}-{unique}", "role": "contributor", "workspace": teams[home]}
        assert api.post("/api/v1/users", json=body).status_code == 201
        keys[person] = api.post(f"/api/v1/users/{person}-{unique}/keys", json={}).json()["token"]
    member = api.put(
        f"/api/v1/workspaces/{teams['b']}/members/ana-{unique}", json={"role": "contributor"}
    )
    assert member.status_code in (200, 201), member.text
    package = tmp_path / "model"
    write_package(DummyClassifier().fit([[0], [1]], [0, 1]), package, input_example={"x": [0]})
    upload_id = uuid.uuid4().hex
    source = f"uploads/{upload_id}"
    model = f"{unique}-model"
    ana_a = _client(server, keys["ana"], teams["a"])
    ana_b = _client(server, keys["ana"], teams["b"])
    bob = _client(server, keys["bob"], teams["b"])
    with ana_a, ana_b, bob:
        assert _stage(ana_a, upload_id, package) == {201}
        taken = bob.post(f"/api/v1/models/{model}/versions", json={"source": source})
        assert taken.status_code == 404, taken.text
        message = taken.json()["error"]["message"]
        assert message == f"no package staged as '{source}' by user 'bob-{unique}'"
        assert _stage(bob, upload_id, package) == {409}
        extra = bob.put(f"/api/v1/uploads/{upload_id}/extra.txt", content=b"x")
        assert extra.status_code == 409 and "taken" in extra.json()["error"]["message"]
        registered = ana_a.post(f"/api/v1/models/{model}/versions", json={"source": source})
        assert registered.status_code == 201, registered.text
        assert _stage(ana_a, upload_id, package) == {409}  # sealed
        assert bob.get(f"/api/v1/models/{model}").status_code in (403, 404)
        # staged from B (her client's workspace), registered into A's model
        second = uuid.uuid4().hex
        assert _stage(ana_b, second, package) == {201}
        added = ana_b.post(f"/api/v1/models/{model}/versions", json={"source": f"uploads/{second}"})
        assert (added.status_code, added.json().get("version")) == (201, 2), added.text
        assert _stage(bob, second, package) == {409}
        # the files the version was registered from are still the ones ana staged
        listing = ana_a.get(f"/api/v1/models/{model}/versions/1/package").json()
        assert listing["files"] == [relative for relative, _ in iter_files(package)]
        assert listing["package_digest"] == registered.json()["package_digest"]
