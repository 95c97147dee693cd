"""Package signing as the platform shows it: keys by name and id, signatures of versions.

A ``SigningKey`` carries its public half only: the private half never leaves the
platform's store (encrypted there under ``MODELYARD_SECRET_KEY``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


@dataclass(frozen=True)
class SigningKey:
    """One of the platform's Ed25519 signing keys (the newest one signs)."""

    name: str
    key_id: str
    public_key: str
    created_by: str
    created_at: int


@dataclass(frozen=True)
class VersionSignature:
    """The signature of a version's package digest, and the key that made it."""

    model: str
    version: int
    package_digest: str
    signature: str
    key_id: str
    key_name: str
    public_key: str
    signed_by: str
    signed_at: int


def check_key_name(name: str) -> str:
    """``name`` if it is a valid signing key name, else ``InvalidInput`` naming it."""
    if not isinstance(name, str) or not _NAME.match(name) or not name.strip("."):
        raise InvalidInput(
            f"invalid signing key name {name!r}: use 1 to 128 letters, digits, '-', '_' "
            "or '.' (not only dots)"
        )
    return name


@dataclass(frozen=True)
class PackageVerification:
    """What ``package verify`` proved: the files match the registered digest, and (when
    ``signed``) the platform key ``key_name`` signed that digest."""

    ref: str
    package_digest: str
    files: int
    signed: bool
    key_name: str | None = None
    key_id: str | None = None
    signed_by: str | None = None
    signed_at: int | None = None
