"""The less common checks on a real log: training-serving skew by entity id, custom
metrics in Python and SQL, performance sliced by a segment, and SLO targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import Services
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.serving.journal import Journal, canonical, record_line
from tests.monitoring.traffic import FEATURES, inputs, labels_for

T0 = 1_790_000_000_000


def mean_latency(window: pa.Table) -> float:
    """A custom metric in Python: it gets the window's rows."""
    return float(np.mean(window.column("latency_ms").to_numpy()))


def test_skew_custom_metrics_segments_and_slos(services: Services, tmp_path: Path) -> None:
    yard = Yard(LocalBackend(services))
    train = inputs(1000, 1).assign(customer_id=[f"c{i}" for i in range(1000)])
    target = labels_for(train, 1)
    fitted = LogisticRegression().fit(train[FEATURES], target)
    with yard.start_run("skew", name="train") as run:
        run.log_dataset(train.assign(target=target), name="skew-train", role="training")
        run.log_model(fitted, name="skew", input_example=train[FEATURES].head(3))
    yard.endpoints.create("skew", routes=["skew/1=100"])
    yard.monitors.update(
        "skew",
        {
            "window": "200 rows",
            "checks": {
                "skew": {"entity_column": "customer_id"},
                "performance": {"segment": "tier", "min_labels": 10},
                "technical": {"latency_p50_ms": 1.5, "latency_p99_ms": None, "error_rate": 0.5},
                "custom": [
                    {"name": "mean_latency", "python": f"{__name__}:mean_latency", "warn": 1.0},
                    {
                        "name": "share_one",
                        "sql": "SELECT avg(CAST(output AS INTEGER)) FROM window_rows",
                        "critical": 0.99,
                    },
                    {"name": "broken", "sql": "SELECT nope FROM window_rows"},
                ],
            },
        },
    )
    live = train.head(200).copy()
    live.loc[180:, "income"] = live.loc[180:, "income"] + 3.0  # 20 of 200 rows differ
    live["tier"] = ["gold" if i % 2 else "basic" for i in range(200)]
    proba = fitted.predict_proba(live[FEATURES])
    ids = [f"p{i}" for i in range(200)]
    lines = b"".join(
        record_line(
            id=ids[i],
            endpoint="skew",
            revision=1,
            model="skew",
            version=1,
            role="primary",
            ts=T0 + i,
            latency_ms=2.0,
            input=orjson.dumps(
                {
                    **{f: row[f] for f in FEATURES},
                    "customer_id": row["customer_id"],
                    "tier": row["tier"],
                }
            ),
            output=canonical(int(proba[i].argmax())).encode(),
            scores=orjson.dumps(proba[i].tolist()),
        )
        for i, row in enumerate(live.to_dict(orient="records"))
    )
    journal = Journal(services.settings.predictions_root / "skew")
    journal.append(lines)
    journal.close()
    truth = labels_for(live, 7)
    services.predictions.record_labels("skew", list(zip(ids, truth.tolist(), strict=True)))

    yard.monitors.run("skew")
    found = {(r["check"], r["metric"], r["column"]): r for r in services.monitors.results("skew")}

    assert found[("skew", "matched", "customer_id")]["value"] == 200
    assert found[("skew", "mismatch_share", "income")]["value"] == 0.1
    assert found[("skew", "mismatch_share", "income")]["severity"] == "critical"
    assert found[("skew", "mismatch_share", "age")]["value"] == 0.0

    assert found[("custom", "mean_latency", "")]["value"] == 2.0
    assert found[("custom", "mean_latency", "")]["severity"] == "warn"
    share = float((proba.argmax(axis=1) == 1).mean())
    assert abs(found[("custom", "share_one", "")]["value"] - share) < 1e-9
    broken = found[("custom", "broken", "")]
    assert broken["value"] is None and "nope" in broken["details"]["error"]

    predicted = proba.argmax(axis=1)
    for tier, parity in (("gold", 1), ("basic", 0)):
        rows = np.arange(200) % 2 == parity
        expected = float((predicted[rows] == truth[rows]).mean())
        assert found[("performance", "accuracy", f"tier={tier}")]["value"] == expected

    p50 = found[("technical", "latency_p50_ms", "")]
    assert (p50["value"], p50["severity"]) == (2.0, "warn")
    assert found[("technical", "error_rate", "")]["severity"] == "ok"
    assert ("technical", "latency_p99_ms", "") in found  # measured even without a target
    assert all(r["severity"] == "ok" for k, r in found.items() if k[0] == "drift")
