from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelyard.artifacts.store import iter_files
from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.models import ModelRef, Stage
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotFound, StorageUnavailable
from modelyard.packaging import upload_order, write_package
from modelyard.tracking.runs import run_artifact_key
from tests.actors import as_user
from tests.disk import SmallDisk, small_disk
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = load_iris(as_frame=True).frame
    features = frame.drop(columns="target")
    model = LogisticRegression(max_iter=500).fit(features, frame["target"])
    directory = tmp_path_factory.mktemp("pkg") / "model"
    write_package(model, directory, input_example=features.head(3))
    return directory


def _store_package(services: Services, package_dir: Path, workspace: str = "default") -> str:
    prefix = services.catalog.stage_upload(uuid.uuid4().hex, workspace)
    for relative, path in iter_files(package_dir):
        with path.open("rb") as handle:
            services.artifacts.put(f"{prefix}/{relative}", handle)
    return prefix


def _register(services: Services, package_dir: Path, name: str = "iris", **kw: object):  # type: ignore[no-untyped-def]
    source = _store_package(services, package_dir)
    return services.catalog.register_version(name, source=source, **kw)  # type: ignore[arg-type]


def test_versions_are_numbered_per_model(services: Services, package_dir: Path) -> None:
    first = _register(services, package_dir)
    second = _register(services, package_dir, description="second")
    other = _register(services, package_dir, name="other")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.stage is Stage.CANDIDATE and first.flavor == "sklearn"
    assert first.signature is not None and len(first.package_digest) == 64
    assert services.catalog.get_version("iris").version == 2  # a bare name is the latest
    assert services.catalog.get_model("iris").latest_version == 2
    with pytest.raises(NotFound, match=r"model 'iris' has no version 7 \(latest is 2\)"):
        services.catalog.get_version("iris/7")


def test_register_refuses_a_tampered_package(services: Services, package_dir: Path) -> None:
    source = _store_package(services, package_dir)
    local = services.artifacts.local_path(source)
    assert local is not None
    victim = next(p for p in local.rglob("*") if p.is_file() and p.name != "manifest.json")
    victim.write_bytes(victim.read_bytes() + b"!")
    with pytest.raises(IntegrityError):
        services.catalog.register_version("iris", source=source)
    with pytest.raises(NotFound):
        services.catalog.get_model("iris")


def test_an_upload_is_registered_only_by_the_user_who_staged_it(
    services: Services, package_dir: Path
) -> None:
    services.workspaces.create("fraud")
    source = as_user("ana", _store_package, services, package_dir, "fraud")
    upload_id = source.split("/")[1]
    catalog = services.catalog
    for workspace in ("fraud", "default"):
        with pytest.raises(NotFound, match=f"no package staged as '{source}' by user 'bob'"):
            as_user("bob", catalog.register_version, "iris", source=source, workspace=workspace)
        with pytest.raises(Conflict, match="is taken by another upload"):
            as_user("bob", catalog.stage_upload, upload_id, workspace)
    with pytest.raises(NotFound):  # a folder inside another's upload is theirs too
        as_user("bob", catalog.register_version, "iris", source=f"{source}/.", workspace="fraud")
    as_user("ana", catalog.stage_upload, upload_id, "default")  # still hers, from anywhere
    version = as_user("ana", catalog.register_version, "iris", source=source, workspace="fraud")
    assert version.version == 1
    with pytest.raises(Conflict, match="registered version's package; its files cannot change"):
        as_user("ana", catalog.stage_upload, upload_id, "fraud")
    with pytest.raises(InvalidInput, match="32 lowercase hex digits"):
        catalog.stage_upload("not-hex")


def test_aliases_move_atomically_and_resolve(services: Services, package_dir: Path) -> None:
    for _ in range(3):
        _register(services, package_dir)
    catalog = services.catalog
    assert catalog.set_alias("iris", "champion", 1).aliases == ["champion"]
    catalog.set_alias("iris", "champion", 3)
    assert catalog.get_version("iris@champion").version == 3
    assert catalog.get_model("iris").aliases == {"champion": 3}
    assert catalog.get_version("iris/1").aliases == []
    with pytest.raises(NotFound, match="no version 9"):
        catalog.set_alias("iris", "champion", 9)
    with pytest.raises(InvalidInput, match="invalid alias"):
        catalog.set_alias("iris", "latest", 1)
    catalog.delete_alias("iris", "champion")
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        catalog.get_version(ModelRef("iris", alias="champion"))


def test_lifecycle_allows_only_legal_moves_and_keeps_history(
    services: Services, package_dir: Path
) -> None:
    _register(services, package_dir)
    _register(services, package_dir)
    catalog = services.catalog
    with pytest.raises(Conflict, match="cannot move from candidate to production"):
        catalog.transition_stage("iris/1", "production")
    catalog.transition_stage("iris/1", "staging")
    as_user("ana", catalog.transition_stage, "iris/1", "production", comment="ship it")
    catalog.transition_stage("iris/2", "staging")
    promoted = catalog.transition_stage("iris/2", Stage.PRODUCTION, archive_others=True)
    assert promoted.stage is Stage.PRODUCTION
    assert catalog.get_version("iris/1").stage is Stage.ARCHIVED
    history = catalog.stage_history("iris/1")
    assert [(h["from"], h["to"]) for h in history] == [
        ("candidate", "staging"),
        ("staging", "production"),
        ("production", "archived"),
    ]
    assert history[1]["actor"] == "ana" and history[1]["comment"] == "ship it"
    with pytest.raises(InvalidInput, match="unknown stage 'live'"):
        catalog.transition_stage("iris/2", "live")


def test_tags_descriptions_and_search(services: Services, package_dir: Path) -> None:
    _register(services, package_dir, tags={"team": "fraud"})
    _register(services, package_dir, name="churn")
    catalog = services.catalog
    catalog.update_model("iris", description="flowers", tags={"owner": "ana"})
    catalog.update_version("iris/1", description="baseline", tags={"team": "risk"})
    assert catalog.get_model("iris").description == "flowers"
    assert catalog.get_version("iris/1").tags == {"team": "risk"}
    assert [m.name for m in catalog.list_models()] == ["churn", "iris"]
    assert [m.name for m in catalog.list_models(name_contains="ir")] == ["iris"]
    assert [m.name for m in catalog.list_models(tag="owner=ana")] == ["iris"]
    assert [v.ref for v in catalog.search_versions(tag="team=risk")] == ["iris/1"]
    assert [v.ref for v in catalog.search_versions(stage="candidate")] == ["churn/1", "iris/1"]
    with pytest.raises(Conflict, match="model 'iris' already exists"):
        catalog.create_model("iris")
    with pytest.raises(InvalidInput, match="invalid model name"):
        catalog.create_model("bad name!")


# -- an artifact store whose disk is full or read-only ------------------------------------


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[tuple[SmallDisk, Services]]:
    """Services whose artifact store is a 1 MiB tmpfs (the database is elsewhere)."""
    home = tmp_path / "home"
    with small_disk(tmp_path / "artifacts", "1m") as disk:
        services = bootstrap(Settings(home, f"sqlite:///{home / 'modelyard.db'}", str(disk.path)))
        try:
            yield disk, services
        finally:
            services.close()


def _iris() -> tuple[LogisticRegression, Any]:
    frame = load_iris(as_frame=True).frame
    features = frame.drop(columns="target")
    return LogisticRegression(max_iter=500).fit(features, frame["target"]), features.head(3)


def test_a_full_or_read_only_artifact_store_refuses_a_version_and_registers_nothing(
    small_store: tuple[SmallDisk, Services],
) -> None:
    disk, services = small_store
    yard = Yard(LocalBackend(services))
    model, example = _iris()
    filler = disk.fill()
    full = r"^artifact store cannot be written: no space left on device \(artifact 'uploads/"
    with pytest.raises(StorageUnavailable, match=full) as refused:
        yard.models.register(model, name="iris", input_example=example)
    assert refused.value.status_code == 507
    assert services.catalog.list_models() == []  # no model, no version
    assert services.artifacts.list("uploads") == []  # the cut-short upload is gone
    disk.free(filler)
    assert yard.models.register(model, name="iris", input_example=example).version == 1

    disk.remount(read_only=True)
    with pytest.raises(StorageUnavailable, match="cannot be written: read-only file system"):
        yard.models.register(model, name="iris", input_example=example)
    assert services.catalog.get_model("iris").latest_version == 1
    disk.remount(read_only=False)
    assert yard.models.register(model, name="iris", input_example=example).version == 2


def test_a_package_cut_short_by_a_full_disk_has_no_manifest_and_is_no_package(
    small_store: tuple[SmallDisk, Services],
) -> None:
    disk, services = small_store
    yard = Yard(LocalBackend(services))
    model, example = _iris()
    reserve = disk.path / ".reserve"
    reserve.write_bytes(bytes(2 * 4096))  # two pages: the package's first two files fit
    filler = disk.fill()
    reserve.unlink()
    cut_short = pytest.raises(StorageUnavailable, match="'runs/.*/model/manifest.json'")
    with yard.start_run("disk", capture_env=False) as run, cut_short:
        run.log_model(model, name="iris", input_example=example)
    stored = [a.path for a in yard.runs.artifacts(run.id)]
    assert stored == ["model/input_example.json", "model/model.pkl"]  # the manifest comes last
    with pytest.raises(NotFound, match="manifest.json is missing"):
        services.catalog.register_version("iris", source=run_artifact_key(run.id, "model"))
    assert services.catalog.list_models() == []
    disk.free(filler)


def _age(folder: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (stamp, stamp))


def test_sweeping_removes_only_old_uploads_nobody_registered(
    services: Services, package_dir: Path
) -> None:
    registered = _register(services, package_dir)
    abandoned = _store_package(services, package_dir)
    half_key = services.catalog.stage_upload(uuid.uuid4().hex)
    half = services.artifacts.put(f"{half_key}/model.pkl", io.BytesIO(b"half"))
    recent = _store_package(services, package_dir)
    root = Path(services.artifacts.root)
    for key in (registered.source, abandoned, half_key):
        _age(root / key, days=2)
    assert half[1] == 4
    assert sorted(services.catalog.sweep_uploads()) == sorted([abandoned, half_key])
    assert sorted(p.name for p in (root / "uploads").iterdir()) == sorted(
        key.removeprefix("uploads/") for key in (registered.source, recent)
    )
    assert services.catalog.get_version("iris/1").source == registered.source
    assert services.catalog.register_version("iris", source=recent).version == 2
    assert services.catalog.sweep_uploads(older_than=0) == []  # both are versions now


def test_a_package_is_uploaded_manifest_last(package_dir: Path) -> None:
    names = [relative for relative, _ in upload_order(package_dir)]
    assert names[-1] == "manifest.json"
    assert sorted(names) == sorted(relative for relative, _ in iter_files(package_dir))
