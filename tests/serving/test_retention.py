"""Retention: the serving process prunes on schedule; every prune is audited, not the data."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from modelyard.serving.journal import record_line
from modelyard.serving.runtime import Runtime
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
    journal = services.predictions.journal("kept")
    three_days_ago = int(time.time() * 1000) - 3 * 86_400_000
    journal.append(old_rows(5, three_days_ago))
    journal.close()  # sealed into a segment by the next reader
    yard.endpoints.set_retention("kept", 2)

    runtime = Runtime(services, ["kept"])
    runtime.sync()
    runtime._prune()  # what the watcher does every PRUNE_EVERY seconds
    runtime.stop()
    assert services.predictions.query("kept").num_rows == 0
    events = [e for e in services.audit.events() if e.action == "prune predictions"]
    assert len(events) == 1 and events[0].actor == "modelyard serve"
    assert events[0].summary["deleted"] == 5 and events[0].summary["retention_days"] == 2
    assert "s0" not in str(events[0].summary) and "old-0" not in str(events[0].summary)
    settings = [e for e in services.audit.events() if e.action == "set retention"]
    assert settings[0].summary["after"] == {"retention_days": 2}
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
    event = next(e for e in services.audit.events() if e.action == "erase subject")
    assert event.summary["deleted"] == 1 and event.summary["column"] == "subject"
    assert "s1" not in str(event.summary) and len(event.summary["subject_sha256"]) == 64
    yard.close()
