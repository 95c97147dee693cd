"""Monitors end to end on SQLite and PostgreSQL: windows over a real prediction log,
known shifts flagged exactly, alerts that fire once and resolve once, retraining
requests, late labels, and two workers that never compute a window twice."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from modelyard.bootstrap import Services
from modelyard.domain.monitors import Spec
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.monitoring.windows import claim_window, renew_claim, renewing
from modelyard.monitoring.worker import Worker
from modelyard.store import schema as t
from tests.monitoring.traffic import FEATURES, Deployed, deploy, inputs, labels_for
from tests.stores import services_on

WINDOW = 500
T0 = 1_790_000_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


class Hook:
    """A real HTTP endpoint on 127.0.0.1 that records the JSON posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    running = Hook()
    yield running
    running.close()


def configure(deployed: Deployed, hook: Hook) -> None:
    deployed.services.monitors.update(
        deployed.endpoint,
        {
            "window": f"{WINDOW} rows",
            "alerts": {
                "channels": [{"type": "log"}, {"type": "webhook", "url": hook.url}],
                "cooldown": "1s",
            },
        },
    )


def drifted_columns(window: dict[str, Any]) -> set[str]:
    return {d["column"] for d in window["summary"].get("drifted", [])}


def test_known_shift_is_flagged_exactly_and_alerts_fire_once_and_resolve_once(
    services: Services, hook: Hook
) -> None:
    deployed = deploy(services, "churn")
    assert services.monitors.get("churn").spec.endpoint == "churn"  # the default monitor
    configure(deployed, hook)
    deployed.send(inputs(2 * WINDOW, 10), start_ts=T0)
    deployed.send(inputs(WINDOW, 11, shift={"age": 1.0, "spend": -1.0}), start_ts=T0 + 60_000)
    deployed.send(inputs(WINDOW, 12), start_ts=T0 + 120_000)

    report = services.monitors.run("churn")

    windows = services.monitors.windows("churn")
    assert [w["start"] for w in windows] == [0, 500, 1000, 1500]
    assert [w["status"] for w in windows] == ["done"] * 4
    assert [drifted_columns(w) for w in windows] == [set(), set(), {"age", "spend"}, set()]
    drift = services.monitors.results("churn", check="drift", column="age")
    assert [r["severity"] for r in drift] == ["ok", "ok", "critical", "ok"]
    # 500 rows is a small sample: the KS test decides, on its p-value
    assert drift[2]["metric"] == "ks" and drift[2]["details"]["p_value"] < 1e-6

    fired = [a for a in report.alerts if a["check"] == "drift"]
    assert [a["event"] for a in fired] == ["fired", "resolved"]
    alerts = services.alerts.alerts(services.monitors.monitor_ids("churn"))
    drift_alerts = [a for a in alerts if a["check"] == "drift"]
    assert len(drift_alerts) == 1 and drift_alerts[0]["status"] == "resolved"
    assert "age" in drift_alerts[0]["summary"] and "spend" in drift_alerts[0]["summary"]
    events = [(d["channel"].split()[0], d["event"]) for d in drift_alerts[0]["deliveries"]]
    assert sorted(events) == sorted(
        [("log", "fired"), ("webhook", "fired"), ("log", "resolved"), ("webhook", "resolved")]
    )
    posted = [p for p in hook.received if p["check"] == "drift"]
    assert [p["event"] for p in posted] == ["fired", "resolved"]
    assert posted[0]["severity"] == "critical" and posted[0]["monitor"] == "churn"

    requests = services.alerts.requests(services.monitors.monitor_ids("churn"))
    assert len(requests) == 1
    assert requests[0]["alert"] == drift_alerts[0]["id"]
    assert (requests[0]["model"], requests[0]["version"]) == ("churn", 1)
    assert posted[0]["retraining_request"] == requests[0]["id"]

    again = services.monitors.run("churn")
    assert again.computed == [] and again.alerts == []  # nothing new, nothing sent twice


def test_output_drift_estimated_accuracy_and_late_labels(services: Services, hook: Hook) -> None:
    deployed = deploy(services, "risk")
    configure(deployed, hook)
    calm = inputs(WINDOW, 20)
    ids = deployed.send(calm, start_ts=T0)
    services.monitors.run("risk")

    estimated = services.monitors.results("risk", check="estimated_performance", metric="accuracy")
    assert len(estimated) == 1 and 0.6 < estimated[0]["value"] < 1.0
    labelled = services.monitors.results("risk", check="performance", metric="labelled")
    assert [r["value"] for r in labelled] == [0.0]
    assert services.monitors.results("risk", check="output_drift")

    truth = labels_for(calm, 20)
    services.predictions.record_labels("risk", list(zip(ids, truth.tolist(), strict=True)))
    report = services.monitors.run("risk")
    assert report.refreshed == [0]
    accuracy = services.monitors.results("risk", check="performance", metric="accuracy")
    assert len(accuracy) == 1
    realised = accuracy[0]["value"]
    predicted = deployed.fitted.predict(calm[FEATURES])
    assert realised == pytest.approx(float((predicted == truth).mean()))
    assert abs(estimated[0]["value"] - realised) < 0.06
    labelled = services.monitors.results("risk", check="performance", metric="labelled")
    assert [r["value"] for r in labelled] == [float(WINDOW)]


def test_two_workers_never_compute_a_window_twice(services: Services, hook: Hook) -> None:
    deployed = deploy(services, "twin")
    configure(deployed, hook)
    deployed.send(inputs(6 * WINDOW, 30), start_ts=T0)
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        reports.append(services.monitors.run_scheduled("twin", worker=name))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("worker-a", "worker-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    computed = [w["start"] for r in reports for w in r.computed]
    assert sorted(computed) == [0, 500, 1000, 1500, 2000, 2500]
    w = t.monitor_windows.c
    with services.db.read() as conn:
        rows = conn.execute(select(w.start, w.attempts, w.claimed_by)).all()
        per_window = conn.execute(
            select(t.monitor_results.c.window_id, func.count())
            .where(t.monitor_results.c.check == "drift")
            .group_by(t.monitor_results.c.window_id)
        ).all()
    assert len(rows) == 6 and {r.attempts for r in rows} == {1}
    assert {count for _, count in per_window} == {len(FEATURES)}
    assert services.audit.events(action="run monitor") == []  # a schedule is nobody's act


def test_workers_take_turns_so_each_monitor_is_looked_at_once_a_schedule(
    services: Services,
) -> None:
    deployed = deploy(services, "turns")
    services.monitors.update(deployed.endpoint, {"window": f"{WINDOW} rows", "schedule": "1h"})
    deployed.send(inputs(2 * WINDOW, 31), start_ts=T0)
    first, second = (Worker(services.monitors, services.predictions, name=n) for n in "ab")

    ran = first.run_once()  # its turn: it computes both windows
    assert [r.monitor for r in ran] == ["turns"] and len(ran[0].computed) == 2
    assert second.run_once() == []  # not its turn: it does not even look
    turns = t.monitor_turns.c
    with services.db.read() as conn:
        (taken_by,) = conn.execute(select(turns.taken_by)).scalars().all()
    assert taken_by == "a"

    with services.db.write() as conn:  # the hour passes: whoever looks first takes the turn
        conn.execute(update(t.monitor_turns).values(next_run=turns.next_run - 3_600_000))
    first._next.clear()
    second._next.clear()
    again = second.run_once()
    assert [r.monitor for r in again] == ["turns"] and again[0].computed == []
    assert first.run_once() == []
    assert [r.monitor for r in first.run_once(force=True)] == ["turns"]  # --once: always

    services.monitors.update(deployed.endpoint, {"schedule": "1m"})  # shortened: due at once
    second._next.clear()
    assert [r.monitor for r in second.run_once()] == ["turns"]
    assert first.run_once() == []


def test_a_window_left_by_a_crashed_worker_is_taken_again(services: Services, hook: Hook) -> None:
    deployed = deploy(services, "crash")
    configure(deployed, hook)
    deployed.send(inputs(WINDOW, 40), start_ts=T0)
    monitor = services.monitors.get("crash")
    assert services.monitors._claim(monitor, 0, WINDOW, "dead-worker", T0)
    assert services.monitors.run("crash").computed == []  # its lease still holds

    w = t.monitor_windows.c
    with services.db.write() as conn:
        conn.execute(update(t.monitor_windows).values(lease_until=int(time.time() * 1000) - 1))
    report = services.monitors.run_scheduled("crash", worker="rescuer")
    assert [c["start"] for c in report.computed] == [0]
    with services.db.read() as conn:
        row = conn.execute(select(w.status, w.attempts, w.claimed_by)).one()
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, "rescuer")
    (requested,) = services.audit.events(action="run monitor")  # the run asked for above
    assert (requested.resource, requested.summary["after"]) == (
        "monitors/crash",
        {"windows": 0, "alerts": 0},
    )


def test_a_worker_renews_the_lease_of_the_window_it_computes(services: Services) -> None:
    deployed = deploy(services, "renewed")
    deployed.send(inputs(WINDOW, 41), start_ts=T0)
    monitor = services.monitors.get("renewed")
    assert claim_window(services.db, monitor, 0, WINDOW, "busy", T0, lease_ms=300)
    w = t.monitor_windows.c

    def lease() -> int:
        with services.db.read() as conn:
            return int(conn.execute(select(w.lease_until)).scalar_one())

    first = lease()
    with renewing(services.db, monitor, 0, "busy", lease_ms=300):
        deadline = time.monotonic() + 30
        while lease() == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lease() > first  # renewed while the block runs
    assert not renew_claim(services.db, monitor, 0, "someone else", 300)  # only its own
    with services.db.write() as conn:
        conn.execute(update(t.monitor_windows).values(lease_until=0))
    assert claim_window(services.db, monitor, 0, WINDOW, "rescuer", T0, lease_ms=300)
    assert not renew_claim(services.db, monitor, 0, "busy", 300)  # taken: it stays taken
    with services.db.read() as conn:
        assert conn.execute(select(w.claimed_by, w.attempts)).one() == ("rescuer", 2)


def test_specs_are_validated_and_names_are_unique(services: Services) -> None:
    deploy(services, "spec")
    with pytest.raises(Conflict):
        services.monitors.create("spec", {"endpoint": "spec"})
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        services.monitors.create("other", {"endpoint": "nope"})
    bad: list[tuple[dict[str, Any], str]] = [
        ({"endpoint": "spec", "window": "soon"}, "window"),
        ({"endpoint": "spec", "window": "5 rows"}, "at least 10 rows"),
        ({"endpoint": "spec", "checks": {"drifts": {}}}, "unknown field"),
        ({"endpoint": "spec", "checks": {"drift": {"rules": {"age": {"method": "x"}}}}}, "'x'"),
        ({"endpoint": "spec", "alerts": {"channels": [{"type": "pager"}]}}, "pager"),
        ({"endpoint": "spec", "alerts": {"retrain": {"command": "make retrain"}}}, "argv"),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidInput, match=message):
            services.monitors.create("other", spec)
    assert [m.name for m in services.monitors.list()] == ["spec"]
    for read in (services.monitors.windows, services.monitors.results):
        with pytest.raises(InvalidInput, match="limit must be at least 1"):
            read("spec", limit=-1)
    updated = services.monitors.update("spec", {"window": "15m"}, enabled=False)
    assert (updated.spec.window.kind, updated.spec.window.size, updated.enabled) == (
        "time",
        900_000,
        False,
    )
    assert Spec.parse(updated.spec.to_dict()) == updated.spec


def test_time_windows_cover_closed_hours_only(services: Services, hook: Hook) -> None:
    deployed = deploy(services, "hourly")
    configure(deployed, hook)
    services.monitors.update("hourly", {"window": "1h"})
    hour = 3_600_000
    start = T0 // hour * hour
    deployed.send(inputs(200, 50), start_ts=start, step_ms=1000)
    deployed.send(inputs(200, 51), start_ts=start + hour, step_ms=1000)
    report = services.monitors.run("hourly", now=start + hour + 30 * 60_000)
    assert [(c["start"], c["rows"]) for c in report.computed] == [(start, 200)]
    later = services.monitors.run("hourly", now=start + 2 * hour)
    assert [(c["start"], c["rows"]) for c in later.computed] == [(start + hour, 200)]
    throughput = services.monitors.results("hourly", check="technical", metric="throughput_rps")
    assert [round(r["value"], 4) for r in throughput] == [round(200 / 3600, 4)] * 2


@pytest.mark.slow  # starts a process
def test_a_critical_alert_runs_the_retraining_command(
    services: Services, hook: Hook, tmp_path: Path
) -> None:
    deployed = deploy(services, "retrain")
    received = tmp_path / "request.json"
    script = f"import sys; open({str(received)!r}, 'w').write(sys.stdin.read())"
    services.monitors.update(
        "retrain",
        {
            "window": f"{WINDOW} rows",
            "alerts": {
                "channels": [{"type": "webhook", "url": hook.url}],
                "retrain": {"command": [sys.executable, "-c", script], "timeout_s": 30},
            },
        },
    )
    deployed.send(inputs(WINDOW, 60, shift={"tenure": 2.0}), start_ts=T0)
    report = services.monitors.run("retrain")

    (request_id,) = report.requests
    sent = json.loads(received.read_text())
    assert sent["retraining_request"] == request_id
    assert (sent["model"], sent["version"], sent["monitor"]) == ("retrain", 1, "retrain")
    assert "tenure" in sent["reason"]
    (request,) = services.alerts.requests(services.monitors.monitor_ids("retrain"))
    assert request["status"] == "triggered"
    assert request["action"]["command"]["status"] == "ok"
    assert (request["model"], request["version"]) == ("retrain", 1)


def test_a_reference_built_at_registration_is_recorded_as_the_registrant(
    services: Services,
) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelyard.client.local import LocalBackend
    from modelyard.client.yard import Yard
    from modelyard.domain.actors import Actor, acting_as

    yard = Yard(LocalBackend(services))
    train = inputs(300, 50)
    fitted = LogisticRegression().fit(train, labels_for(train, 50))
    with acting_as(Actor("ana")), yard.start_run("partial") as run:
        # the kept training data lacks an input: profiling it fails, registration does not
        kept = train.drop(columns=["age"]).assign(target=labels_for(train, 50))
        run.log_dataset(kept, name="partial-train", role="training")
        run.log_model(fitted, name="partial", input_example=train.head(3))
    assert services.references.status("partial/1")["status"] == "failed"  # type: ignore[index]
    (built,) = services.audit.events(action="build reference")
    assert (built.actor, built.resource) == ("ana", "models/partial/1/reference")
    assert built.summary["after"] == {
        "status": "failed",
        "dataset": "partial-train",
        "target": None,
    }


def test_a_monitor_of_batch_traffic_watches_a_batch_jobs_logged_rows(
    services: Services, tmp_path: Path
) -> None:
    deployed = deploy(services, "scored")
    deployed.send(inputs(300, 20), start_ts=T0)  # online traffic, 2 ms each
    for name, frame in (
        ("steady", inputs(200, 21)),
        ("shifted", inputs(200, 22, shift={"age": 2.0})),
    ):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        deployed.yard.batch.score(
            "scored/1",
            tmp_path / f"{name}.parquet",
            tmp_path / f"{name}-scored.parquet",
            workers=1,
            log_to="scored",
        )
    services.monitors.create(
        "scored-batch", {"endpoint": "scored", "traffic": ["batch"], "window": "200 rows"}
    )
    services.monitors.create(
        "scored-all",
        {"endpoint": "scored", "traffic": ["primary", "batch"], "window": "500 rows"},
    )
    services.monitors.update("scored", {"window": "100 rows"})

    services.monitors.run("scored-batch")
    batch = sorted(services.monitors.windows("scored-batch"), key=lambda w: w["start"])
    assert [(w["start"], w["rows"]) for w in batch] == [(0, 200), (200, 200)]
    assert [drifted_columns(w) for w in batch] == [set(), {"age"}]
    assert services.monitors.results("scored-batch", check="technical") == []

    services.monitors.run("scored")  # the default monitor reads the online rows only
    online = services.monitors.windows("scored")
    assert sorted((w["start"], w["rows"]) for w in online) == [(0, 100), (100, 100), (200, 100)]

    services.monitors.run("scored-all")  # 300 online rows, then the steady job's 200
    [mixed] = services.monitors.windows("scored-all")
    assert (mixed["rows"], drifted_columns(mixed)) == (500, set())
    levels = {
        r["metric"]: r["value"] for r in services.monitors.results("scored-all", check="technical")
    }
    assert levels["latency_p50_ms"] == levels["latency_p99_ms"] == 2.0  # online rows only
    assert levels["error_rate"] == 0.0
    assert round(levels["throughput_rps"], 3) == round(300 / 2.99, 3)


def test_a_monitor_reads_only_the_traffic_it_names(services: Services) -> None:
    deploy(services, "roles")
    for traffic, message in (
        (["primary", "shadow"], "traffic 'shadow' is not one of primary, batch"),
        ([], "traffic must be a non-empty list"),
        ({"batch": True}, "traffic must be a non-empty list"),
    ):
        with pytest.raises(InvalidInput, match=message):
            services.monitors.create("bad", {"endpoint": "roles", "traffic": traffic})
    created = services.monitors.create(
        "both", {"endpoint": "roles", "traffic": ["batch", "primary", "batch"]}
    )
    assert created.spec.traffic == ("batch", "primary")
    assert created.spec.to_dict()["traffic"] == ["batch", "primary"]
    assert Spec.parse(json.loads(json.dumps(created.spec.to_dict()))) == created.spec
    assert services.monitors.get("roles").spec.traffic == ("primary",)
    updated = services.monitors.update("both", {"traffic": "batch"})
    assert services.monitors.get("both").spec.traffic == updated.spec.traffic == ("batch",)
