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
