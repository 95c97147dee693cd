"""Packages as the catalog sees them: verified in the artifact store, fetched for loading.

A package registered without a run is uploaded file by file under ``uploads/<id>/``
(``PUT /uploads/...``, or the embedded SDK writing the store), its manifest last,
then registered with ``source = "uploads/<id>"``. An upload cut short (the client or
the server killed) leaves a folder without a manifest, which no reader takes for a
package (``local_copy`` and registration refuse it); ``sweep_uploads`` removes such
folders, and whole packages nobody registered, once untouched for ``UPLOAD_TTL``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelyard.artifacts.keys import safe_key
from modelyard.artifacts.store import ArtifactStore, download_tree
from modelyard.errors import NotFound


@contextmanager
def local_copy(store: ArtifactStore, prefix: str) -> Iterator[Path]:
    """A local directory holding the package at ``prefix`` (the folder itself if local)."""
    prefix = safe_key(prefix, what="package source")
    local = store.local_path(prefix)
    if local is not None:
        if not (local / "manifest.json").is_file():
            raise NotFound(f"no model package at '{prefix}' (manifest.json is missing)")
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="modelyard-package-") as temp:
        if not download_tree(store, prefix, Path(temp)):
            raise NotFound(f"no model package at '{prefix}'")
        yield Path(temp)


def verified_manifest(store: ArtifactStore, prefix: str) -> tuple[dict[str, Any], str]:
    """Hash-check every file of the package at ``prefix``; return (manifest, digest)."""
    from modelyard.packaging import package_digest, verify_package

    with local_copy(store, prefix) as directory:
        manifest = verify_package(directory)
    return manifest.to_dict(), package_digest(manifest)


def package_directory(store: ArtifactStore, source: str, digest: str, cache: Path) -> Path:
    """A local directory with the package at ``source``: the folder itself when the
    store is local, else a copy kept in ``cache/<digest>`` (verify it before use)."""
    local = store.local_path(safe_key(source, what="package source"))
    if local is not None:
        return local
    target = cache / digest
    if not (target / "manifest.json").is_file():
        download_tree(store, source, target)
    return target


UPLOADS = "uploads"
UPLOAD_TTL = 24 * 3600.0  # seconds an unregistered upload folder is kept untouched


def sweep_uploads(
    store: ArtifactStore,
    registered: set[str],
    *,
    older_than: float = UPLOAD_TTL,
    now: float | None = None,
) -> list[str]:
    """Remove each ``uploads/<id>`` folder of a local store that no version's source
    names and nothing touched for ``older_than`` seconds; the keys removed.

    An upload in progress touches its folder at least once per file, so only uploads
    abandoned for that long go. A store behind an fsspec URL is left to its own
    expiry rules (an object store's lifecycle policy)."""
    root = store.local_path(UPLOADS)
    if root is None or not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - older_than
    removed = []
    for folder in sorted(root.iterdir()):
        key = f"{UPLOADS}/{folder.name}"
        if key in registered or not folder.is_dir() or _last_touched(folder) > cutoff:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(key)
    return removed


def _last_touched(folder: Path) -> float:
    stamps = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            stamps.append(path.stat().st_mtime)
        except FileNotFoundError:  # a temporary file renamed meanwhile
            continue
    return max(stamps)
