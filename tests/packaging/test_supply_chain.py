"""Supply chain: a package from an untrusted source runs no code before its hashes (and its
signature, when it carries one) pass; archives and folders cannot smuggle paths or links."""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from modelyard.errors import IntegrityError, InvalidInput
from modelyard.packaging import load_package, package_digest, read_manifest, verify_package
from tests.conftest import embedded_yard


class Payload:
    """Unpickling it writes ``marker``: code a package would run the moment it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.write_text, (self.marker, "code ran"))


def _model() -> LogisticRegression:
    return LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]], [0, 1, 1, 0])


def _poison(package: Path, marker: Path, *, rehash: bool) -> None:
    """Swap the model file for the payload; with ``rehash`` also rewrite the manifest's hash
    (an attacker who can write the whole folder)."""
    (package / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    if rehash:
        manifest = json.loads((package / "manifest.json").read_text())
        import hashlib

        data = (package / "model.pkl").read_bytes()
        manifest["files"]["model.pkl"] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        (package / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Yard]:
    yard = embedded_yard(tmp_path / "yard-a")
    yard.admin.create_signing_key("yard-a-2026")
    yield yard
    yard.close()


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[Yard]:
    yard = embedded_yard(tmp_path / "yard-b")
    yield yard
    yard.close()


def test_the_payload_is_live_once_hashes_match(tmp_path: Path) -> None:
    """The control: a self-consistent poisoned package does run its code, so the refusals
    below are what stops it."""
    yard = embedded_yard(tmp_path / "home")
    try:
        version = yard.models.register(_model(), name="churn")
        package = tmp_path / "copy"
        yard.models.export(version.ref, package)
    finally:
        yard.close()
    marker = tmp_path / "marker"
    _poison(package, marker, rehash=True)
    with pytest.raises(Exception):  # noqa: B017 - the payload is no model
        load_package(package).predict(np.array([[0.0, 1.0]]))
    assert marker.read_text() == "code ran"


def test_a_stored_package_tampered_after_registration_never_runs(tmp_path: Path) -> None:
    yard = embedded_yard(tmp_path / "home")
    marker = tmp_path / "marker"
    try:
        version = yard.models.register(_model(), name="churn")
        stored = yard.backend.fetch_package(version)  # the store's own folder (local store)
        _poison(stored, marker, rehash=False)
        with pytest.raises(IntegrityError, match="'model.pkl' fails its sha256 check"):
            yard.models.load(version.ref)
        _poison(
            stored, marker, rehash=True
        )  # the manifest too: its digest is not the registered one
        for attempt in (yard.models.load, yard.models.verify):
            with pytest.raises(IntegrityError, match="does not match the registered digest"):
                attempt(version.ref)
    finally:
        yard.close()
    assert not marker.exists()


def test_an_import_from_another_yard_checks_the_signature_before_storing(
    exporter: Yard, importer: Yard, tmp_path: Path
) -> None:
    version = exporter.models.register(_model(), name="churn")
    clean, poisoned = tmp_path / "clean", tmp_path / "poisoned"
    exporter.models.export(version.ref, clean)
    exporter.models.export(version.ref, poisoned)
    record_path = tmp_path / "poisoned.modelyard-version.json"
    record = json.loads(record_path.read_text())
    assert record["signature"]["key_name"] == "yard-a-2026"

    marker = tmp_path / "marker"
    _poison(poisoned, marker, rehash=False)
    with pytest.raises(IntegrityError, match="'model.pkl' fails its sha256 check"):
        importer.models.import_(poisoned)
    # the attacker rewrites the hashes and the record's digest: only the signature is left
    _poison(poisoned, marker, rehash=True)
    record["package_digest"] = package_digest(read_manifest(poisoned))
    record_path.write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="fails its signature check under key"):
        importer.models.import_(poisoned)
    # and dropping the signature leaves a package that --require-signed refuses
    del record["signature"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="carries no signature"):
        importer.models.import_(poisoned, require_signed=True)
    assert not marker.exists()
    assert importer.models.list() == []

    imported = importer.models.import_(clean, require_signed=True)
    signer = exporter.admin.signing_keys()[0]
    assert imported.tags["imported_signed_by"] == f"yard-a-2026 ({signer.key_id})"
    assert imported.package_digest == version.package_digest
    assert importer.models.load(imported.ref).predict(np.array([[0.0, 1.0]])).shape == (1,)


def test_symbolic_links_in_an_imported_folder_are_refused(
    importer: Yard, exporter: Yard, tmp_path: Path
) -> None:
    version = exporter.models.register(_model(), name="churn")
    secret = tmp_path / "outside.txt"
    secret.write_text("not for packages")
    for link_name in ("model.pkl", "notes.txt"):  # listed (replaced) and unlisted
        package = tmp_path / f"pkg-{link_name}"
        exporter.models.export(version.ref, package)
        target = package / link_name
        target.unlink(missing_ok=True)
        target.symlink_to(secret)
        with pytest.raises(IntegrityError, match=f"package file '{link_name}' is a symbolic link"):
            importer.models.import_(package, name="churn")
    assert importer.models.list() == []


def test_a_manifest_naming_a_path_outside_the_package_is_refused(tmp_path: Path) -> None:
    yard = embedded_yard(tmp_path / "home")
    try:
        yard.models.export(yard.models.register(_model(), name="churn").ref, tmp_path / "pkg")
    finally:
        yard.close()
    manifest = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "size": 1}
    (tmp_path / "pkg" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"package file '\.\./outside\.txt' points outside"):
        verify_package(tmp_path / "pkg")


def _tar(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            bundle.addfile(info)
    return path


def _package_members(exporter: Yard, tmp_path: Path) -> dict[str, bytes]:
    version = exporter.models.register(_model(), name="churn")
    exporter.models.export(version.ref, tmp_path / "churn")
    members = {f"churn/{p.name}": p.read_bytes() for p in (tmp_path / "churn").iterdir()}
    record = tmp_path / "churn.modelyard-version.json"
    members["churn.modelyard-version.json"] = record.read_bytes()
    return members


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("../evil.txt", "contains '..'"),
        ("churn/../../evil.txt", "contains '..'"),
        ("/tmp/evil.txt", "is an absolute path"),
    ],
)
def test_archive_members_that_leave_the_folder_refuse_the_whole_archive(
    exporter: Yard, importer: Yard, tmp_path: Path, bad: str, problem: str
) -> None:
    members = {**_package_members(exporter, tmp_path), bad: b"x"}
    archive = _tar(tmp_path / "churn.tgz", members)
    with pytest.raises(InvalidInput, match=f"member '{bad}' {problem}: nothing imported"):
        importer.models.import_(archive)
    with zipfile.ZipFile(tmp_path / "churn.zip", "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    with pytest.raises(InvalidInput, match=f"member '{bad}' {problem}"):
        importer.models.import_(tmp_path / "churn.zip")
    assert importer.models.list() == []
    assert not (tmp_path.parent / "evil.txt").exists()


def test_archive_links_are_refused_and_a_clean_archive_imports_signed(
    exporter: Yard, importer: Yard, tmp_path: Path
) -> None:
    members = _package_members(exporter, tmp_path)
    linked = _tar(tmp_path / "linked.tgz", members, link=("churn/extra", "/etc/passwd"))
    with pytest.raises(InvalidInput, match="member 'churn/extra' is a link or special file"):
        importer.models.import_(linked)
    assert importer.models.list() == []
    imported = importer.models.import_(_tar(tmp_path / "clean.tgz", members), require_signed=True)
    assert imported.ref == "churn/1" and imported.tags["imported_signed_by"].startswith("yard-a")
