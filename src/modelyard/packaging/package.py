"""The model package: a folder of model files plus a manifest that hashes them.

``manifest.json`` records the flavor, the signature, the Python requirements,
the run the package came from and the sha256 and size of every other file.
``package_digest`` (the sha256 of the canonical manifest) identifies the package
in the catalog. Loading verifies every hash, and refuses files the manifest does
not list, symbolic links and names that leave the folder, before anything is
unpickled.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.clock import now_ms
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.packaging.flavors import Flavor, flavor_for, get_flavor
from modelyard.packaging.signature import Signature, enforce, infer_signature, to_frame

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INPUT_EXAMPLE = "input_example.json"


@dataclass(frozen=True)
class Manifest:
    flavor: str
    files: dict[str, dict[str, Any]]
    signature: dict[str, Any] | None = None
    requirements: list[str] = field(default_factory=list)
    python: str = ""
    run_id: str | None = None
    created_at: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "signature": self.signature,
            "requirements": self.requirements,
            "python": self.python,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            return cls(**data)
        except TypeError as exc:
            raise IntegrityError(f"package manifest is malformed: {exc}") from None


def package_digest(manifest: Manifest) -> str:
    """The sha256 of the canonical manifest: one package, one digest."""
    canonical = json.dumps(manifest.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _requirements(flavor: Flavor) -> list[str]:
    pinned = []
    for name in flavor.requirements:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pinned


def _example_json(example: Any) -> str:
    frame = to_frame(example)
    return str(frame.to_json(orient="split", index=False, date_format="iso"))


def write_package(
    model: Any,
    directory: str | Path,
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    requirements: list[str] | None = None,
    run_id: str | None = None,
    flavor: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Manifest:
    """Write ``model`` as a package in ``directory`` (created; must be empty).

    >>> manifest = write_package(clf, "out/model", input_example=X.head())
    >>> manifest.flavor
    'sklearn'
    """
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"package directory '{target}' is not empty")
    target.mkdir(parents=True, exist_ok=True)
    chosen = get_flavor(flavor) if flavor else flavor_for(model)
    if signature is None and input_example is not None:
        signature = infer_signature(input_example)
    written = chosen.save(model, target)
    if input_example is not None:
        (target / INPUT_EXAMPLE).write_text(_example_json(input_example))
        written.append(INPUT_EXAMPLE)
    manifest = Manifest(
        flavor=chosen.name,
        files={
            name: {"sha256": _sha256(target / name), "size": (target / name).stat().st_size}
            for name in sorted(written)
        },
        signature=signature.to_dict() if signature else None,
        requirements=requirements if requirements is not None else _requirements(chosen),
        python=platform.python_version(),
        run_id=run_id,
        created_at=now_ms(),
        metadata=metadata or {},
    )
    (target / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True))
    return manifest


def upload_order(directory: Path) -> list[tuple[str, Path]]:
    """Every file of the package in ``directory`` as (relative posix path, path), its
    manifest last: an upload cut short (a crash of either side) never holds a
    manifest, so nothing takes what it left for a package."""
    files = [
        (path.relative_to(directory).as_posix(), path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]
    return sorted(files, key=lambda item: item[0] == MANIFEST)  # stable: the rest in order


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise NotFound(f"'{directory}' is not a model package: {MANIFEST} is missing")
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise IntegrityError(
            f"package manifest in '{directory}' is not valid JSON: {exc}"
        ) from None


def verify_package(directory: str | Path, expected_digest: str | None = None) -> Manifest:
    """Check every file against the manifest; raise ``IntegrityError`` naming the first bad one."""
    root = Path(directory)
    _refuse_links(root)
    manifest = read_manifest(root)
    if expected_digest is not None and package_digest(manifest) != expected_digest:
        raise IntegrityError(
            f"package manifest in '{root}' does not match the registered digest: "
            "the package was changed after it was registered"
        )
    for name, entry in manifest.files.items():
        _verify_file(root, name, entry)
    _refuse_unlisted(root, manifest)
    return manifest


def _refuse_links(root: Path) -> None:
    """A package holds regular files and folders only: a symbolic link could make a
    listed name read bytes from anywhere on the machine."""
    if root.is_symlink():
        raise IntegrityError(f"package folder '{root}' is a symbolic link")
    for folder, folders, files in os.walk(root, followlinks=False):
        for name in sorted(folders + files):
            path = Path(folder) / name
            if path.is_symlink():
                relative = path.relative_to(root).as_posix()
                raise IntegrityError(
                    f"package file '{relative}' is a symbolic link: a package holds "
                    "regular files only"
                )


def _verify_file(root: Path, name: str, entry: dict[str, Any]) -> None:
    if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/"):
        raise IntegrityError(f"package file {name!r} points outside the package")
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise IntegrityError(f"package file '{name}' points outside the package")
    if not path.is_file():
        raise IntegrityError(f"package file '{name}' is missing")
    if path.stat().st_size != entry.get("size") or _sha256(path) != entry.get("sha256"):
        raise IntegrityError(
            f"package file '{name}' fails its sha256 check: "
            "the package was changed after it was written"
        )


def _refuse_unlisted(root: Path, manifest: Manifest) -> None:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative != MANIFEST and relative not in manifest.files:
            raise IntegrityError(f"package file '{relative}' is not listed in the manifest")


class LoadedModel:
    """A verified, loaded model that checks its input against the signature."""

    def __init__(self, manifest: Manifest, model: Any, directory: Path) -> None:
        self.manifest = manifest
        self.model = model
        self.directory = directory
        self.signature = Signature.from_dict(manifest.signature) if manifest.signature else None
        self._flavor = get_flavor(manifest.flavor)

    def __repr__(self) -> str:
        return f"<LoadedModel flavor={self.manifest.flavor} from {self.directory}>"

    def prepare(self, data: Any) -> pd.DataFrame:
        """The input as the model will see it: enforced against the signature."""
        if self.signature is None:
            return to_frame(data)
        return enforce(self.signature, data)

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self._flavor.predict(self.model, self.prepare(data)))

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self._flavor.predict_proba(self.model, self.prepare(data)))

    def input_example(self) -> pd.DataFrame | None:
        path = self.directory / INPUT_EXAMPLE
        if not path.is_file():
            return None
        import io

        import pandas as pd

        return pd.read_json(io.StringIO(path.read_text()), orient="split")


def load_package(directory: str | Path, expected_digest: str | None = None) -> LoadedModel:
    """Verify, then load, the package in ``directory``."""
    root = Path(directory)
    manifest = verify_package(root, expected_digest)
    model = get_flavor(manifest.flavor).load(root)
    return LoadedModel(manifest, model, root)
