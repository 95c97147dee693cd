"""Aliases of model versions: ``churn@champion`` names whatever version the alias points at.

An alias is one row per (model, alias): moving it is a single upsert, so readers
see the old or the new version, never neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from modelyard.clock import now_ms
from modelyard.domain.events import Changed
from modelyard.domain.models import ModelRef, ModelVersion, Stage, check_alias
from modelyard.errors import Conflict, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for


class Aliases:
    """Mixin of ``Catalog``: point an alias at a version, or delete it."""

    db: Database

    if TYPE_CHECKING:  # provided by Catalog

        def resolve(self, conn: Connection, ref: ModelRef) -> tuple[int, int]: ...
        def get_version(self, ref: ModelRef | str) -> ModelVersion: ...
        def _model_id(self, conn: Connection, name: str) -> int: ...
        def model_workspace(self, conn: Connection, name: str) -> str: ...

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` in one atomic upsert."""
        check_alias(alias)
        with self.db.write() as conn:
            model_id, number = self.resolve(conn, ModelRef(name, version=version))
            stage = conn.execute(
                select(t.model_versions.c.stage).where(
                    t.model_versions.c.model_id == model_id, t.model_versions.c.version == number
                )
            ).scalar()
            if stage == Stage.RETIRED.value:
                raise Conflict(f"{name}/{number} is retired: no alias may point at it")
            before = _alias_version(conn, model_id, alias)
            stmt = insert_for(self.db.dialect, t.aliases)
            stmt = stmt.on_conflict_do_update(
                index_elements=["model_id", "alias"],
                set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
            )
            conn.execute(
                stmt,
                [{"model_id": model_id, "alias": alias, "version": number, "updated_at": now_ms()}],
            )
            change = Changed(
                "set alias",
                f"models/{name}@{alias}",
                self.model_workspace(conn, name),
                {"version": before},
                {"version": number},
            )
            publish(conn, change)
        return self.get_version(ModelRef(name, version=number))

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            model_id = self._model_id(conn, name)
            before = _alias_version(conn, model_id, alias)
            deleted = conn.execute(
                t.aliases.delete().where(
                    t.aliases.c.model_id == model_id, t.aliases.c.alias == alias
                )
            )
            if deleted.rowcount == 0:
                raise NotFound(f"model '{name}' has no alias '{alias}'")
            change = Changed(
                "delete alias",
                f"models/{name}@{alias}",
                self.model_workspace(conn, name),
                {"version": before},
                {"version": None},
            )
            publish(conn, change)


def _alias_version(conn: Connection, model_id: int, alias: str) -> int | None:
    a = t.aliases.c
    found = conn.execute(select(a.version).where(a.model_id == model_id, a.alias == alias))
    version = found.scalar()
    return None if version is None else int(version)
