"""Packages as the catalog sees them: verified in the artifact store, fetched for loading."""

from __future__ import annotations

import tempfile
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
