"""One monitoring suite, run against the embedded and the remote backend."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.serving.journal import Journal, canonical, record_line
from tests.audit_trail import changes, me, trail
from tests.monitoring.traffic import FEATURES, inputs, labels_for


@pytest.fixture
def log_root(request: pytest.FixtureRequest, home: Path) -> Path:
    if request.node.callspec.params["yard"] == "embedded":
        return home / "predictions"
    return Path(request.getfixturevalue("server").home) / "predictions"


def send(
    root: Path,
    endpoint: str,
    model: str,
    fitted: LogisticRegression,
    seed: int,
    shift: dict[str, float] | None,
    start: int,
) -> None:
    frame = inputs(300, seed, shift)
    proba = fitted.predict_proba(frame)
    lines = b"".join(
        record_line(
            id=f"{seed}-{i}",
            endpoint=endpoint,
            revision=1,
            model=model,
            version=1,
            role="primary",
            ts=start + i,
            latency_ms=1.5,
            input=orjson.dumps(row),
            output=canonical(int(p.argmax())).encode(),
            scores=orjson.dumps(p.tolist()),
        )
        for i, (row, p) in enumerate(zip(frame.to_dict(orient="records"), proba, strict=True))
    )
    journal = Journal(root / endpoint)
    journal.append(lines)
    journal.close()


def test_monitor_lifecycle_through_the_sdk(
    yard: Yard, unique: str, log_root: Path, request: pytest.FixtureRequest
) -> None:
    train = inputs(2000, 1)
    fitted = LogisticRegression().fit(train, labels_for(train, 1))
    with yard.start_run(unique, name="train") as run:
        run.log_dataset(
            train.assign(target=labels_for(train, 1)), name=f"{unique}-train", role="training"
        )
        run.log_model(fitted, name=unique, input_example=train.head(3))
    reference = yard.monitors.reference(f"{unique}/1")
    assert set(reference.inputs.columns) == set(FEATURES)
    assert reference.task == "classification" and reference.classes == ["0", "1"]
    assert reference.performance["accuracy"] is not None and reference.calibration

    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    default = yard.monitors.get(unique)
    assert default["spec"]["endpoint"] == unique and default["enabled"]
    updated = yard.monitors.update(unique, {"window": "300 rows", "alerts": {"cooldown": "1s"}})
    assert updated["spec"]["window"] == {"kind": "rows", "size": 300}
    with pytest.raises(InvalidInput, match="window"):
        yard.monitors.update(unique, {"window": "whenever"})
    with pytest.raises(NotFound):
        yard.monitors.get(f"{unique}-none")

    send(log_root, unique, unique, fitted, 5, None, 1_790_000_000_000)
    send(log_root, unique, unique, fitted, 6, {"income": 1.5}, 1_790_000_100_000)
    report = yard.monitors.run(unique)
    assert [w["drifted"] for w in report["computed"]] == [[], ["income"]]
    assert [a["check"] for a in report["alerts"] if a["event"] == "fired"][:1] == ["drift"]
    assert len(report["requests"]) == 1

    series = yard.monitors.results(unique, check="drift", column="income")
    assert list(series["severity"]) == ["ok", "critical"]
    assert list(series["window_start"]) == [0, 300]
    alerts = yard.monitors.alerts(unique, status="firing")
    assert any(a["check"] == "drift" and "income" in a["summary"] for a in alerts)
    drift = next(a for a in alerts if a["check"] == "drift")
    assert (drift["acknowledged_at"], drift["acknowledged_by"]) == (None, None)
    acked = yard.monitors.acknowledge(drift["id"], comment="on the new feed")
    assert (acked["id"], acked["status"], acked["acknowledged_by"]) == (
        drift["id"],
        "firing",  # it still fires: the check decides when it resolves
        me(request),
    )
    assert acked["acknowledge_comment"] == "on the new feed" and acked["acknowledged_at"]
    with pytest.raises(Conflict, match=f"already acknowledged by '{me(request)}'"):
        yard.monitors.acknowledge(drift["id"])
    still = [a for a in yard.monitors.alerts(unique, status="firing") if a["check"] == "drift"]
    assert [(a["id"], a["acknowledged_by"]) for a in still] == [(drift["id"], me(request))]
    (ack,) = trail(request, yard, f"alerts/{drift['id']}")
    assert (ack["action"], ack["actor"]) == ("acknowledge alert", me(request))
    assert ack["summary"]["before"] == {"acknowledged": False}
    assert ack["summary"]["after"] == {
        "monitor": unique,
        "check": "drift",
        "status": "firing",
        "comment": "on the new feed",
    }
    requests = yard.monitors.retraining_requests(unique, status="open")
    closed = yard.monitors.close_request(requests[0]["id"], comment="retrained as v2")
    assert closed["status"] == "closed"
    assert yard.monitors.retraining_requests(unique, status="open") == []

    html = yard.monitors.report(unique)
    assert isinstance(html, str) and "income" in html
    HTMLParser().feed(html)
    shown = html._repr_html_()  # type: ignore[union-attr]  # a notebook shows the page framed
    assert shown.startswith('<iframe sandbox="" srcdoc="&lt;!DOCTYPE html&gt;')
    assert "<style" not in shown and "<svg" not in shown  # the page's markup stays inside
    assert [m["name"] for m in yard.monitors.list(unique)] == [unique]
    disabled = yard.monitors.update(unique, enabled=False)
    assert disabled["enabled"] is False

    # the same trail embedded and remote: each change recorded once, by its service
    monitored = trail(request, yard, f"monitors/{unique}")
    assert changes(monitored) == [
        ("create monitor", f"monitors/{unique}"),  # the default, as the endpoint's creator
        ("update monitor", f"monitors/{unique}"),
        ("run monitor", f"monitors/{unique}"),
        ("update monitor", f"monitors/{unique}"),
    ]
    assert {e["actor"] for e in monitored} == {me(request)}
    assert monitored[1]["summary"]["after"]["changes"] == {
        "window": "300 rows",
        "alerts": {"cooldown": "1s"},
    }
    assert monitored[2]["summary"]["after"] == {"windows": 2, "alerts": len(report["alerts"])}
    assert monitored[3]["summary"]["before"]["enabled"] is True
    assert monitored[3]["summary"]["after"] == {"enabled": False, "changes": {}}
    (close,) = trail(request, yard, f"retraining-requests/{requests[0]['id']}")
    assert (close["action"], close["actor"]) == ("close retraining request", me(request))
    assert close["summary"]["before"] == {"status": requests[0]["status"]}
    assert close["summary"]["after"] == {"status": "closed", "comment": "retrained as v2"}
    assert closed["action"]["closed"]["by"] == me(request)
    (built,) = trail(request, yard, f"models/{unique}/1/reference")  # at registration
    assert (built["action"], built["actor"]) == ("build reference", me(request))
    assert built["summary"]["after"] == {
        "status": "ready",
        "dataset": f"{unique}-train",
        "target": "target",
    }


def test_unknown_things_are_named(yard: Yard, unique: str) -> None:
    with pytest.raises(NotFound, match=f"endpoint '{unique}'"):
        yard.monitors.create(unique, endpoint=unique)
    with pytest.raises(NotFound):
        yard.monitors.reference(f"{unique}/1")
    with pytest.raises(NotFound, match="retraining request"):
        yard.monitors.close_request("0" * 32)
    with pytest.raises(NotFound, match=f"alert '{unique}' does not exist"):
        yard.monitors.acknowledge(unique)
