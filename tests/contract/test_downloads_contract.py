"""Reading back what runs logged and tagging models, embedded and remote: a run's
artifacts listed and downloaded (hash-checked), a stored dataset downloaded by name or
fingerprint, model and version tags set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelyard.client.yard import Yard
from modelyard.errors import InvalidInput, NotFound
from tests.audit_trail import changes, trail
from tests.serving.models import cancer, classifier


def test_a_runs_artifacts_are_listed_and_downloaded(
    yard: Yard, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features, _ = cancer()
    notes = tmp_path / "notes"
    (notes / "deep").mkdir(parents=True)
    (notes / "summary.txt").write_bytes(b"auc 0.97\n")
    (notes / "deep" / "plot.bin").write_bytes(bytes(range(256)))
    with yard.start_run(unique) as run:
        run.log_artifact(notes)
        run.log_model(classifier(), name=unique, input_example=features.head())
    listed = {a.path: a for a in yard.runs.artifacts(run.id)}
    assert {"notes/summary.txt", "notes/deep/plot.bin", "model/manifest.json"} <= set(listed)
    assert listed["notes/summary.txt"].size == 9

    here = tmp_path / "downloads"
    here.mkdir()
    monkeypatch.chdir(here)
    assert yard.runs.download(run.id, "notes/summary.txt") == Path("summary.txt")
    assert (here / "summary.txt").read_bytes() == b"auc 0.97\n"
    target = yard.runs.download(run.id, "notes/deep/plot.bin", here / "out" / "p.bin")
    assert target.read_bytes() == bytes(range(256))
    folder = yard.runs.download(run.id, "notes", here / "all-notes")
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert found == ["deep/plot.bin", "summary.txt"]
    (here / "pkg").mkdir()
    package = yard.runs.download(run.id, "model", here / "pkg")
    assert (package / "manifest.json").is_file()
    with pytest.raises(NotFound, match=f"run '{run.id}' has no artifact 'nope' \\(it has: "):
        yard.runs.download(run.id, "nope")
    assert [p for p in here.rglob("*.part")] == []


def test_a_stored_dataset_is_downloaded_by_name_or_fingerprint(
    yard: Yard, unique: str, tmp_path: Path
) -> None:
    first = pd.DataFrame({"age": [41, 35], "plan": ["pro", "free"]})
    second = pd.DataFrame({"age": [29, 52, 60], "plan": ["free", "pro", "pro"]})
    with yard.start_run(unique) as run:
        old = run.log_dataset(first, name=f"{unique}-train")
        new = run.log_dataset(second, name=f"{unique}-train", role="test")
        run.log_dataset(first, name=f"{unique}-ref", store=False, uri="s3://bucket/ref.parquet")
    versions = yard.datasets.versions(f"{unique}-train")
    assert [v.fingerprint for v in versions] == [new.fingerprint, old.fingerprint]
    assert all(v.stored for v in versions)

    newest = yard.datasets.download(f"{unique}-train", tmp_path / "train.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(newest), second)
    older = yard.datasets.download(
        f"{unique}-train", tmp_path / "old.parquet", fingerprint=old.fingerprint
    )
    pd.testing.assert_frame_equal(pd.read_parquet(older), first)
    by_content = yard.datasets.download(new.fingerprint, tmp_path)
    assert by_content == tmp_path / f"{unique}-train.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(by_content), second)

    with pytest.raises(NotFound, match="logged by reference \\(it lives at s3://bucket/ref"):
        yard.datasets.download(f"{unique}-ref", tmp_path / "ref.parquet")
    with pytest.raises(NotFound, match=f"has no content version {'0' * 64}"):
        yard.datasets.download(f"{unique}-train", fingerprint="0" * 64)
    with pytest.raises(NotFound, match=f"dataset '{unique}-none' does not exist"):
        yard.datasets.versions(f"{unique}-none")
    assert not (tmp_path / "ref.parquet").exists()


def test_model_and_version_tags_are_set(
    yard: Yard, unique: str, request: pytest.FixtureRequest
) -> None:
    features, _ = cancer()
    yard.models.register(classifier(), name=unique, input_example=features.head())
    assert yard.models.set_tags(unique, {"team": "retention"}).tags == {"team": "retention"}
    tagged = yard.models.set_tags(unique, {"team": "growth", "tier": 2})
    assert tagged.tags == {"team": "growth", "tier": "2"}
    version = yard.models.set_version_tags(f"{unique}/1", {"validated": "2026-11-30"})
    assert version.tags["validated"] == "2026-11-30"
    assert yard.models.version(f"{unique}/1").tags == version.tags
    with pytest.raises(InvalidInput, match="at least one tag"):
        yard.models.set_tags(unique, {})
    with pytest.raises(NotFound):
        yard.models.set_version_tags(f"{unique}/9", {"a": "b"})
    assert (
        changes(trail(request, yard, f"models/{unique}")).count(
            ("update model", f"models/{unique}")
        )
        == 2
    )
