"""Drift with known ground truth: exactly the shifted columns are flagged, at every size,
and big unshifted windows flag nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.monitoring.drift import ColumnRule, column_drift, drift, holm, observe
from modelyard.monitoring.profile import profile_table

SHIFTED = {"n3", "n7", "c2"}


def table(rows: int, seed: int, shift: bool = False) -> pa.Table:
    """20 numeric columns (normal and skewed) and 5 categorical ones."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(20):
        scale = 1 + i % 3
        x = rng.lognormal(0, 0.5, rows) * scale if i % 5 == 4 else rng.normal(i, scale, rows)
        if shift and f"n{i}" in SHIFTED:
            x = x + 0.5 * scale
        columns[f"n{i}"] = x
    for j in range(5):
        shares = [0.3, 0.3, 0.25, 0.15] if shift and f"c{j}" in SHIFTED else [0.5, 0.3, 0.15, 0.05]
        columns[f"c{j}"] = rng.choice(np.array(["a", "b", "c", "d"]), size=rows, p=shares)
    return pa.table(columns)


@pytest.mark.parametrize("rows", [500, 5_000, 100_000])
def test_exactly_the_shifted_columns_are_flagged(rows: int) -> None:
    reference = profile_table(table(rows, 1))
    report = drift(reference, table(rows, 2, shift=True))
    assert {c.column for c in report.drifted} == SHIFTED
    assert len(report.columns) == 25


@pytest.mark.slow
@pytest.mark.parametrize("rows", [100_000, 1_000_000])
def test_large_unshifted_windows_flag_nothing(rows: int) -> None:
    reference = profile_table(table(rows, 3))
    report = drift(reference, table(rows, 4))
    assert report.drifted == []
    # a p-value test alone would flag at this size: the effect sizes are tiny
    worst = max(c.value for c in report.columns if c.method == "wasserstein")
    assert worst < 0.02


def test_binned_statistics_match_the_exact_ones() -> None:
    rng = np.random.default_rng(5)
    reference_values, current_values = rng.normal(0, 2, 50_000), rng.normal(0.6, 2.4, 50_000)
    profile = profile_table(pa.table({"x": reference_values})).columns["x"]
    seen = observe(profile, pa.chunked_array([current_values]))
    exact_w = stats.wasserstein_distance(reference_values, current_values) / reference_values.std()
    exact_ks = stats.ks_2samp(reference_values, current_values).statistic
    assert column_drift(profile, seen, "wasserstein").value == pytest.approx(exact_w, rel=0.03)
    assert column_drift(profile, seen, "ks").value == pytest.approx(exact_ks, abs=0.01)


def test_values_beyond_the_reference_range_count_fully() -> None:
    reference = profile_table(pa.table({"x": np.linspace(0, 1, 1001)})).columns["x"]
    far = observe(reference, pa.array(np.full(1000, 11.0)))
    # every value moved 10.5 on average; the reference std is ~0.289
    result = column_drift(reference, far, "wasserstein")
    assert result.value == pytest.approx(10.5 / 0.2889, rel=0.02)
    assert far.above == 1000 and far.below == 0


def test_categorical_statistics() -> None:
    reference = profile_table(pa.table({"k": ["a"] * 500 + ["b"] * 500})).columns["k"]
    unseen = observe(reference, pa.array(["a"] * 500 + ["z"] * 500))
    result = column_drift(reference, unseen, "jensenshannon")
    assert result.drifted and result.detail["largest_moves"][0]["category"] in ("b", "<other>")


def test_holm_keeps_many_clean_tests_quiet() -> None:
    """30 clean columns at 200 rows: raw p-values flag some by chance, Holm none."""
    rng = np.random.default_rng(8)
    flagged_raw = flagged_holm = 0
    for trial in range(20):
        ref = pa.table({f"x{i}": rng.normal(size=200) for i in range(30)})
        cur = pa.table({f"x{i}": rng.normal(size=200) for i in range(30)})
        profile = profile_table(ref)
        raw = [
            column_drift(profile.columns[n], observe(profile.columns[n], cur.column(n)))
            for n in cur.schema.names
        ]
        flagged_raw += sum(r.drifted for r in raw)
        flagged_holm += sum(r.drifted for r in holm(raw))
        assert trial < 20
    assert flagged_raw > 5
    assert flagged_holm <= 1


def test_rules_thresholds_and_errors() -> None:
    reference = profile_table(table(2000, 9))
    current = table(2000, 10, shift=True)
    strict = drift(reference, current, {"n3": ColumnRule("psi", warn=5.0, critical=9.0)})
    n3 = next(c for c in strict.columns if c.column == "n3")
    assert (n3.method, n3.drifted) == ("psi", False)
    with pytest.raises(InvalidInput, match="does not apply to categorical"):
        drift(reference, current, {"c0": ColumnRule("wasserstein")})
    with pytest.raises(InvalidInput, match="not in the current data"):
        drift(reference, current.drop_columns(["n1"]), columns=["n1"])


def test_pandas_frames_with_missing_values() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(size=3000), "k": rng.choice(["a", "b"], 3000)})
    holes = frame.copy()
    holes.loc[::10, "x"] = np.nan
    holes.loc[::7, "k"] = None
    reference = profile_table(frame)
    report = drift(reference, holes)
    assert report.drifted == []
    assert report.observed["x"].missing == 300
    assert report.observed["k"].missing == len(range(0, 3000, 7))
