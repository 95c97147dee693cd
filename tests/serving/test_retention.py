"""Retention: the serving process prunes on schedule as itself; every prune, erasure and
label post is audited by the service that made it (counts and digests, not the data)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.actors import Actor, acting_as, os_user
from modelyard.serving.journal import record_line
from modelyard.serving.server import runtime_for
from tests.conftest import embedded_yard
from tests.serving.models import cancer, classifier


def old_rows(count: int, ts: int) -> bytes:
    return b"".join(
        record_line(
            id=f"old-{i}",
            endpoint="kept",
            revision=1,
            model="kept",
            version=1,
            role="primary",
            ts=ts,
            latency_ms=1.0,
            input=orjson.dumps({"subject": f"s{i}"}),
            output=b"1",
            scores=None,
        )
        for i in range(count)
    )


def test_the_serving_process_applies_retention_and_the_prune_is_audited(home: Path) -> None:
    yard = embedded_yard(home)
    services = yard.backend.services  # type: ignore[attr-defined]
    yard.models.register(classifier(), name="kept", input_example=cancer()[0].head())
    yard.endpoints.create("kept", routes=["kept/1=100"])
    journal: Any = services.predictions.journal("kept")  # a database journal: a future
    three_days_ago = int(time.time() * 1000) - 3 * 86_400_000
    journal.append(old_rows(5, three_days_ago))
    journal.close()  # sealed into a segment by the next reader
    yard.endpoints.set_retention("kept", 2)

    runtime = runtime_for(services, ["kept"])
    runtime.sync()
    with acting_as(Actor("whoever-started-it", key_id="k1", client="10.0.0.9")):
        runtime._prune()  # what the watcher does every PRUNE_EVERY seconds
        runtime._prune()  # nothing left past the cutoff: a scheduled prune records nothing
    runtime.stop()
    assert services.predictions.query("kept").num_rows == 0
    events = [e for e in services.audit.events() if e.action == "prune predictions"]
    assert [(e.actor, e.key_id, e.client) for e in events] == [("modelyard-serve", None, "serving")]
    assert events[0].resource == "endpoints/kept/predictions"
    assert events[0].summary["workspace"] == "default"
    after = events[0].summary["after"]
    assert after["deleted"] == 5 and after["retention_days"] == 2
    assert after["cutoff"] <= int(time.time() * 1000) - 2 * 86_400_000
    assert "s0" not in str(events[0].summary) and "old-0" not in str(events[0].summary)
    settings = [e for e in services.audit.events() if e.action == "set retention"]
    assert settings[0].summary["before"] == {"retention_days": None}
    assert settings[0].summary["after"] == {"retention_days": 2}

    assert yard.endpoints.prune("kept") == 0  # on request: recorded even when nothing went
    events = [e for e in services.audit.events() if e.action == "prune predictions"]
    assert [(e.actor, e.client) for e in events[1:]] == [(os_user(), "embedded")]
    assert events[1].summary["after"]["deleted"] == 0
    assert services.audit.verify() == len(services.audit.events())
    yard.close()


def test_erasing_a_subject_is_audited_by_digest_never_by_value(home: Path) -> None:
    from modelyard.errors import InvalidInput

    yard = embedded_yard(home)
    services = yard.backend.services  # type: ignore[attr-defined]
    yard.models.register(classifier(), name="kept", input_example=cancer()[0].head())
    yard.endpoints.create("kept", routes=["kept/1=100"])
    journal = services.predictions.journal("kept")
    journal.append(old_rows(4, int(time.time() * 1000) - 1000))  # subjects s0..s3
    journal.close()
    try:
        yard.endpoints.erase("kept", "s1")
        raise AssertionError("erasure without a subject column must be refused")
    except InvalidInput as refused:
        assert "has no subject column" in str(refused)
    yard.endpoints.set_subject_column("kept", "subject")
    assert yard.endpoints.erase("kept", "s1") == 1
    left = services.predictions.query("kept").column("id").to_pylist()
    assert sorted(left) == ["old-0", "old-2", "old-3"]
    (event,) = [e for e in services.audit.events() if e.action == "erase subject"]
    assert (event.actor, event.resource) == (os_user(), "endpoints/kept/predictions")
    assert event.summary["after"]["deleted"] == 1
    assert event.summary["after"]["column"] == "subject"
    assert "s1" not in str(event.summary) and len(event.summary["after"]["subject_sha256"]) == 64
    subject = [e for e in services.audit.events() if e.action == "set subject column"]
    assert [(e.summary["before"], e.summary["after"]) for e in subject] == [
        ({"subject_column": None}, {"subject_column": "subject"})
    ]
    yard.close()


def database_log_yard(home: Path) -> Yard:
    """An embedded yard whose prediction log is in its metadata database."""
    settings = Settings(
        home,
        f"sqlite:///{home / 'modelyard.db'}",
        str(home / "artifacts"),
        prediction_root="database",
    )
    return Yard(LocalBackend(bootstrap(settings)))


def test_database_log_writes_commit_with_their_audit_event_or_not_at_all(home: Path) -> None:
    yard = database_log_yard(home)
    services: Services = yard.backend.services  # type: ignore[attr-defined]
    assert services.settings.prediction_log_in_database
    yard.models.register(classifier(), name="kept", input_example=cancer()[0].head())
    yard.endpoints.create("kept", routes=["kept/1=100"])
    journal: Any = services.predictions.journal("kept")  # a database journal: a future
    journal.append(old_rows(3, int(time.time() * 1000))).result(timeout=30)  # committed
    journal.close()

    def refuse(conn: Connection, events: list[Any]) -> None:
        raise RuntimeError("the audit log is full")

    services.db.on_commit("refuse", refuse)  # runs after the audit log, in the same transaction
    with pytest.raises(RuntimeError, match="audit log is full"):
        yard.endpoints.label("kept", {"old-0": 1})
    assert services.predictions.labels("kept").num_rows == 0  # rolled back with its event
    services.db.on_commit("refuse", lambda conn, events: None)
    assert [e for e in services.audit.events() if e.action == "post labels"] == []

    assert yard.endpoints.label("kept", {"old-0": 1, "nope": 0}).recorded == 1
    (posted,) = [e for e in services.audit.events() if e.action == "post labels"]
    assert posted.resource == "endpoints/kept/labels"
    assert posted.summary["after"] == {"recorded": 1, "unknown": 1}
    assert services.predictions.labels("kept").column("actor").to_pylist() == [os_user()]
    yard.close()
