"""The entry point of an image built from ``modelyard package build``.

``start`` verifies the package the image carries against the digest it was built
with (a changed file and the container refuses to start, naming it), sets up the
yard inside the container on first start (the version registered from the package,
an endpoint routing all traffic to it, an endpoint key written to
``$MODELYARD_HOME/endpoint-key`` with mode 0600), then replaces itself with
``modelyard serve ENDPOINT``: the data plane, logging predictions to the yard's
prediction log for a monitor to read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from modelyard.client.yard import Yard, connect
from modelyard.domain.models import ModelVersion
from modelyard.errors import ModelyardError, NotFound
from modelyard.packaging import package_digest, read_manifest, verify_package

KEY_FILE = "endpoint-key"
CALLER = "endpoint-caller"


def start(package: Path, *, digest: str, model: str, version: int, endpoint: str) -> None:
    """Verify, set up on first start, then serve ``endpoint`` (never returns)."""
    home = Path(os.environ.get("MODELYARD_HOME", "/var/lib/modelyard"))
    try:
        verify_package(package, expected_digest=digest)
        with connect(home=home) as yard:
            prepare(yard, package, home, model=model, version=version, endpoint=endpoint)
    except ModelyardError as error:
        print(f"{model}/{version} refuses to start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    host = os.environ.get("MODELYARD_HOST", "0.0.0.0")
    port = os.environ.get("MODELYARD_PORT", "8701")
    command = [sys.executable, "-m", "modelyard.cli.main", "serve", endpoint]
    os.execv(sys.executable, [*command, "--host", host, "--port", port])


def prepare(
    yard: Yard, package: Path, home: Path, *, model: str, version: int, endpoint: str
) -> None:
    """On first start: register the package, route ``endpoint`` to it, write a key.

    Each step reuses what an interrupted earlier start left (the version with this
    package, the caller), so a restart never registers the package twice."""
    try:
        yard.endpoints.get(endpoint)
        return
    except NotFound:
        pass
    registered = _registered(yard, package, model, version)
    yard.endpoints.create(endpoint, routes=[f"{registered.ref}=100"])
    if CALLER not in {user.name for user in yard.admin.users()}:
        yard.admin.create_user(CALLER, "contributor")
    _, key = yard.admin.create_key(CALLER, name="container", endpoint=endpoint)
    path = home / KEY_FILE
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    print(f"{endpoint}: endpoint key written to {path}", flush=True)


def _registered(yard: Yard, package: Path, model: str, version: int) -> ModelVersion:
    digest = package_digest(read_manifest(package))
    try:
        found = yard.models.versions(model)
    except NotFound:
        found = []
    same = [v for v in found if v.package_digest == digest]
    if same:
        return same[0]
    registered = yard.models.import_(
        package, name=model, description=f"built from {model}/{version}"
    )
    return yard.models.set_version_tags(registered.ref, {"built_from": f"{model}/{version}"})
