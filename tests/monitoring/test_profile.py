"""Profiles: exact from a table, streaming and mergeable from batches and files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modelyard.errors import InvalidInput
from modelyard.monitoring.profile import (
    Profile,
    ProfileBuilder,
    profile_file,
    profile_table,
)
from tests.conftest import modelyard_command


def sample(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 3.0, rows)
    values[::50] = np.nan
    return pa.table(
        {
            "amount": values,
            "count": rng.integers(0, 4, rows),
            "city": pa.array(rng.choice(["oslo", "lima", "pune"], rows)).cast(pa.string()),
        }
    )


def test_table_profile_is_exact() -> None:
    data = sample(20_000, 1)
    profile = profile_table(data)
    amount = profile.columns["amount"]
    present = data.column("amount").to_numpy()
    present = present[~np.isnan(present)]
    assert (profile.rows, amount.count, amount.missing) == (20_000, len(present), 400)
    assert amount.kind == "numeric" and amount.missing_rate == pytest.approx(0.02)
    assert amount.mean == pytest.approx(present.mean())
    assert amount.std == pytest.approx(present.std())
    assert (amount.minimum, amount.maximum) == (present.min(), present.max())
    assert amount.quantiles[50] == pytest.approx(np.quantile(present, 0.5), rel=1e-3)
    assert sum(amount.shares) == pytest.approx(1.0)
    count = profile.columns["count"]
    assert count.splits == [0.0, 1.0, 2.0, 3.0]  # a discrete column keeps its values as bins
    exact = np.bincount(data.column("count").to_numpy(), minlength=4) / 20_000
    assert count.shares[1:] == pytest.approx(exact.tolist())
    city = profile.columns["city"]
    assert city.kind == "categorical" and city.complete and city.distinct == 3
    assert sum(city.categories.values()) == 20_000


def test_streaming_profile_merges_and_agrees_with_the_exact_one() -> None:
    data = sample(40_000, 2)
    left, right = ProfileBuilder(), ProfileBuilder()
    for index, batch in enumerate(data.to_batches(5_000)):
        (left if index % 2 else right).update(batch)
    left.merge(right)
    streamed, exact = left.finish(), profile_table(data)
    a, b = streamed.columns["amount"], exact.columns["amount"]
    assert (a.count, a.missing) == (b.count, b.missing)
    assert a.mean == pytest.approx(b.mean) and a.std == pytest.approx(b.std)
    found = np.searchsorted(np.sort(data.column("amount").drop_null().to_numpy()), a.quantiles)
    ranks = found / b.count
    assert np.abs(ranks - np.linspace(0, 1, 101)).max() < 0.02  # the sketch's rank error
    assert streamed.columns["city"].categories == exact.columns["city"].categories
    # finished profiles with sketches merge too, and survive JSON
    first = profile_table(data.slice(0, 10_000), sketch=True)
    second = profile_table(data.slice(10_000), sketch=True)
    merged = Profile.from_dict(json.loads(json.dumps(first.to_dict()))).merge(second)
    assert merged.rows == 40_000 and merged.columns["amount"].count == b.count
    with pytest.raises(InvalidInput, match="without its sketch"):
        profile_table(data).merge(profile_table(data))


def test_files_profile_in_two_streaming_passes(tmp_path: Path) -> None:
    data = sample(5_000, 3)
    pq.write_table(data, tmp_path / "d.parquet", row_group_size=1_000)
    pacsv.write_csv(data, tmp_path / "d.csv")
    for name in ("d.parquet", "d.csv"):
        profile = profile_file(tmp_path / name)
        assert profile.rows == 5_000
        assert profile.columns["amount"].missing == 100
        exact = profile_table(data).columns["amount"]
        _, streamed_shares = profile.columns["amount"].histogram(10)
        _, exact_shares = exact.histogram(10)
        assert streamed_shares == pytest.approx(exact_shares, abs=0.01)
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(InvalidInput, match="expected a .parquet"):
        profile_file(tmp_path / "d.txt")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match="cannot read broken.parquet"):
        profile_file(tmp_path / "broken.parquet")


@pytest.mark.slow  # starts a process
def test_profile_command(tmp_path: Path) -> None:
    pq.write_table(sample(1_000, 4), tmp_path / "d.parquet")
    done = subprocess.run(
        modelyard_command("profile", str(tmp_path / "d.parquet"), "--json"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    profile = Profile.from_dict(json.loads(done.stdout))
    assert profile.rows == 1_000 and set(profile.columns) == {"amount", "count", "city"}
    missing = subprocess.run(
        modelyard_command("profile", str(tmp_path / "nope.csv")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: no file at {tmp_path / 'nope.csv'}"]
