"""Drift weighed by feature importance: ranked by it, and a shift in an unimportant
feature is a warning, not a page."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.bootstrap import Services
from modelyard.monitoring.alerts import summarise
from modelyard.monitoring.checks import UNIMPORTANT_SHARE
from modelyard.monitoring.results import Result
from tests.monitoring.traffic import deploy, inputs

WINDOW = 500
T0 = 1_790_000_000_000


def drift_of(services: Services, endpoint: str, column: str) -> list[dict[str, object]]:
    return services.monitors.results(endpoint, check="drift", column=column)


def test_drift_is_ranked_by_importance_and_unimportant_drift_only_warns(
    services: Services,
) -> None:
    deployed = deploy(services, "weighed")
    shares = services.importances.get("weighed/1").shares
    assert shares["visits"] < UNIMPORTANT_SHARE < min(shares["age"], shares["spend"])
    services.monitors.update(
        "weighed", {"window": f"{WINDOW} rows", "alerts": {"min_severity": "warn"}}
    )
    deployed.send(inputs(WINDOW, 20), start_ts=T0)
    deployed.send(inputs(WINDOW, 21, shift={"visits": 2.0}), start_ts=T0 + 60_000)
    deployed.send(
        inputs(WINDOW, 22, shift={"visits": 2.0, "spend": 1.0, "age": 1.0}), start_ts=T0 + 120_000
    )
    services.monitors.run("weighed")

    visits = drift_of(services, "weighed", "visits")
    assert [r["severity"] for r in visits] == ["ok", "warn", "warn"]
    assert "carries" in str(visits[1]["details"]["downgraded"])  # type: ignore[index]
    assert visits[1]["details"]["importance"] == pytest.approx(shares["visits"], abs=1e-4)  # type: ignore[index]
    assert [r["severity"] for r in drift_of(services, "weighed", "age")][2] == "critical"
    windows = services.monitors.windows("weighed")
    assert [w["summary"]["severity"] for w in windows] == ["ok", "warn", "critical"]
    ranked = [d["column"] for d in windows[2]["summary"]["drifted"]]
    assert ranked == sorted(ranked, key=lambda column: -shares[column])
    assert ranked[-1] == "visits"
    alerts = services.alerts.alerts(services.monitors.monitor_ids("weighed"))
    (drift_alert,) = [a for a in alerts if a["check"] == "drift"]
    assert drift_alert["severity"] == "critical"  # escalated only when age and spend moved


def test_an_alert_lists_the_features_the_model_leans_on_first() -> None:
    results = [
        Result("drift", "psi", 0.9, "warn", "visits", details={"importance": 0.01}),
        Result("drift", "psi", 0.3, "warn", "age", details={"importance": 0.4}),
        Result("drift", "psi", 0.5, "warn", "spend", details={"importance": 0.2}),
    ]
    summary, evidence = summarise("drift", results)
    assert [item["column"] for item in evidence["results"]] == ["age", "spend", "visits"]
    assert summary.startswith("drift: 3 columns past threshold: age (psi 0.3)")
    assert evidence["results"][0]["importance"] == 0.4


def test_without_importance_drift_is_judged_as_before(services: Services, tmp_path: Path) -> None:
    deployed = deploy(services, "plain")
    services.monitors.update("plain", {"window": f"{WINDOW} rows"})
    with services.db.write() as conn:  # as for a version registered before importances
        from modelyard.store import schema as t

        conn.execute(t.version_importances.delete())
    deployed.send(inputs(WINDOW, 31, shift={"visits": 2.0}), start_ts=T0)
    services.monitors.run("plain")
    (visits,) = drift_of(services, "plain", "visits")
    assert visits["severity"] == "critical" and "importance" not in visits["details"]  # type: ignore[operator]
