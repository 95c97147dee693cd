"""Artifact storage: a local folder by default, any fsspec URL at scale.

An ``ArtifactStore`` maps safe keys (see ``keys.safe_key``) to bytes. Writers
stream from a file object and get back the sha256 and size they wrote, so a hash
is computed once, on the way in.

A write the disk refuses (full, read-only, not writable by this process) raises
``StorageUnavailable`` naming the key and the reason, and leaves nothing under the
key: the local store writes a temporary file and renames it into place only once
every byte is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from modelyard.artifacts.keys import safe_key
from modelyard.errors import STORAGE_ERRNOS, NotFound, StorageUnavailable, os_reason

CHUNK = 1 << 20
log = logging.getLogger("modelyard.artifacts")


class ArtifactStore(Protocol):
    """Where artifact bytes live; keys are relative paths."""

    root: str

    def put(self, key: str, source: BinaryIO) -> tuple[str, int]:
        """Store ``source`` under ``key``; return (sha256 hex, size in bytes)."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def list(self, prefix: str) -> list[str]: ...

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the store is a local folder."""
        ...


def _copy_hashing(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class LocalArtifactStore:
    """Artifacts in a folder; writes are atomic (temp file, then rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root).absolute())

    def _path(self, key: str) -> Path:
        return Path(self.root, safe_key(key))

    def put(self, key: str, source: BinaryIO) -> tuple[str, int]:
        target = self._path(key)
        with storing(key, target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as out:
                    result = _copy_hashing(source, out)
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return result

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"artifact '{key}' does not exist") from None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        found = (p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".upload-"))
        return sorted(p.relative_to(self.root).as_posix() for p in found)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class FsspecArtifactStore:
    """Artifacts behind any fsspec URL (``s3://bucket/yard``, ``memory://yard``, ...)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.root = url.rstrip("/")
        self._fs, self._base = fsspec.core.url_to_fs(self.root)

    def _path(self, key: str) -> str:
        return f"{self._base}/{safe_key(key)}"

    def put(self, key: str, source: BinaryIO) -> tuple[str, int]:
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        with storing(key, f"{self.root}/{safe_key(key)}"):
            self._fs.makedirs(parent, exist_ok=True)
            with self._fs.open(path, "wb") as out:
                return _copy_hashing(source, out)

    def open(self, key: str) -> BinaryIO:
        try:
            handle: BinaryIO = self._fs.open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"artifact '{key}' does not exist") from None
        return handle

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not self._fs.isdir(base):
            return []
        strip = len(self._base) + 1
        return sorted(str(p)[strip:] for p in self._fs.find(base))

    def local_path(self, key: str) -> Path | None:
        return None


@contextlib.contextmanager
def storing(key: str, where: object) -> Iterator[None]:
    """Turn the disk refusing a write of ``key`` into ``StorageUnavailable``; the message
    names the key (what the caller sent), the server's log also names ``where``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        log.error("artifact '%s' could not be stored at %s: %s", key, where, exc)
        raise StorageUnavailable(
            f"artifact store cannot be written: {os_reason(exc)} (artifact '{key}' was not stored)"
        ) from None


def open_store(root: str) -> ArtifactStore:
    """The store for ``root``: a folder path or ``file://`` URL is local, others fsspec."""
    if "://" not in root:
        return LocalArtifactStore(root)
    if root.startswith("file://"):
        return LocalArtifactStore(root.removeprefix("file://"))
    return FsspecArtifactStore(root)


def download_tree(store: ArtifactStore, prefix: str, target: Path) -> list[str]:
    """Copy every artifact under ``prefix`` into ``target``; return the relative paths."""
    copied = []
    for key in store.list(prefix):
        relative = key[len(safe_key(prefix)) + 1 :]
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        with store.open(key) as source, destination.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        copied.append(relative)
    return copied


def iter_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """Every file below ``directory`` as (relative posix path, absolute path)."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path.relative_to(directory).as_posix(), path
