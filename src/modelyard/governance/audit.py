"""The audit log: append-only and hash-chained.

Each event's hash covers its content and the previous event's hash; a head row
keeps the count and the last hash. ``verify`` recomputes the chain and names the
first event that was edited, or where events were deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select, text

from modelyard.clock import now_ms
from modelyard.domain.actors import Actor, current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import AuditEvent
from modelyard.errors import IntegrityError
from modelyard.jsonable import plain
from modelyard.store import schema as t
from modelyard.store.database import Database
from modelyard.store.dialects import insert_for

GENESIS = "0" * 64
_CHAIN_LOCK = 0x617564  # PostgreSQL advisory lock: one writer extends the chain at a time
_HASHED = ("at", "actor", "key_id", "action", "resource", "outcome", "status", "client", "summary")


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    content = json.dumps({k: fields[k] for k in _HASHED}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}{content}".encode()).hexdigest()


class AuditLog:
    """Record events and check that nobody changed them.

    Services never call it: ``bootstrap`` subscribes ``on_changes`` to the database, so
    every ``Changed`` a service publishes is written in that service's own transaction.
    ``record`` serves what only an entry point knows (a refused request, a failed
    write, a sensitive read).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        status: int,
        key_id: str | None = None,
        client: str = "",
        summary: dict[str, Any] | None = None,
    ) -> AuditEvent:
        fields: dict[str, Any] = {
            "at": now_ms(),
            "actor": actor,
            "key_id": key_id,
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "status": status,
            "client": client,
            "summary": summary or {},
        }
        with self.db.write() as conn:
            return self._append(conn, fields)

    def on_changes(self, conn: Connection, events: list[Any]) -> None:
        """Write an event for each ``Changed`` of a write transaction, inside it, as the
        current actor."""
        actor = current_actor()
        for event in events:
            if isinstance(event, Changed):
                written = self._append(conn, _fields_of(event, actor))
                actor.recorded.append(written.id)

    def _append(self, conn: Connection, fields: dict[str, Any]) -> AuditEvent:
        if self.db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHAIN_LOCK})
        count, prev_hash = self._head(conn)
        fields = {**fields, "summary": plain(fields["summary"])}
        digest = event_hash(prev_hash, fields)
        event_id = conn.execute(
            t.audit_events.insert().values(**fields, prev_hash=prev_hash, hash=digest)
        ).inserted_primary_key[0]  # type: ignore[index]
        self._move_head(conn, count + 1, digest)
        return AuditEvent(id=int(event_id), prev_hash=prev_hash, hash=digest, **fields)

    def _head(self, conn: Connection) -> tuple[int, str]:
        row = conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1)).first()
        if row is None:
            return 0, GENESIS
        return int(row._mapping["count"]), str(row._mapping["hash"])

    def _move_head(self, conn: Connection, count: int, digest: str) -> None:
        stmt = insert_for(self.db.dialect, t.audit_head)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={"count": stmt.excluded.count, "hash": stmt.excluded.hash}
        )
        conn.execute(stmt, [{"id": 1, "count": count, "hash": digest}])

    def events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        workspace: str | None = None,
        after: int | None = None,
    ) -> list[AuditEvent]:
        """Events in order, filtered by actor, action (prefix), resource (prefix), time and
        the workspace a request acted in (or tried to); ``after`` an event id pages on."""
        a = t.audit_events.c
        query = select(t.audit_events).order_by(a.id)
        if after is not None:
            query = query.where(a.id > after)
        if workspace:
            query = query.where(a.summary["workspace"].as_string() == workspace)
        if actor:
            query = query.where(a.actor == actor)
        if action:
            query = query.where(a.action.startswith(action, autoescape=True))
        if resource:
            query = query.where(a.resource.startswith(resource, autoescape=True))
        if since is not None:
            query = query.where(a.at >= since)
        if until is not None:
            query = query.where(a.at < until)
        if limit:
            query = query.limit(limit)
        with self.db.read() as conn:
            return [_event(row) for row in conn.execute(query)]

    def _all(self) -> Iterator[AuditEvent]:
        with self.db.read() as conn:
            for row in conn.execute(select(t.audit_events).order_by(t.audit_events.c.id)):
                yield _event(row)

    def verify(self) -> int:
        """Check the whole chain; return the number of events or raise ``IntegrityError``."""
        prev_hash, count, previous_id = GENESIS, 0, 0
        for event in self._all():
            if event.prev_hash != prev_hash:
                raise IntegrityError(
                    f"audit event {event.id} does not follow event {previous_id or 'genesis'}: "
                    "an event before it was deleted or edited"
                )
            if event_hash(prev_hash, event.__dict__) != event.hash:
                raise IntegrityError(f"audit event {event.id} was edited after it was written")
            prev_hash, count, previous_id = event.hash, count + 1, event.id
        with self.db.read() as conn:
            head_count, head_hash = self._head(conn)
        if (head_count, head_hash) != (count, prev_hash):
            raise IntegrityError(
                f"the audit log ends at event {previous_id or 'genesis'} with {count} events, "
                f"but {head_count} were written: events at the end were deleted"
            )
        return count


def _fields_of(event: Changed, actor: Actor) -> dict[str, Any]:
    summary: dict[str, Any] = {"workspace": event.workspace}
    if event.before is not None:
        summary["before"] = event.before
    if event.after is not None:
        summary["after"] = event.after
    return {
        "at": now_ms(),
        "actor": actor.user,
        "key_id": actor.key_id,
        "action": event.action,
        "resource": event.resource,
        "outcome": "ok",
        "status": 200,
        "client": actor.client,
        "summary": summary,
    }


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        actor=row.actor,
        key_id=row.key_id,
        action=row.action,
        resource=row.resource,
        outcome=row.outcome,
        status=row.status,
        client=row.client,
        summary=row.summary,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
