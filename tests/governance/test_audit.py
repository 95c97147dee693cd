from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from modelyard.bootstrap import Services
from modelyard.errors import IntegrityError
from modelyard.store import schema as t
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path) as built:
        for index in range(5):
            built.audit.record(
                actor="ana" if index % 2 else "bo",
                action=f"POST /api/v1/models/{index}",
                resource=f"/api/v1/models/m{index}",
                outcome="ok",
                status=201,
                summary={"index": index},
            )
        yield built


def test_chain_verifies_and_events_are_searchable(services: Services) -> None:
    assert services.audit.verify() == 5
    assert [e.summary["index"] for e in services.audit.events(actor="ana")] == [1, 3]
    assert len(services.audit.events(action="POST /api/v1/models/")) == 5
    assert len(services.audit.events(resource="/api/v1/models/m4")) == 1
    first, second = services.audit.events(limit=2)
    assert second.prev_hash == first.hash


def test_an_edited_event_is_named(services: Services) -> None:
    with services.db.write() as conn:
        conn.execute(update(t.audit_events).where(t.audit_events.c.id == 3).values(actor="mallory"))
    with pytest.raises(IntegrityError, match="audit event 3 was edited"):
        services.audit.verify()


def test_a_deleted_event_is_found(services: Services) -> None:
    with services.db.write() as conn:
        conn.execute(delete(t.audit_events).where(t.audit_events.c.id == 2))
    with pytest.raises(IntegrityError, match="audit event 3 does not follow event 1"):
        services.audit.verify()


def test_deleting_the_last_events_is_found(services: Services) -> None:
    with services.db.write() as conn:
        conn.execute(delete(t.audit_events).where(t.audit_events.c.id >= 4))
    with pytest.raises(IntegrityError, match="ends at event 3 with 3 events, but 5 were written"):
        services.audit.verify()


def test_concurrent_writers_keep_one_chain(services: Services) -> None:
    def write(worker: int) -> None:
        for step in range(20):
            services.audit.record(
                actor=f"w{worker}",
                action="POST x",
                resource="x",
                outcome="ok",
                status=200,
                summary={"step": step},
            )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert services.audit.verify() == 5 + 80
