"""How an alert reads in a mail and on one JSON line."""

from __future__ import annotations

import json

from modelyard.monitoring.alertmail import (
    alert_id_of,
    alert_subject,
    alert_text,
    event_json,
    evidence_lines,
)

EVENT = {
    "monitor": "churn-monitor",
    "alert": "a1b2",
    "event": "fired",
    "severity": "warn",
    "summary": "drift in 3 columns",
}


def test_subject_names_severity_monitor_summary_and_event() -> None:
    assert alert_subject(EVENT) == "[modelyard] WARNING churn-monitor: drift in 3 columns (fired)"
    resolved = {**EVENT, "event": "resolved", "severity": "ok", "summary": "back\nto normal"}
    assert alert_subject(resolved) == "[modelyard] OK churn-monitor: back to normal (resolved)"
    long = alert_subject({**EVENT, "summary": "x" * 500})
    assert len(long) == 200 and long.endswith("… (fired)")
    assert alert_subject({}) == "[modelyard] ALERT ?: alert (fired)"


def test_evidence_of_any_shape_reads_as_lines() -> None:
    assert evidence_lines(None) == [] and evidence_lines({}) == []
    assert evidence_lines({"age": {"psi": 0.123456, "bins": [1, 2]}, "rows": 1200}) == [
        "age: psi=0.1235, bins=[1, 2]",
        "rows: 1200",
    ]
    assert evidence_lines([{"column": "age", "psi": 0.3}, "note"]) == [
        "column=age, psi=0.3",
        "note",
    ]
    assert evidence_lines("just text\nhere") == ["just text here"]


def test_body_holds_summary_evidence_links_and_the_json() -> None:
    event = {**EVENT, "evidence": {"age": {"psi": 0.3}}, "time": 0, "links": ["http://x/1"]}
    text = alert_text(event)
    assert text.startswith("WARNING alert on monitor churn-monitor: fired\ndrift in 3 columns\n")
    assert "Evidence:\n  age: psi=0.3\n" in text
    assert "Alert: a1b2\nTime:  1970-01-01 00:00:00 UTC\nLinks:\n  http://x/1\n" in text
    assert json.loads(text.split("The event as JSON:\n", 1)[1]) == event


def test_event_json_is_strict_and_one_line() -> None:
    line = event_json({"a": float("nan"), "b": [float("inf"), -float("inf")], "c": "é\n"})
    assert line == '{"a":null,"b":["inf","-inf"],"c":"é\\n"}'
    assert alert_id_of({"alert_id": "x", "alert": "y"}) == "x" and alert_id_of({}) == ""
