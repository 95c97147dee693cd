"""Container images: a build context that serves one version with the modelyard data plane.

``write_build_context`` (``modelyard package build REF DIR``) writes what
``docker build`` or ``podman build`` needs, and nothing that needs either here::

    DIR/Dockerfile            python:<the package's Python>-slim, a non-root user, a health check
    DIR/requirements.txt      modelyard and the package's pinned requirements
    DIR/wheels/               optional wheels (e.g. modelyard's own) pip finds before an index
    DIR/package/              the verified package
    DIR/entrypoint.py         verifies the package, sets up the yard inside the container on
                              first start, then runs ``modelyard serve`` for that endpoint
    DIR/modelyard-build.json  model, version, package digest, endpoint

The running image answers ``/healthz``, ``/readyz`` and
``POST /endpoints/<endpoint>/predict`` on port 8701; its endpoint key is written once
to ``$MODELYARD_HOME/endpoint-key`` (mode 0600) on first start.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelyard.errors import InvalidInput
from modelyard.packaging.function import PACKAGE_FOLDER, copy_package, requirements_of
from modelyard.packaging.package import verify_package

BUILD_RECORD = "modelyard-build.json"
PORT = 8701
USER_ID = 10001
HOME = "/var/lib/modelyard"

DOCKERFILE = """\
# {model}/{version} served by the modelyard data plane (written by modelyard)
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MODELYARD_HOME={home} \\
    MODELYARD_PORT={port}

RUN groupadd --system --gid {uid} modelyard \\
    && useradd --system --uid {uid} --gid modelyard --home-dir {home} --create-home modelyard

WORKDIR /app
COPY requirements.txt /app/requirements.txt
COPY wheels/ /app/wheels/
RUN for wheel in /app/wheels/*.whl; do \\
        [ -e "$wheel" ] && pip install --no-cache-dir --no-deps "$wheel"; \\
    done; \\
    pip install --no-cache-dir -r /app/requirements.txt
COPY package/ /app/package/
COPY entrypoint.py /app/entrypoint.py

USER {uid}:{uid}
EXPOSE {port}
VOLUME ["{home}"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz')"]
ENTRYPOINT ["python", "/app/entrypoint.py"]
"""

ENTRYPOINT = '''"""Serve {model}/{version} with the modelyard data plane (written by modelyard)."""

from pathlib import Path

from modelyard.cli.container import start

start(
    Path(__file__).parent / "{folder}",
    digest="{digest}",
    model="{model}",
    version={version},
    endpoint="{endpoint}",
)
'''

WHEELS_NOTE = (
    "Wheels put here are installed before any index is asked: e.g. modelyard's own\n"
    "wheel (`pip wheel --no-deps modelyard`) when your index does not serve it.\n"
)


def python_tag(python: str) -> str:
    """The base image's Python (major.minor) from a manifest's ``python`` (e.g. 3.11.7)."""
    parts = python.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise InvalidInput(f"the package's Python version '{python}' is not major.minor[.micro]")
    return f"{parts[0]}.{parts[1]}"


def write_build_context(
    package: Path, target: Path, *, model: str, version: int, digest: str, endpoint: str
) -> Path:
    """Write the build context for the verified package at ``package`` into ``target``."""
    manifest = verify_package(package, expected_digest=digest)
    copy_package(package, target / PACKAGE_FOLDER, digest)
    dockerfile = DOCKERFILE.format(
        model=model,
        version=version,
        python=python_tag(manifest.python),
        home=HOME,
        port=PORT,
        uid=USER_ID,
    )
    (target / "Dockerfile").write_text(dockerfile)
    (target / ".dockerignore").write_text("**/__pycache__\n")
    (target / "requirements.txt").write_text(
        "\n".join(requirements_of(manifest.requirements)) + "\n"
    )
    wheels = target / "wheels"
    wheels.mkdir()
    (wheels / "README.txt").write_text(WHEELS_NOTE)
    entrypoint = ENTRYPOINT.format(
        model=model, version=version, digest=digest, endpoint=endpoint, folder=PACKAGE_FOLDER
    )
    (target / "entrypoint.py").write_text(entrypoint)
    record = {"model": model, "version": version, "package_digest": digest, "endpoint": endpoint}
    (target / BUILD_RECORD).write_text(json.dumps(record, indent=2))
    return target
