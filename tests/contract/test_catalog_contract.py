"""One catalog suite, run against the embedded and the remote backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import Yard
from modelyard.domain.models import Stage
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotFound, SignatureError
from tests.conftest import embedded_yard


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series, LogisticRegression]:
    bunch = load_iris(as_frame=True)
    features = bunch.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=1000).fit(features, bunch.target)
    return features, bunch.target, model


class Constant:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), 7)


def test_register_from_run_and_from_object(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    with yard.start_run(unique) as run:
        first = run.log_model(model, name=unique, input_example=features.head(3))
    second = yard.models.register(model, name=unique, input_example=features.head(3))
    third = yard.models.register(Constant(), name=unique, input_example={"x": [1.0]})
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert first.run_id == run.id and second.run_id is None
    assert (first.flavor, third.flavor) == ("sklearn", "pyfunc")
    assert first.signature and [c["name"] for c in first.signature["inputs"]] == list(
        features.columns
    )
    assert yard.models.get(unique).latest_version == 3
    assert [v.ref for v in yard.models.versions(run_id=run.id)] == [f"{unique}/1"]
    artifacts = [a.path for a in yard.backend.list_artifacts(run.id)]
    assert "model/manifest.json" in artifacts


def test_load_predicts_like_the_original(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    version = yard.models.register(model, name=unique, input_example=features.head(3))
    loaded = yard.models.load(version.ref)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    records = features.head(2).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(features.head(2)))
    with pytest.raises(SignatureError, match="column 'petal_width': missing"):
        loaded.predict(features.drop(columns="petal_width"))


def test_nulls_strings_and_booleans_are_refused_before_the_model_sees_them(  # type: ignore[no-untyped-def]
    yard: Yard, unique: str, iris
) -> None:
    features, _, model = iris
    version = yard.models.register(model, name=unique, input_example=features.head(3))
    loaded = yard.models.load(version.ref)
    rows = features.head(3).to_dict(orient="records")
    for value, problem in [
        (None, "null value at row 2 but the column is not nullable"),
        (float("nan"), "null value at row 2 but the column is not nullable"),
        ("12.5", "expected float, got '12.5' at row 2"),
        (True, "expected float, got True at row 2"),
    ]:
        bad = [*rows[:2], {**rows[2], "petal_width": value}]
        with pytest.raises(SignatureError) as refused:
            loaded.predict(bad)
        assert str(refused.value) == f"column 'petal_width': {problem}"
    with pytest.raises(SignatureError, match="column 'sepal_length': null value at row 1"):
        loaded.predict(features.head(3).assign(sepal_length=[1.0, np.nan, 2.0]))


def test_aliases(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    for _ in range(2):
        yard.models.register(model, name=unique, input_example=features.head(1))
    yard.models.set_alias(unique, "champion", 1)
    assert yard.models.version(f"{unique}@champion").version == 1
    moved = yard.models.set_alias(unique, "champion", 2)
    assert moved.aliases == ["champion"] and yard.models.get(unique).aliases == {"champion": 2}
    assert yard.models.version(unique).version == 2  # bare name: latest
    with pytest.raises(NotFound, match=rf"model '{unique}' has no version 5 \(latest is 2\)"):
        yard.models.set_alias(unique, "champion", 5)
    with pytest.raises(InvalidInput, match="invalid alias"):
        yard.models.set_alias(unique, "9lives", 1)
    yard.models.delete_alias(unique, "champion")
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        yard.models.version(f"{unique}@champion")


def test_stages(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    for _ in range(2):
        yard.models.register(model, name=unique, input_example=features.head(1))
    with pytest.raises(Conflict, match="cannot move from candidate to production"):
        yard.models.transition(f"{unique}/1", "production")
    yard.models.transition(f"{unique}/1", "staging")
    yard.models.transition(f"{unique}/1", "production", comment="validated")
    yard.models.transition(f"{unique}/2", "staging")
    promoted = yard.models.transition(f"{unique}/2", "production", archive_others=True)
    assert promoted.stage is Stage.PRODUCTION
    assert yard.models.version(f"{unique}/1").stage is Stage.ARCHIVED
    history = yard.models.stage_history(f"{unique}/1")
    assert [h["to"] for h in history] == ["staging", "production", "archived"]
    assert history[1]["comment"] == "validated"
    assert [v.version for v in yard.models.versions(unique, stage="production")] == [2]


def test_archiving_others_refuses_to_archive_an_alias_target(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    for _ in range(3):
        yard.models.register(model, name=unique, input_example=features.head(1))
    for number in (2, 3):
        yard.models.transition(f"{unique}/{number}", "staging")
    yard.models.transition(f"{unique}/2", "production")
    yard.models.set_alias(unique, "champion", 2)
    with pytest.raises(
        Conflict,
        match=rf"version 2 of '{unique}' is the target of alias 'champion': move or delete "
        "the alias first",
    ):
        yard.models.transition(f"{unique}/3", "production", archive_others=True)
    assert yard.models.version(f"{unique}/2").stage is Stage.PRODUCTION  # nothing changed
    assert yard.models.version(f"{unique}/3").stage is Stage.STAGING
    assert [h["to"] for h in yard.models.stage_history(f"{unique}/3")] == ["staging"]
    yard.models.set_alias(unique, "champion", 3)
    promoted = yard.models.transition(f"{unique}/3", "production", archive_others=True)
    assert promoted.stage is Stage.PRODUCTION
    assert yard.models.version(f"{unique}/2").stage is Stage.ARCHIVED


def test_tags_descriptions_and_search(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    yard.models.register(model, name=unique, input_example=features.head(1), tags={"team": "risk"})
    yard.models.update(unique, description="flower classifier", tags={"owner": unique})
    yard.models.update_version(f"{unique}/1", description="baseline")
    assert yard.models.get(unique).description == "flower classifier"
    assert yard.models.version(f"{unique}/1").description == "baseline"
    assert [m.name for m in yard.models.list(tag=f"owner={unique}")] == [unique]
    assert [m.name for m in yard.models.list(name_contains=unique)] == [unique]
    assert [v.ref for v in yard.models.versions(unique, tag="team=risk")] == [f"{unique}/1"]
    with pytest.raises(Conflict, match="already exists"):
        yard.models.create(unique)
    with pytest.raises(InvalidInput, match="invalid model name"):
        yard.models.register(model, name="no spaces please", input_example=features.head(1))


def test_export_import_round_trip(yard: Yard, unique: str, iris, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    yard.models.register(model, name=unique, input_example=features.head(1), description="v1")
    yard.models.set_alias(unique, "champion", 1)
    exported = yard.models.export(f"{unique}@champion", tmp_path / "export")
    with pytest.raises(Conflict, match="not empty"):
        yard.models.export(f"{unique}@champion", tmp_path / "export")
    other = embedded_yard(tmp_path / "other-home")
    try:
        imported = other.models.import_(exported)
        assert imported.ref == f"{unique}/1" and imported.description == "v1"
        assert imported.tags["imported_from"] == f"{unique}/1"
        assert imported.package_digest == yard.models.version(f"{unique}/1").package_digest
        loaded = other.models.load(imported.ref)
        np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    finally:
        other.close()


def test_a_version_logged_by_a_run_imports_into_another_store(  # type: ignore[no-untyped-def]
    yard: Yard, unique: str, iris, tmp_path: Path
) -> None:
    features, _, model = iris
    source = embedded_yard(tmp_path / "source-home")
    try:
        with source.start_run(unique) as run:
            run.log_model(model, name=unique, input_example=features.head(3))
        exported = source.models.export(f"{unique}/1", tmp_path / "export")
    finally:
        source.close()
    imported = yard.models.import_(exported)  # the run exists only in the source store
    assert imported.ref == f"{unique}/1" and imported.run_id is None
    assert imported.tags["source_run"] == run.id
    assert imported.tags["imported_from"] == f"{unique}/1"
    graph = yard.lineage(f"version:{imported.ref}")
    assert graph.upstream() == []
    version_node = next(n for n in graph.nodes if n.ref == graph.root)
    assert version_node.attributes["source_run"] == run.id
    loaded = yard.models.load(imported.ref)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    with pytest.raises(NotFound, match=f"run '{run.id}' does not exist"):
        yard.models.register(model, name=unique, input_example=features.head(1), run_id=run.id)


def test_tampered_package_is_refused_on_load(
    yard: Yard,
    unique: str,
    iris: tuple[pd.DataFrame, pd.Series, LogisticRegression],
    request: pytest.FixtureRequest,
    home: Path,
) -> None:
    features, _, model = iris
    version = yard.models.register(model, name=unique, input_example=features.head(1))
    remote = request.node.callspec.params["yard"] == "remote"
    store_home = request.getfixturevalue("server").home if remote else home
    model_file = store_home / "artifacts" / version.source / "model.pkl"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="fails its sha256 check"):
        yard.models.load(version.ref)


def test_models_and_versions_come_in_pages(yard: Yard, unique: str, iris) -> None:  # type: ignore[no-untyped-def]
    features, _, model = iris
    names = [f"{unique}-{letter}" for letter in "abc"]
    for name in names:
        for _ in range(2):
            yard.models.register(model, name=name, input_example=features.head(1))
    first = yard.models.list(name_contains=unique, limit=2)
    rest = yard.models.list(name_contains=unique, limit=2, after=first[-1].name)
    assert [m.name for m in first + rest] == names and len(rest) == 1
    assert rest[0].latest_version == 2
    refs, after = [], None
    while page := yard.models.versions(limit=4, after=after):
        refs += [v.ref for v in page if v.model.startswith(unique)]
        after = page[-1].ref
    assert refs == [f"{name}/{number}" for name in names for number in (1, 2)]
    one_model = yard.models.versions(names[1], limit=1, after=f"{names[1]}/1")
    assert [v.ref for v in one_model] == [f"{names[1]}/2"]
    with pytest.raises(InvalidInput, match="limit must be a whole number from 1 to 1000"):
        yard.models.list(limit=0)
    with pytest.raises(InvalidInput, match="after must name a version"):
        yard.models.versions(limit=5, after=names[0])
