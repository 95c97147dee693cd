from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from modelyard.artifacts.store import (
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    download_tree,
    open_store,
)
from modelyard.errors import InvalidInput, NotFound


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    return FsspecArtifactStore(f"memory://{tmp_path.name}")


def test_put_returns_hash_and_size_and_round_trips(store: ArtifactStore) -> None:
    payload = bytes(range(256)) * 5000
    sha, size = store.put("runs/r1/a.bin", io.BytesIO(payload))
    assert (sha, size) == (hashlib.sha256(payload).hexdigest(), len(payload))
    with store.open("runs/r1/a.bin") as handle:
        assert handle.read() == payload
    store.put("runs/r1/sub/b.txt", io.BytesIO(b"b"))
    assert store.list("runs/r1") == ["runs/r1/a.bin", "runs/r1/sub/b.txt"]
    assert store.list("runs/none") == []


def test_missing_and_escaping_keys(store: ArtifactStore) -> None:
    with pytest.raises(NotFound, match="artifact 'nope' does not exist"):
        store.open("nope")
    with pytest.raises(InvalidInput):
        store.put("../outside", io.BytesIO(b"x"))


def test_download_tree(store: ArtifactStore, tmp_path: Path) -> None:
    store.put("pkg/manifest.json", io.BytesIO(b"{}"))
    store.put("pkg/files/model.pkl", io.BytesIO(b"m"))
    target = tmp_path / "copy"
    assert download_tree(store, "pkg", target) == ["files/model.pkl", "manifest.json"]
    assert (target / "files/model.pkl").read_bytes() == b"m"


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)

    class Exploding(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk went away")

    store.put("x.txt", io.BytesIO(b"old"))
    with pytest.raises(OSError):
        store.put("x.txt", Exploding())
    assert (tmp_path / "x.txt").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_open_store_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalArtifactStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalArtifactStore)
    assert isinstance(open_store("memory://yard"), FsspecArtifactStore)
