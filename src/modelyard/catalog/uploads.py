"""Staged package uploads: the files of a package sent before its version is registered.

A client that registers a package without a run stages its files under
``uploads/<upload id>/`` (32 hex digits it chose), then registers
``source="uploads/<upload id>"``. The first file staged claims the id for its user
(recording the workspace the request acted in): only that user may stage more files
under it and register it, so no one else can register a package someone staged, in
their workspace or any other, nor change its files between staging and registering.
The same user may register it in another workspace they may register in: the files
are theirs, and nothing of the first workspace is in them (a client staging in its
home workspace registers into the workspace that owns the model). Once registered, an
upload is sealed: its files are the version's package and take no more writes.

>>> stage(conn, "3f9c...", workspace="fraud", user="ana")
>>> registered(conn, "uploads/3f9c...", user="ana", version_id=12)
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from modelyard.artifacts.keys import safe_key
from modelyard.clock import now_ms
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.store import schema as t

PREFIX = "uploads"


def upload_key(upload_id: str, path: str) -> str:
    """The artifact key of file ``path`` of upload ``upload_id``."""
    return f"{PREFIX}/{check_upload_id(upload_id)}/{safe_key(path)}"


def check_upload_id(upload_id: str) -> str:
    if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
        raise InvalidInput(f"upload id {upload_id!r} must be 32 lowercase hex digits")
    return upload_id


def upload_of(source: str) -> str | None:
    """The upload a package source lies in (``uploads/<id>[/...]``), else None."""
    parts = safe_key(source, what="package source").split("/")
    if parts[0] != PREFIX:
        return None
    return parts[1] if len(parts) > 1 else ""


def stage(conn: Connection, upload_id: str, *, workspace: str, user: str) -> None:
    """Claim ``upload_id`` for ``user`` (staging in ``workspace``), or check that they hold
    it and that it is not registered yet."""
    check_upload_id(upload_id)
    held = _holder(conn, upload_id)
    if held is None:  # a claim made meanwhile fails this transaction; a retry sees it
        conn.execute(
            t.package_uploads.insert().values(
                upload_id=upload_id, workspace=workspace, created_by=user, created_at=now_ms()
            )
        )
        return
    _, author, version_id = held
    if author != user:
        raise Conflict(
            f"upload id '{upload_id}' is taken by another upload; stage the package under a new id"
        )
    if version_id is not None:
        raise Conflict(
            f"upload '{upload_id}' is a registered version's package; its files cannot change"
        )


def registered(conn: Connection, source: str, *, user: str, version_id: int) -> None:
    """Tie the upload ``source`` lies in (if any) to the version registered from it: only
    its own user registers it."""
    check_registrable(conn, source, user=user)
    upload_id = upload_of(source)
    if upload_id:
        conn.execute(
            update(t.package_uploads)
            .where(
                t.package_uploads.c.upload_id == upload_id,
                t.package_uploads.c.version_id.is_(None),
            )
            .values(version_id=version_id)
        )


def check_registrable(conn: Connection, source: str, *, user: str) -> None:
    """Refuse a source in an upload that ``user`` did not stage (404: another user's
    upload is not there for them)."""
    upload_id = upload_of(source)
    if upload_id is None:
        return
    held = _holder(conn, upload_id) if upload_id else None
    if held is None or held[1] != user:
        raise NotFound(f"no package staged as '{source}' by user '{user}'")


def _holder(conn: Connection, upload_id: str) -> tuple[str, str, int | None] | None:
    u = t.package_uploads.c
    row = conn.execute(
        select(u.workspace, u.created_by, u.version_id).where(u.upload_id == upload_id)
    ).first()
    return None if row is None else (row.workspace, row.created_by, row.version_id)
