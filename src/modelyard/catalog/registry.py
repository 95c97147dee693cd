"""The model catalog: registered models, numbered versions, aliases, stages.

Versions are numbered per model by an atomic counter on the model row, so two
processes registering at once get distinct numbers. ``Catalog`` takes its alias
methods from ``aliases.py``, its stage transitions from ``stages.py`` and its reads
on an open connection (``resolve``, ``version_in``, ...) from ``versions.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, or_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from modelyard.artifacts.store import ArtifactStore
from modelyard.catalog import uploads
from modelyard.catalog.aliases import Aliases
from modelyard.catalog.packages import UPLOAD_TTL, UPLOADS, sweep_uploads, verified_manifest
from modelyard.catalog.stages import ApprovalGate, StageTransitions
from modelyard.catalog.versions import VersionReader
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed, Publisher, VersionRegistered
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.models import (
    SOURCE_RUN_TAG,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    Stage,
    check_model_name,
    parse_stage,
)
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.governance.workspaces import check_same, run_workspace
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for
from modelyard.tracking.dataset_registry import check_sensitivity
from modelyard.tracking.runs import stringify

MAX_PAGE = 1000  # the most models or versions one page may hold


# signs a version being registered: (conn, version id, package digest, resource, workspace)
Signer = Callable[[Connection, int, str, str, str], None]


class Catalog(VersionReader, Aliases, StageTransitions, Publisher):
    """Register, find and move model versions.

    >>> catalog.register_version("churn", source="runs/ab12.../artifacts/model", run_id="ab12...")
    >>> catalog.set_alias("churn", "champion", 3)
    >>> catalog.get_version("churn@champion").version
    3
    """

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        *,
        approval_gate: ApprovalGate | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.signer = signer
        # refuses a move to production the approval policy forbids (None: no policy)
        self.approval_gate = approval_gate

    # -- models ------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> RegisteredModel:
        check_model_name(name)
        try:
            with self.db.write() as conn:
                self._insert_model(conn, name, description, workspace)
                self._write_tags(conn, t.model_tags, "model_id", self._model_id(conn, name), tags)
                after = {"description": description, "tags": dict(tags or {})}
                publish(conn, Changed("create model", f"models/{name}", workspace, after=after))
        except DBIntegrityError:
            raise Conflict(f"model '{name}' already exists") from None
        return self.get_model(name)

    def _insert_model(self, conn: Connection, name: str, description: str, workspace: str) -> None:
        stamp = now_ms()
        conn.execute(
            t.models.insert().values(
                name=name,
                description=description,
                last_version=0,
                created_at=stamp,
                updated_at=stamp,
                workspace=workspace,
            )
        )

    def _ensure_model(self, conn: Connection, name: str, workspace: str) -> int:
        stmt = insert_for(self.db.dialect, t.models).on_conflict_do_nothing(index_elements=["name"])
        stamp = now_ms()
        conn.execute(
            stmt,
            [
                {
                    "name": name,
                    "description": "",
                    "last_version": 0,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "workspace": workspace,
                }
            ],
        )
        owner = conn.execute(select(t.models.c.workspace).where(t.models.c.name == name)).scalar()
        check_same(f"model '{name}'", owner, workspace)
        return self._model_id(conn, name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = conn.execute(select(t.models).where(t.models.c.name == name)).first()
            if row is None:
                raise NotFound(f"model '{name}' does not exist")
            return self._model_from_row(conn, row)

    def _model_from_row(self, conn: Connection, row: Any) -> RegisteredModel:
        return self._models_from_rows(conn, [row])[0]

    def list_models(
        self,
        name_contains: str | None = None,
        tag: str | None = None,
        *,
        workspace: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RegisteredModel]:
        """Models by name; ``tag`` is ``key`` or ``key=value``; only ``workspace``'s if given.

        A page: at most ``limit`` models, those named after ``after`` (the last name of the
        page before). Each page costs three queries, however many models it holds.
        """
        m = t.models.c
        query = select(t.models).order_by(m.name)
        if workspace is not None:
            query = query.where(m.workspace == workspace)
        if name_contains:
            query = query.where(m.name.contains(name_contains, autoescape=True))
        if tag:
            key, _, value = tag.partition("=")
            sub = select(t.model_tags.c.model_id).where(t.model_tags.c.key == key)
            if value:
                sub = sub.where(t.model_tags.c.value == value)
            query = query.where(m.id.in_(sub))
        if after is not None:
            query = query.where(m.name > after)
        if limit is not None:
            query = query.limit(check_page_size(limit))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            return self._models_from_rows(conn, list(rows))

    def _models_from_rows(self, conn: Connection, rows: list[Any]) -> list[RegisteredModel]:
        """The models of ``rows`` with their tags and aliases, read in one query each."""
        ids = [row.id for row in rows]
        tags: dict[int, dict[str, str]] = {}
        aliases: dict[int, dict[str, int]] = {}
        if ids:
            g, a = t.model_tags.c, t.aliases.c
            for model_id, key, value in conn.execute(
                select(g.model_id, g.key, g.value).where(g.model_id.in_(ids))
            ):
                tags.setdefault(model_id, {})[key] = value
            for model_id, alias, version in conn.execute(
                select(a.model_id, a.alias, a.version).where(a.model_id.in_(ids))
            ):
                aliases.setdefault(model_id, {})[alias] = version
        return [_model(row, tags.get(row.id, {}), aliases.get(row.id, {})) for row in rows]

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        with self.db.write() as conn:
            model_id, workspace = self._model_row(conn, name)
            before = self._described(conn, t.models, model_id, t.model_tags, "model_id", tags)
            values: dict[str, Any] = {"updated_at": now_ms()}
            if description is not None:
                values["description"] = description
            conn.execute(update(t.models).where(t.models.c.id == model_id).values(**values))
            self._write_tags(conn, t.model_tags, "model_id", model_id, tags)
            after = _change(description, tags)
            publish(
                conn,
                Changed("update model", f"models/{name}", workspace, _only(before, after), after),
            )
        return self.get_model(name)

    def _described(
        self,
        conn: Connection,
        table: Any,
        row_id: int,
        tag_table: Any,
        owner: str,
        tags: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The description of a model or version, and the old values of ``tags``."""
        description = conn.execute(select(table.c.description).where(table.c.id == row_id))
        old = conn.execute(
            select(tag_table.c.key, tag_table.c.value).where(
                getattr(tag_table.c, owner) == row_id, tag_table.c.key.in_(list(tags or {}))
            )
        )
        return {"description": description.scalar(), "tags": {key: value for key, value in old}}

    def _write_tags(
        self,
        conn: Connection,
        table: Any,
        owner: str,
        owner_id: int,
        tags: Mapping[str, Any] | None,
    ) -> None:
        if not tags:
            return
        stmt = insert_for(self.db.dialect, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[owner, "key"], set_={"value": stmt.excluded.value}
        )
        conn.execute(
            stmt, [{owner: owner_id, "key": k, "value": stringify(v)} for k, v in tags.items()]
        )

    # -- versions ----------------------------------------------------------

    def register_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> ModelVersion:
        """Register the package stored at artifact prefix ``source`` as the next version.

        Every file of the package is hash-checked first; the manifest digest is
        recorded, so a package changed later is refused when loaded. A new model
        is created in ``workspace``; the model and the run must both belong to it.
        A package whose manifest names a run this store does not hold (one exported
        from another yard) keeps that run as provenance, the tag ``source_run``,
        and is linked to no run here.
        The author is the current actor (``domain.actors``), never an argument.
        """
        check_model_name(name)
        created_by = current_actor().user
        with self.db.read() as conn:  # before reading the files: another's are not there
            uploads.check_registrable(conn, source, user=created_by)
        manifest, digest = verified_manifest(self.artifacts, source)
        manifest_run = manifest.get("run_id")
        if run_id and manifest_run and manifest_run != run_id:
            raise InvalidInput(
                f"package at '{source}' was written by run '{manifest_run}', not '{run_id}'"
            )
        with self.db.write() as conn:
            if not run_id and manifest_run and not self._holds_run(conn, manifest_run):
                tags = {**(tags or {}), SOURCE_RUN_TAG: manifest_run}
            else:
                run_id = run_id or manifest_run
            if run_id:
                self._check_run(conn, run_id, workspace)
            model_id = self._ensure_model(conn, name, workspace)
            retired = conn.execute(
                select(t.models.c.retired_at).where(t.models.c.id == model_id)
            ).scalar()
            if retired is not None:
                raise Conflict(f"model '{name}' is retired and takes no new versions")
            number = self._next_number(conn, model_id)
            stamp = now_ms()
            result = conn.execute(
                t.model_versions.insert().values(
                    model_id=model_id,
                    version=number,
                    stage=Stage.CANDIDATE.value,
                    run_id=run_id,
                    source=source,
                    package_digest=digest,
                    flavor=manifest["flavor"],
                    signature=manifest.get("signature"),
                    description=description,
                    created_by=created_by,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            version_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            uploads.registered(conn, source, user=created_by, version_id=version_id)
            self._write_tags(conn, t.version_tags, "version_id", version_id, tags)
            after = {"run_id": run_id, "digest": digest, "source": source}
            resource = f"models/{name}/{number}"
            publish(conn, Changed("register version", resource, workspace, after=after))
            if self.signer is not None:  # signs the digest computed above from the files
                self.signer(conn, version_id, digest, resource, workspace)
        self.publish(VersionRegistered(name, number, created_by))
        return self.get_version(ModelRef(name, version=number))

    def sweep_uploads(self, *, older_than: float = UPLOAD_TTL) -> list[str]:
        """Remove package uploads nobody registered, untouched for ``older_than``
        seconds (``catalog.packages.sweep_uploads``); the keys removed."""
        source = t.model_versions.c.source
        with self.db.read() as conn:
            rows = conn.execute(select(source).where(source.like(f"{UPLOADS}/%"))).scalars()
            registered = set(rows)
        return sweep_uploads(self.artifacts, registered, older_than=older_than)

    def stage_upload(self, upload_id: str, workspace: str = DEFAULT_WORKSPACE) -> str:
        """Claim ``upload_id`` for the current actor in ``workspace`` before its files are
        written (``catalog/uploads.py``); the upload's source prefix."""
        user = current_actor().user
        try:
            with self.db.write() as conn:
                uploads.stage(conn, upload_id, workspace=workspace, user=user)
        except DBIntegrityError:  # claimed by another request meanwhile: check that claim
            with self.db.write() as conn:
                uploads.stage(conn, upload_id, workspace=workspace, user=user)
        return f"{uploads.PREFIX}/{upload_id}"

    def _holds_run(self, conn: Connection, run_id: str) -> bool:
        return conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is not None

    def _check_run(self, conn: Connection, run_id: str, workspace: str) -> None:
        check_same(f"run '{run_id}'", run_workspace(conn, run_id), workspace)

    def _next_number(self, conn: Connection, model_id: int) -> int:
        conn.execute(
            update(t.models)
            .where(t.models.c.id == model_id)
            .values(last_version=t.models.c.last_version + 1, updated_at=now_ms())
        )
        return int(
            conn.execute(
                select(t.models.c.last_version).where(t.models.c.id == model_id)
            ).scalar_one()
        )

    def get_version(self, ref: ModelRef | str) -> ModelVersion:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as conn:
            return self.version_in(conn, ref)

    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
        workspace: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ModelVersion]:
        """Versions filtered by model name, stage, source run, tag (``key[=value]``), a
        sensitivity class of the data their run used (``pii``) or their model's workspace.

        Ordered by model name, then number. A page: at most ``limit`` versions, those
        after ``after`` (the last reference of the page before, ``churn/3``); each page
        costs three queries, however many versions it holds.
        """
        v = t.model_versions.c
        conditions: list[Any] = []
        if name:
            conditions.append(t.models.c.name == name)
        if workspace is not None:
            conditions.append(t.models.c.workspace == workspace)
        if stage:
            conditions.append(v.stage == parse_stage(stage).value)
        if run_id:
            conditions.append(v.run_id == run_id)
        if tag:
            key, _, value = tag.partition("=")
            sub = select(t.version_tags.c.version_id).where(t.version_tags.c.key == key)
            if value:
                sub = sub.where(t.version_tags.c.value == value)
            conditions.append(v.id.in_(sub))
        if sensitivity:
            u, d, c = t.run_datasets.c, t.datasets.c, t.dataset_classes.c
            runs = (
                select(u.run_id)
                .join(t.datasets, d.id == u.dataset_id)
                .join(t.dataset_classes, c.name == d.name)
                .where(cast(c.tags, Text).contains(f'"{check_sensitivity(sensitivity)}"'))
            )
            conditions.append(v.run_id.in_(runs))
        if after is not None:
            conditions.append(_after_version(after))
        size = None if limit is None else check_page_size(limit)
        with self.db.read() as conn:
            if name:
                self._model_id(conn, name)
            rows = self._version_rows(conn, conditions, limit=size)
            return self._versions_from_rows(conn, rows)

    def update_version(
        self,
        ref: ModelRef | str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.write() as conn:
            model_id, workspace = self._model_row(conn, ref.name)
            model_id, number = self.resolve(conn, ref)
            version_id = self._version_id(conn, model_id, number)
            before = self._described(
                conn, t.model_versions, version_id, t.version_tags, "version_id", tags
            )
            values: dict[str, Any] = {"updated_at": now_ms()}
            if description is not None:
                values["description"] = description
            conn.execute(
                update(t.model_versions).where(t.model_versions.c.id == version_id).values(**values)
            )
            self._write_tags(conn, t.version_tags, "version_id", version_id, tags)
            after = _change(description, tags)
            resource = f"models/{ref.name}/{number}"
            change = Changed("update version", resource, workspace, _only(before, after), after)
            publish(conn, change)
        return self.get_version(ModelRef(ref.name, version=number))


def check_page_size(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE}, got {limit!r}")
    return limit


def _after_version(after: str) -> Any:
    """The versions ordered after ``after`` (``churn/3``): by model name, then number."""
    ref = ModelRef.parse(after)
    if ref.version is None:
        raise InvalidInput(f"after must name a version (churn/3), got {after!r}")
    m, v = t.models.c, t.model_versions.c
    return or_(m.name > ref.name, and_(m.name == ref.name, v.version > ref.version))


def _model(row: Any, tags: dict[str, str], aliases: dict[str, int]) -> RegisteredModel:
    return RegisteredModel(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=row.last_version or None,
        tags=tags,
        aliases=aliases,
        workspace=row.workspace,
    )


def _only(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``before`` as far as ``after`` changes it (a description left as is is not said)."""
    said = dict(before)
    if after.get("description") is None:
        said.pop("description", None)
    return said


def _change(description: str | None, tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """What an update sets: the description when given, and the tags."""
    after: dict[str, Any] = {"tags": dict(tags or {})}
    if description is not None:
        after["description"] = description
    return after
