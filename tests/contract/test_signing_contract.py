"""Package signing through the SDK, embedded and through a server of its own (the shared
server keeps no secret key): keys, signatures at registration, ``verify`` naming the signer
and failing on tampering, the CLI, and the routes' answers to paths that leave a package."""

from __future__ import annotations

import http.client
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard, connect
from modelyard.errors import IntegrityError, PermissionDenied
from modelyard.jsonable import plain
from tests.cli.test_cli import invoke
from tests.conftest import ServerProcess, embedded_yard, prepare_store


@pytest.fixture(scope="module")
def signing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a secret key, so it can hold signing keys; its own, because a signing
    key signs every later version of the platform."""
    home = tmp_path_factory.mktemp("signing-server")
    env = {"MODELYARD_SECRET_KEY": Fernet.generate_key().decode()}
    admin_key = prepare_store(home, env)
    running = ServerProcess(home, env).start()
    running.admin_key = admin_key
    yield running
    running.stop()


@pytest.fixture(params=["embedded", pytest.param("remote", marks=pytest.mark.slow)])
def signed_yard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Yard, Path]]:
    """A yard with a signing key, and the artifact root its packages are stored under."""
    if request.param == "embedded":
        yard, root = embedded_yard(tmp_path / "home"), tmp_path / "home" / "artifacts"
    else:
        server: ServerProcess = request.getfixturevalue("signing_server")
        yard = connect(server.url, api_key=server.admin_key, home=tmp_path / "client")
        root = server.home / "artifacts"
    if not yard.admin.signing_keys():
        yard.admin.create_signing_key("platform-2026")
    yield yard, root
    yard.close()


def _model() -> LogisticRegression:
    return LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.4, 0.3]], [0, 1, 1])


def test_verify_names_the_signer_and_fails_on_tampering(
    signed_yard: tuple[Yard, Path], unique: str
) -> None:
    yard, root = signed_yard
    key = yard.admin.signing_keys()[0]
    assert key.name == "platform-2026" and len(key.public_key) == 64
    assert "private" not in repr(key)
    version = yard.models.register(_model(), name=unique)
    check = yard.models.verify(f"{unique}/{version.version}")
    assert (check.signed, check.key_name, check.key_id) == (True, "platform-2026", key.key_id)
    assert check.package_digest == version.package_digest and check.files >= 1
    signature = yard.backend.version_signature(version.ref)
    assert signature.package_digest == version.package_digest

    tampered = yard.models.register(_model(), name=unique)  # not fetched yet: no cached copy
    model_file = root / tampered.source / "model.pkl"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="package file 'model.pkl' fails its sha256 check"):
        yard.models.verify(tampered.ref)
    with pytest.raises(IntegrityError, match="'model.pkl' fails its sha256 check"):
        yard.models.load(tampered.ref)


def test_an_export_carries_the_signature_and_the_import_checks_it(
    signed_yard: tuple[Yard, Path], unique: str, tmp_path: Path
) -> None:
    yard, _ = signed_yard
    version = yard.models.register(_model(), name=unique)
    yard.models.export(version.ref, tmp_path / "out")
    imported = yard.models.import_(tmp_path / "out", name=f"{unique}-copy", require_signed=True)
    assert imported.tags["imported_signed_by"].startswith("platform-2026 (")
    assert yard.models.verify(imported.ref).signed  # signed again by this platform


def test_the_cli_verifies_and_exits_2_on_a_tampered_package(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _ = invoke(home, "admin", "signing-key", "create", "platform-2026")
    assert code == 0 and "signing key 'platform-2026' created: key id" in out
    code, out, _ = invoke(home, "admin", "signing-key", "list")
    assert code == 0 and "platform-2026" in out
    yard = embedded_yard(home)
    try:
        version = yard.models.register(_model(), name="churn")
    finally:
        yard.close()
    code, out, _ = invoke(home, "package", "verify", "churn/1")
    assert code == 0, out
    assert "churn/1:" in out and "signed by key 'platform-2026'" in out
    (home / "artifacts" / version.source / "model.pkl").write_bytes(b"not the model")
    code, out, err = invoke(home, "package", "verify", "churn/1")
    assert code == 2
    assert "package file 'model.pkl' fails its sha256 check" in err and "Traceback" not in err


def _raw(
    server: ServerProcess, method: str, path: str, body: bytes | None = None
) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.mark.slow
def test_the_routes_name_the_path_they_refuse(
    signing_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    yard = connect(signing_server.url, api_key=signing_server.admin_key, home=tmp_path / "c")
    try:
        version = yard.models.register(_model(), name=unique)
    finally:
        yard.close()
    base = f"/api/v1/models/{unique}/versions/{version.version}"
    status, text = _raw(signing_server, "GET", f"{base}/package/../../secret.key")
    assert status == 422 and "may not contain '..'" in text, text
    status, text = _raw(signing_server, "PUT", f"/api/v1/uploads/{'c' * 32}/../../evil.txt", b"x")
    assert status == 422 and "'../../evil.txt'" in text, text
    assert not list(signing_server.home.rglob("evil.txt"))
    headers = {"Authorization": f"Bearer {signing_server.admin_key}"}
    with httpx.Client(base_url=signing_server.url, headers=headers, timeout=30) as api:
        answer = api.get(f"{base}/signature")
        assert answer.status_code == 200 and answer.json()["key_name"] == "platform-2026"
        assert "private" not in answer.text
        missing = api.get(f"/api/v1/models/{unique}/versions/99/signature")
        assert missing.status_code == 404


@pytest.mark.slow
def test_only_platform_admins_manage_signing_keys(
    signing_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    platform = connect(signing_server.url, api_key=signing_server.admin_key, home=tmp_path / "p")
    try:
        team_admin = f"{unique}-ana"
        platform.admin.create_user(team_admin, "viewer")
        platform.admin.create_workspace(unique, admin=team_admin)
        _, token = platform.admin.create_key(team_admin)
        before = platform.admin.signing_keys()
    finally:
        platform.close()
    team = connect(signing_server.url, api_key=token, home=tmp_path / "t", workspace=unique)
    try:
        with pytest.raises(PermissionDenied):
            team.admin.create_signing_key(f"{unique}-key")
        with pytest.raises(PermissionDenied):
            team.admin.signing_keys()
    finally:
        team.close()
    platform = connect(signing_server.url, api_key=signing_server.admin_key, home=tmp_path / "p")
    try:
        assert platform.admin.signing_keys() == before
    finally:
        platform.close()


def test_the_cli_refuses_an_archive_member_that_leaves_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("churn/manifest.json", "{}")
        bundle.writestr("../../escape.txt", "x")
    code, _, err = invoke(tmp_path / "home", "package", "import", str(archive))
    assert code == 2
    assert "member '../../escape.txt' contains '..': nothing imported" in err
    assert "Traceback" not in err and not list(tmp_path.rglob("escape.txt"))


@pytest.mark.slow
def test_the_private_key_is_in_no_answer_log_or_audit_event(
    signing_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    yard = connect(signing_server.url, api_key=signing_server.admin_key, home=tmp_path / "c")
    try:
        if not yard.admin.signing_keys():
            yard.admin.create_signing_key("platform-2026")
        version = yard.models.register(_model(), name=unique)
        answers = json.dumps(plain([yard.admin.signing_keys(), yard.models.verify(version.ref)]))
        audit = json.dumps(plain(yard.audit.events()))
    finally:
        yard.close()
    box = Fernet(signing_server.env["MODELYARD_SECRET_KEY"].encode())
    with sqlite3.connect(signing_server.home / "modelyard.db") as db:
        rows = db.execute("SELECT private_ciphertext FROM signing_keys").fetchall()
    assert rows
    for (ciphertext,) in rows:
        private_hex = box.decrypt(ciphertext.encode()).decode()
        assert len(private_hex) == 64
        for text in (answers, audit, signing_server.output()):
            assert private_hex not in text and ciphertext not in text
    assert '"sign version"' in audit
