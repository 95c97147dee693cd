"""Data quality of a window against its reference: each check on a known defect."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from modelyard.monitoring.drift import observe
from modelyard.monitoring.profile import profile_table
from modelyard.monitoring.quality import quality


def reference_and(current: pa.Table) -> dict[tuple[str, str], tuple[str, float]]:
    rng = np.random.default_rng(1)
    reference = profile_table(
        pa.table(
            {
                "amount": rng.uniform(0, 100, 5000),
                "rate": rng.normal(size=5000),
                "plan": rng.choice(["basic", "plus", "pro"], 5000),
                "region": rng.choice(["eu", "us"], 5000),
            }
        )
    )
    present = set(current.schema.names)
    observed = {
        name: observe(reference.columns[name], current.column(name))
        for name in reference.columns
        if name in present
    }
    return {
        (f.check, f.column): (f.severity, f.value) for f in quality(reference, observed, present)
    }


def test_each_defect_is_named_and_clean_columns_pass() -> None:
    rng = np.random.default_rng(2)
    amount = rng.uniform(0, 100, 1000)
    amount[:120] = 500.0  # 12% above the reference maximum
    rate = rng.normal(size=1000)
    rate[::4] = np.nan  # a quarter missing, none in the reference
    plan = rng.choice(["basic", "plus", "pro", "gold"], 1000, p=[0.3, 0.3, 0.3, 0.1])
    findings = reference_and(
        pa.table({"amount": amount, "rate": rate, "plan": plan, "region": ["eu"] * 1000})
    )
    assert findings[("out_of_range", "amount")][0] == "warn"
    assert abs(findings[("out_of_range", "amount")][1] - 0.12) < 0.005
    assert findings[("missing_rate", "rate")] == ("critical", 0.25)
    assert findings[("unseen_categories", "plan")][0] in ("warn", "critical")
    assert findings[("constant", "region")][0] == "warn"
    clean = {k: v for k, v in findings.items() if v[0] == "ok"}
    assert ("out_of_range", "rate") in clean and ("missing_rate", "amount") in clean
    assert ("constant", "amount") in clean and ("schema", "amount") in clean


def test_a_missing_column_is_a_critical_schema_finding() -> None:
    rng = np.random.default_rng(3)
    findings = reference_and(
        pa.table(
            {
                "amount": rng.uniform(0, 100, 200),
                "rate": rng.normal(size=200),
                "plan": rng.choice(["basic", "plus"], 200),
            }
        )
    )
    assert findings[("schema", "region")] == ("critical", 1.0)
    assert findings[("schema", "amount")] == ("ok", 0.0)
