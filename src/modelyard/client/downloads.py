"""Writing a download to a file: complete or not at all, and hash-checked when the yard
knows the content's sha256."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from modelyard.errors import IntegrityError

CHUNK = 1 << 20


def save(
    target: Path, fill: Callable[[BinaryIO], None], *, sha256: str | None = None, what: str = ""
) -> Path:
    """Have ``fill`` write the content to a temporary file beside ``target``, check its
    sha256 when one is given, then move it into place (its mode follows the umask)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with partial.open("xb") as handle:
            fill(handle)
        found = file_sha256(partial) if sha256 is not None else None
        if found != sha256:
            raise IntegrityError(f"{what or target.name} arrived with sha256 {found}, not {sha256}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
