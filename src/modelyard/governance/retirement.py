"""Retiring versions and models: only once nothing serves them; history is kept.

A retired version keeps its record, package, lineage and stage history, but
its stage never changes again, no alias may point at it and no endpoint may
route to it. Retiring a model retires every version (all or none, in one
transaction) and refuses new versions of it.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from modelyard.catalog.registry import Catalog
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.models import ModelRef, ModelVersion, Stage
from modelyard.errors import Conflict
from modelyard.serving.endpoints import EndpointService
from modelyard.store import schema as t
from modelyard.store.database import Database, publish


class Retirement:
    def __init__(self, db: Database, catalog: Catalog, endpoints: EndpointService) -> None:
        self.db = db
        self.catalog = catalog
        self.endpoints = endpoints

    def retire_version(self, ref: str, *, comment: str = "") -> ModelVersion:
        """Retire one version, as the current actor (``domain.actors``)."""
        parsed = ModelRef.parse(ref)
        actor = current_actor().user
        with self.db.write() as conn:
            model_id, number = self.catalog.resolve(conn, parsed)
            before = self._retire(conn, model_id, parsed.name, number, actor, comment)
            change = Changed(
                "retire version",
                f"models/{parsed.name}/{number}",
                self.catalog.model_workspace(conn, parsed.name),
                {"stage": before},
                {"stage": Stage.RETIRED.value, "comment": comment},
            )
            publish(conn, change)
        return self.catalog.get_version(ModelRef(parsed.name, version=number))

    def retire_model(self, name: str, *, comment: str = "") -> list[ModelVersion]:
        """Retire every version of ``name`` (all or none) and refuse new ones."""
        actor = current_actor().user
        with self.db.write() as conn:
            model_id = self.catalog.model_id(conn, name)
            v = t.model_versions.c
            numbers = conn.execute(
                select(v.version)
                .where(v.model_id == model_id, v.stage != Stage.RETIRED.value)
                .order_by(v.version)
            ).scalars()
            retired = list(numbers)
            for number in retired:
                self._retire(conn, model_id, name, number, actor, comment)
            conn.execute(
                update(t.models).where(t.models.c.id == model_id).values(retired_at=now_ms())
            )
            after = {"versions": retired, "comment": comment}
            workspace = self.catalog.model_workspace(conn, name)
            publish(conn, Changed("retire model", f"models/{name}", workspace, after=after))
        return self.catalog.search_versions(name)

    def _retire(
        self, conn: Connection, model_id: int, name: str, number: int, actor: str, comment: str
    ) -> str:
        """Retire one version; the stage it had."""
        serving = self.endpoints.serving(conn).get((name, number), [])
        if serving:
            raise Conflict(
                f"{name}/{number} is still deployed on endpoint(s) {', '.join(sorted(serving))}: "
                "route its traffic elsewhere first"
            )
        a = t.aliases.c
        aliases = conn.execute(
            select(a.alias).where(a.model_id == model_id, a.version == number)
        ).scalars()
        names = sorted(aliases)
        if names:
            raise Conflict(
                f"{name}/{number} is named by alias(es) {', '.join(names)}: move or delete "
                "them first"
            )
        v = t.model_versions.c
        row = conn.execute(
            select(v.id, v.stage).where(v.model_id == model_id, v.version == number)
        ).one()
        if row.stage == Stage.RETIRED.value:
            raise Conflict(f"{name}/{number} is already retired")
        conn.execute(
            update(t.model_versions)
            .where(v.id == row.id)
            .values(stage=Stage.RETIRED.value, updated_at=now_ms())
        )
        conn.execute(
            t.stage_changes.insert().values(
                version_id=row.id,
                from_stage=row.stage,
                to_stage=Stage.RETIRED.value,
                actor=actor,
                comment=comment or "retired",
                created_at=now_ms(),
            )
        )
        return str(row.stage)
