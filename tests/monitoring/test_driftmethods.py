"""The drift method registry: each method's defaults, statistic and spec check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modelyard.domain.checks import Checks
from modelyard.errors import InvalidInput
from modelyard.monitoring.columns import CATEGORICAL, KINDS, NUMERIC
from modelyard.monitoring.drift import column_drift, observe
from modelyard.monitoring.driftmethods import (
    DRIFT_METHODS,
    Binned,
    check_rules,
    default_method,
    method_for,
)
from modelyard.monitoring.profile import profile_table


def categorical(expected: list[float], actual: list[float], rows: int = 1000) -> Binned:
    return Binned(CATEGORICAL, np.array(expected), np.array(actual), rows, rows)


def test_every_method_describes_itself() -> None:
    for name, method in DRIFT_METHODS.items():
        assert method.name == name
        assert method.kinds and set(method.kinds) <= set(KINDS), name
        if method.on_p_value:  # lower is worse
            assert 0 < method.critical < method.warn < 1, name
        else:
            assert 0 < method.warn < method.critical, name


def test_default_method_follows_kind_and_size() -> None:
    assert default_method("numeric", 999) == "ks"
    assert default_method("numeric", 1000) == "wasserstein"
    assert default_method("categorical", 10) == "chisquare"
    assert default_method("categorical", 50_000) == "jensenshannon"


def test_every_numeric_method_grows_with_the_shift() -> None:
    reference = profile_table(pa.table({"x": np.random.default_rng(6).normal(size=20_000)}))
    column = reference.columns["x"]
    numeric = [name for name, method in DRIFT_METHODS.items() if NUMERIC in method.kinds]
    assert {"wasserstein", "ks", "psi", "jensenshannon"} <= set(numeric)
    for method in numeric:
        values = [
            column_drift(
                column,
                observe(column, pa.array(np.random.default_rng(7).normal(size=20_000) + shift)),
                method,
            ).value
            for shift in (0.0, 0.2, 0.5, 1.0)
        ]
        assert values == sorted(values), method
        assert values[0] < 0.05 and values[-1] > 0.2, method


def test_statistics_on_known_distributions() -> None:
    same = categorical([0.5, 0.5], [0.5, 0.5])
    apart = categorical([1.0, 0.0], [0.0, 1.0])
    assert DRIFT_METHODS["psi"].score(same).value == 0.0
    assert DRIFT_METHODS["jensenshannon"].score(same).value == 0.0
    assert DRIFT_METHODS["jensenshannon"].score(apart).value == pytest.approx(1.0)
    test = DRIFT_METHODS["chisquare"].score(categorical([0.5, 0.5], [0.9, 0.1], rows=100))
    # 2 x 2 table [[50, 50], [90, 10]]: expected [[70, 30], [70, 30]], chi2 = 38.095...
    assert test.value == pytest.approx(800 / 21)
    assert test.p_value is not None and test.p_value < 1e-8


def test_a_method_applies_only_to_its_kinds() -> None:
    assert method_for("age", NUMERIC, "wasserstein").name == "wasserstein"
    with pytest.raises(InvalidInput, match="column 'city': method 'ks' does not apply to categ"):
        method_for("city", CATEGORICAL, "ks")
    with pytest.raises(InvalidInput, match="column 'age': drift method 'nope' is not one of"):
        method_for("age", NUMERIC, "nope")


def test_spec_rules_may_name_only_registered_methods() -> None:
    known = {"drift": {"rules": {"age": {"method": "psi"}}}, "output_drift": {"rules": {}}}
    check_rules(Checks.parse(known))
    unknown = {"output_drift": {"rules": {"score": {"method": "energy", "warn": 0.1}}}}
    with pytest.raises(InvalidInput) as raised:
        check_rules(Checks.parse(unknown))
    assert str(raised.value) == (
        "checks.output_drift.rules.score: method 'energy' is not one of " + ", ".join(DRIFT_METHODS)
    )
    with pytest.raises(InvalidInput, match=r"checks.drift.rules.age.method: expected a drift"):
        Checks.parse({"drift": {"rules": {"age": {"method": 3}}}})


def test_hellinger_on_known_distributions() -> None:
    from scipy.spatial import distance

    hellinger = DRIFT_METHODS["hellinger"]
    assert (hellinger.kinds, hellinger.warn, hellinger.critical) == (
        (NUMERIC, CATEGORICAL),
        0.1,
        0.2,
    )
    assert hellinger.score(categorical([0.5, 0.5], [0.5, 0.5])).value == 0.0
    assert hellinger.score(categorical([1.0, 0.0], [0.0, 1.0])).value == pytest.approx(1.0)
    # by hand: sqrt(1 - (sqrt(0.5 * 0.9) + sqrt(0.5 * 0.1))) = sqrt(1 - 0.894427) = 0.324920
    shifted = hellinger.score(categorical([0.5, 0.5], [0.9, 0.1]))
    assert shifted.value == pytest.approx(0.324920, abs=1e-6)
    p, q = np.array([0.2, 0.3, 0.5, 0.0]), np.array([0.1, 0.4, 0.3, 0.2])
    independent = distance.euclidean(np.sqrt(p), np.sqrt(q)) / np.sqrt(2)
    assert hellinger.score(categorical(p.tolist(), q.tolist())).value == pytest.approx(independent)


def test_hellinger_from_a_monitor_rule() -> None:
    check_rules(Checks.parse({"drift": {"rules": {"k": {"method": "hellinger"}}}}))
    reference = profile_table(pa.table({"k": ["a"] * 500 + ["b"] * 500})).columns["k"]
    current = observe(reference, pa.array(["a"] * 900 + ["b"] * 100))
    result = column_drift(reference, current, "hellinger")
    assert result.value == pytest.approx(0.324920, abs=1e-6)
    assert (result.p_value, result.severity) == (None, "critical")
    assert column_drift(reference, current, "hellinger", warn=0.4, critical=0.5).severity == "ok"
