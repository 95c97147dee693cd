"""Encrypted secrets: the webhook tokens and SMTP passwords that alert channels use.

Values are encrypted with Fernet (AES-128-CBC with an HMAC-SHA256 tag) under one
key: ``MODELYARD_SECRET_KEY``, or in embedded mode a key file ``HOME/secret.key``
created with mode 0600 on first use. A server keeps no key file: it must be given
the variable. Each row stores the id of the key that encrypted it (a fingerprint,
not the key), so a value written under another key is named as such.

A value goes in through ``set`` and comes out only through ``reveal``, which alert
channels call. Listings, errors and audit events carry names, never values; who set
a secret is the current actor (``domain.actors``)::

    >>> secrets = SecretService(db, SecretBox(os.environ.get("MODELYARD_SECRET_KEY")))
    >>> secrets.set("pager-token", token)
    >>> [s.name for s in secrets.names()]
    ['pager-token']
    >>> secrets.reveal("pager-token") == token
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, select

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.secrets import SecretRecord, check_secret_name
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotConfigured, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_VARIABLE = "MODELYARD_SECRET_KEY"
MAX_VALUE_CHARS = 65_536
_MAKE_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def key_id_of(key: bytes) -> str:
    """A short fingerprint of a Fernet key: names the key without revealing it."""
    return hashlib.sha256(base64.urlsafe_b64decode(key)).hexdigest()[:16]


class SecretBox:
    """Encrypt and decrypt with one Fernet key, loaded on first use.

    ``key`` is the text of ``MODELYARD_SECRET_KEY``; without it, ``key_file`` is
    read, or created (mode 0600) when missing. With neither, every use raises
    ``NotConfigured`` naming the variable.
    """

    def __init__(self, key: str | None, *, key_file: Path | None = None) -> None:
        self._key = key
        self.key_file = key_file
        self._fernet: Fernet | None = None
        self._key_id = ""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        source = KEY_VARIABLE if self._key else str(self.key_file or "no key")
        return f"<SecretBox key from {source}>"

    @property
    def key_id(self) -> str:
        self._open()
        return self._key_id

    def encrypt(self, value: str) -> str:
        return self._open().encrypt(value.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The value, or ``cryptography.fernet.InvalidToken`` when the tag does not match."""
        return self._open().decrypt(ciphertext.encode("ascii")).decode()

    def _open(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                key, problem = self._load()
                self._fernet = _fernet(key, problem)
                self._key_id = key_id_of(key)
            return self._fernet

    def _load(self) -> tuple[bytes, str]:
        if self._key:
            return self._key.strip().encode(), f"{KEY_VARIABLE} is not a Fernet key"
        if self.key_file is None:
            raise NotConfigured(
                f"secrets need {KEY_VARIABLE}: set it to a Fernet key (make one with "
                f"{_MAKE_KEY}); a server keeps no key file"
            )
        return _read_or_create(self.key_file), f"the key file {self.key_file} holds no Fernet key"


def _fernet(key: bytes, problem: str) -> Fernet:
    from cryptography.fernet import Fernet  # on first use: serving processes never load it

    try:
        return Fernet(key)
    except (ValueError, binascii.Error):
        raise NotConfigured(
            f"{problem} (32 url-safe base64-encoded bytes); make one with {_MAKE_KEY}"
        ) from None


def _read_or_create(path: Path) -> bytes:
    """The key in ``path``; a new key written there first (0600, atomically) if missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            from cryptography.fernet import Fernet

            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)  # refuses to replace a key another process wrote first
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return path.read_bytes().strip()


class SecretService:
    """Store, list, delete and (for alert channels) reveal named secrets.

    Every ``set`` and ``delete`` publishes a ``Changed`` on ``secrets/<name>`` in the
    secret's workspace, saying whether it was set before and after
    (``{"set": false}`` -> ``{"set": true}``), never its value.
    """

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def set(self, name: str, value: str, *, workspace: str = DEFAULT_WORKSPACE) -> SecretRecord:
        """Create or replace secret ``name`` of ``workspace``, as the current actor.
        A name another workspace holds is refused."""
        check_secret_name(name)
        _check_value(name, value)
        ciphertext, key_id = self.box.encrypt(value), self.box.key_id
        now, actor = now_ms(), current_actor().user
        with self.db.write() as conn:
            existed = conn.execute(
                select(t.secrets.c.workspace).where(t.secrets.c.name == name)
            ).first()
            if existed is not None and existed.workspace != workspace:
                raise Conflict(f"secret '{name}' belongs to workspace '{existed.workspace}'")
            stmt = insert_for(self.db.dialect, t.secrets).values(
                name=name,
                workspace=workspace,
                ciphertext=ciphertext,
                key_id=key_id,
                created_by=actor,
                created_at=now,
                updated_by=actor,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        "ciphertext": ciphertext,
                        "key_id": key_id,
                        "updated_by": actor,
                        "updated_at": now,
                    },
                )
            )
            publish(conn, _change("set secret", name, workspace, existed is not None, True))
        return self.get(name)

    def get(self, name: str) -> SecretRecord:
        """The record of secret ``name`` (without its value)."""
        with self.db.read() as conn:
            row = conn.execute(_records().where(t.secrets.c.name == name)).first()
        if row is None:
            raise NotFound(f"secret '{name}' does not exist")
        return SecretRecord(**row._mapping)

    def names(self, workspace: str | None = None) -> list[SecretRecord]:
        """Every secret's record (of ``workspace``), by name; values are never listed."""
        query = _records().order_by(t.secrets.c.name)
        if workspace is not None:
            query = query.where(t.secrets.c.workspace == workspace)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [SecretRecord(**row._mapping) for row in rows]

    def owner(self, name: str) -> str | None:
        """The workspace that holds secret ``name`` (None: no such secret)."""
        with self.db.read() as conn:
            found = conn.execute(
                select(t.secrets.c.workspace).where(t.secrets.c.name == name)
            ).scalar()
        return None if found is None else str(found)

    def delete(self, name: str) -> None:
        """Remove secret ``name`` (possible without the key, e.g. after losing it)."""
        s = t.secrets.c
        with self.db.write() as conn:
            workspace = conn.execute(select(s.workspace).where(s.name == name)).scalar()
            if workspace is None:
                raise NotFound(f"secret '{name}' does not exist")
            conn.execute(delete(t.secrets).where(s.name == name))
            publish(conn, _change("delete secret", name, str(workspace), True, False))

    def scoped(self, workspace: str) -> WorkspaceSecrets:
        """What a channel of ``workspace``'s monitors may reveal: that workspace's secrets."""
        return WorkspaceSecrets(self, workspace)

    def reveal(self, name: str, workspace: str | None = None) -> str:
        """The value of secret ``name``: for alert channels only, never for display.

        With ``workspace``, a secret another workspace holds is not found, so one
        team's monitor can never send another team's token anywhere.
        """
        key_id = self.box.key_id  # without a key, refuse before looking
        s = t.secrets.c
        with self.db.read() as conn:
            row = conn.execute(
                select(s.ciphertext, s.key_id, s.workspace).where(s.name == name)
            ).first()
        if row is None or (workspace is not None and row.workspace != workspace):
            raise NotFound(f"secret '{name}' does not exist")
        if row.key_id != key_id:
            raise NotConfigured(
                f"secret '{name}' was encrypted with another key (key id {row.key_id}); "
                f"set {KEY_VARIABLE} to that key"
            )
        from cryptography.fernet import InvalidToken

        try:
            return self.box.decrypt(row.ciphertext)
        except InvalidToken:
            raise IntegrityError(
                f"secret '{name}' does not decrypt with key {row.key_id}: "
                "its stored ciphertext was altered"
            ) from None


def _change(action: str, name: str, workspace: str, before: bool, after: bool) -> Changed:
    """A secret set or deleted: whether it was set before and after, never its value."""
    return Changed(action, f"secrets/{name}", workspace, {"set": before}, {"set": after})


class WorkspaceSecrets:
    """The secrets one workspace's alert channels may reveal (``SecretService.scoped``)."""

    def __init__(self, service: SecretService, workspace: str) -> None:
        self.service = service
        self.workspace = workspace

    def reveal(self, name: str) -> str:
        return self.service.reveal(name, self.workspace)


def _records() -> Select[Any]:
    columns = t.secrets.c
    return select(
        columns.name,
        columns.workspace,
        columns.created_by,
        columns.created_at,
        columns.updated_by,
        columns.updated_at,
    )


def _check_value(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"the value of secret '{name}' must be text")
    if not value:
        raise InvalidInput(f"the value of secret '{name}' is empty")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"the value of secret '{name}' is not valid Unicode text") from None
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(
            f"the value of secret '{name}' is longer than {MAX_VALUE_CHARS} characters"
        )
