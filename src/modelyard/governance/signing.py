"""The platform's package signing keys, and the signatures of registered versions.

``modelyard admin signing-key create NAME`` makes an Ed25519 key pair: the public
half is stored as hex, the private half encrypted by the ``SecretBox`` (the key of
``MODELYARD_SECRET_KEY``) and never returned, listed, logged or audited. While a key
exists, the newest one signs every version at registration, inside the registering
transaction (``Catalog(signer=signing.sign_version)``): the signature covers the
package digest the catalog just computed from the hash-checked files (see
``packaging.signing``). So a version promoted to production, approved or not, can be
proved to be the bytes that were registered (``modelyard package verify``).

With ``require_signed`` (``MODELYARD_REQUIRE_SIGNED_PACKAGES=1``) the gate refuses an
unsigned version before production and before it takes traffic on an endpoint::

    >>> signing = SigningService(db, box, require_signed=True)
    >>> signing.create_key("platform-2026")
    >>> catalog = Catalog(db, artifacts, signer=signing.sign_version)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, select

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.domain.signing import SigningKey, VersionSignature, check_key_name
from modelyard.errors import Conflict, IntegrityError, NotConfigured, NotFound, PermissionDenied
from modelyard.governance.secrets import KEY_VARIABLE, SecretBox
from modelyard.packaging.signing import check_signature, key_id_of, new_key_pair, sign_digest
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

REQUIRE_VARIABLE = "MODELYARD_REQUIRE_SIGNED_PACKAGES"


class SigningService:
    """Create and list signing keys; sign versions; read their signatures; gate unsigned ones."""

    def __init__(self, db: Database, box: SecretBox, *, require_signed: bool = False) -> None:
        self.db = db
        self.box = box
        self.require_signed = require_signed

    def create_key(self, name: str) -> SigningKey:
        """Make a new key pair named ``name``; from now on it signs new versions."""
        check_key_name(name)
        private, public = new_key_pair()
        ciphertext, secret_key_id = self.box.encrypt(private.hex()), self.box.key_id
        key_id, actor, now = key_id_of(public), current_actor().user, now_ms()
        with self.db.write() as conn:
            taken = conn.execute(
                select(t.signing_keys.c.key_id).where(t.signing_keys.c.name == name)
            ).first()
            if taken is not None:
                raise Conflict(f"signing key '{name}' exists already")
            conn.execute(
                t.signing_keys.insert().values(
                    key_id=key_id,
                    name=name,
                    public_key=public,
                    private_ciphertext=ciphertext,
                    secret_key_id=secret_key_id,
                    created_by=actor,
                    created_at=now,
                )
            )
            after = {"key_id": key_id, "public_key": public}
            publish(
                conn,
                Changed(
                    "create signing key", f"signing-keys/{name}", DEFAULT_WORKSPACE, None, after
                ),
            )
        return SigningKey(name, key_id, public, actor, now)

    def keys(self) -> list[SigningKey]:
        """Every signing key, oldest first (public halves only)."""
        with self.db.read() as conn:
            rows = conn.execute(_keys().order_by(t.signing_keys.c.created_at)).all()
        return [SigningKey(**row._mapping) for row in rows]

    def sign_version(
        self, conn: Connection, version_id: int, digest: str, resource: str, workspace: str
    ) -> None:
        """Sign a version being registered on ``conn`` with the newest key (none: unsigned)."""
        k = t.signing_keys.c
        newest = conn.execute(
            select(k.key_id, k.private_ciphertext, k.secret_key_id)
            .order_by(k.created_at.desc(), k.key_id)
            .limit(1)
        ).first()
        if newest is None:
            return
        signature = sign_digest(self._private_key(newest), digest)
        conn.execute(
            t.version_signatures.insert().values(
                version_id=version_id,
                key_id=newest.key_id,
                package_digest=digest,
                signature=signature,
                signed_by=current_actor().user,
                signed_at=now_ms(),
            )
        )
        after = {"key_id": newest.key_id, "digest": digest}
        publish(conn, Changed("sign version", resource, workspace, None, after))

    def _private_key(self, row: Any) -> bytes:
        if row.secret_key_id != self.box.key_id:
            raise NotConfigured(
                f"signing key {row.key_id} was encrypted with another secret key "
                f"(key id {row.secret_key_id}); set {KEY_VARIABLE} to that key"
            )
        from cryptography.fernet import InvalidToken

        try:
            return bytes.fromhex(self.box.decrypt(row.private_ciphertext))
        except (InvalidToken, ValueError):
            raise IntegrityError(
                f"signing key {row.key_id} does not decrypt: its stored ciphertext was altered"
            ) from None

    def signature_of(self, model: str, version: int) -> VersionSignature:
        """The signature of ``model``/``version`` (``NotFound`` when it was not signed)."""
        with self.db.read() as conn:
            row = conn.execute(_signatures().where(_is(model, version))).first()
        if row is None:
            raise NotFound(f"{model}/{version} is not signed")
        return VersionSignature(**row._mapping)

    def check_loadable(self, version: ModelVersion) -> None:
        """Before a serving process loads ``version``: a signature it has must sign its
        registered digest (``IntegrityError``); with ``require_signed`` it must have one."""
        try:
            signature = self.signature_of(version.model, version.version)
        except NotFound:
            if self.require_signed:
                raise PermissionDenied(
                    f"{version.ref} is not signed and this platform requires signed "
                    f"packages before loading ({REQUIRE_VARIABLE})"
                ) from None
            return
        if signature.package_digest != version.package_digest:
            raise IntegrityError(
                f"the signature of {version.ref} covers package "
                f"{signature.package_digest[:12]}, not its registered package "
                f"{version.package_digest[:12]}"
            )
        check_signature(signature.public_key, signature.signature, version.package_digest)

    def check(self, conn: Connection, ref: ModelRef, purpose: str) -> None:
        """The gate: with ``require_signed``, refuse (``PermissionDenied``) an unsigned version."""
        if not self.require_signed or ref.version is None:
            return
        signed = conn.execute(_signatures().where(_is(ref.name, ref.version))).first()
        if signed is None:
            raise PermissionDenied(
                f"{ref.name}/{ref.version} is not signed and this platform requires signed "
                f"packages before {purpose} ({REQUIRE_VARIABLE}); register it again after "
                "an admin creates a key with `modelyard admin signing-key create NAME`"
            )


def _keys() -> Select[Any]:
    k = t.signing_keys.c
    return select(k.name, k.key_id, k.public_key, k.created_by, k.created_at)


def _signatures() -> Select[Any]:
    s, k, v, m = (
        t.version_signatures.c,
        t.signing_keys.c,
        t.model_versions.c,
        t.models.c,
    )
    return (
        select(
            m.name.label("model"),
            v.version,
            s.package_digest,
            s.signature,
            s.key_id,
            k.name.label("key_name"),
            k.public_key,
            s.signed_by,
            s.signed_at,
        )
        .select_from(t.version_signatures)
        .join(t.signing_keys, k.key_id == s.key_id)
        .join(t.model_versions, v.id == s.version_id)
        .join(t.models, m.id == v.model_id)
    )


def _is(model: str, version: int) -> Any:
    return (t.models.c.name == model) & (t.model_versions.c.version == version)
