"""Ed25519 signatures over package digests: what a signed version proves.

A signature covers the message ``modelyard-package-v1:<package_digest>``. The
package digest is the sha256 of the canonical manifest, and the manifest holds the
sha256 and size of every file, so a valid signature proves that the files are the
bytes the platform signed (at registration). The message names no model or version,
so a package exported from one yard and imported into another keeps its proof.

Keys travel as hex text: 32 bytes of public key (64 hex digits), 64 bytes of
signature (128 hex digits). A key id is the first 16 hex digits of the sha256 of the
public key. ``cryptography`` is imported only inside the functions that use it::

    >>> private, public = new_key_pair()
    >>> signature = sign_digest(private, digest)
    >>> check_signature(public, signature, digest)   # IntegrityError when it fails
"""

from __future__ import annotations

import binascii
import hashlib

from modelyard.errors import IntegrityError

MESSAGE_PREFIX = b"modelyard-package-v1:"


def key_id_of(public_key: str) -> str:
    """The fingerprint that names a public key (16 hex digits)."""
    return hashlib.sha256(bytes.fromhex(public_key)).hexdigest()[:16]


def new_key_pair() -> tuple[bytes, str]:
    """A new Ed25519 key pair: (the raw 32-byte private key, the public key as hex)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public.hex()


def sign_digest(private_key: bytes, package_digest: str) -> str:
    """The hex signature of ``package_digest`` under the raw private key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.sign(MESSAGE_PREFIX + package_digest.encode()).hex()


def check_signature(public_key: str, signature: str, package_digest: str) -> None:
    """Raise ``IntegrityError`` unless ``signature`` signs ``package_digest`` under the key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(bytes.fromhex(signature), MESSAGE_PREFIX + package_digest.encode())
    except (InvalidSignature, ValueError, binascii.Error):
        raise IntegrityError(
            f"package {package_digest[:12]} fails its signature check under key "
            f"{_safe_key_id(public_key)}: the package is not the one that was signed"
        ) from None


def _safe_key_id(public_key: str) -> str:
    try:
        return key_id_of(public_key)
    except ValueError:
        return "(malformed)"
