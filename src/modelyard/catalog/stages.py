"""Stage transitions of model versions: candidate, staging, production, archived, retired.

Which moves are allowed is the table in ``domain/models.py``; every move is
recorded in ``stage_changes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.models import ModelRef, ModelVersion, Stage, check_transition, parse_stage
from modelyard.errors import Conflict
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

# Refuses (PermissionDenied) a version the approval policy does not let through, inside the
# caller's write transaction: (connection, version, what for: "production", "taking traffic").
ApprovalGate = Callable[[Connection, ModelRef, str], None]


class StageTransitions:
    """Mixin of ``Catalog``: move versions between stages and read their stage history."""

    db: Database
    approval_gate: ApprovalGate | None

    if TYPE_CHECKING:  # provided by Catalog

        def resolve(self, conn: Connection, ref: ModelRef) -> tuple[int, int]: ...
        def get_version(self, ref: ModelRef | str) -> ModelVersion: ...
        def _version_id(self, conn: Connection, model_id: int, number: int) -> int: ...
        def model_workspace(self, conn: Connection, name: str) -> str: ...

    def transition_stage(
        self,
        ref: ModelRef | str,
        stage: Stage | str,
        *,
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        """Move a version to ``stage`` if the lifecycle allows it; history is kept.

        With ``archive_others``, other versions already in that stage move to
        archived in the same transaction (one production version at a time); if an
        alias names one of them, nothing moves (``Conflict`` naming the alias), so
        no alias is left on a version that endpoints refuse. The move is recorded as
        the current actor's (``domain.actors``).
        """
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        target = parse_stage(stage) if isinstance(stage, str) else stage
        actor = current_actor().user
        with self.db.write() as conn:
            model_id, number = self.resolve(conn, ref)
            before = self._move(conn, model_id, ref.name, number, target, actor, comment)
            archived: list[int] = []
            if archive_others and target is not Stage.ARCHIVED:
                archived = self._archive_others(conn, model_id, ref.name, number, target, actor)
            after = {
                "stage": target.value,
                "comment": comment,
                "archive_others": archive_others,
                "archived": archived,
            }
            change = Changed(
                "transition stage",
                f"models/{ref.name}/{number}",
                self.model_workspace(conn, ref.name),
                {"stage": before.value},
                after,
            )
            publish(conn, change)
        return self.get_version(ModelRef(ref.name, version=number))

    def _move(
        self,
        conn: Connection,
        model_id: int,
        name: str,
        number: int,
        target: Stage,
        actor: str,
        comment: str,
    ) -> Stage:
        """Move one version; the stage it left."""
        v = t.model_versions.c
        row = conn.execute(
            select(v.id, v.stage).where(v.model_id == model_id, v.version == number)
        ).one()
        check_transition(name, number, Stage(row.stage), target)
        if target is Stage.PRODUCTION and self.approval_gate is not None:
            self.approval_gate(conn, ModelRef(name, version=number), "production")
        stamp = now_ms()
        moved = conn.execute(
            update(t.model_versions)
            .where(v.id == row.id, v.stage == row.stage)
            .values(stage=target.value, updated_at=stamp)
        )
        if moved.rowcount != 1:
            raise Conflict(f"model '{name}' version {number} changed stage concurrently; try again")
        conn.execute(
            t.stage_changes.insert().values(
                version_id=row.id,
                from_stage=row.stage,
                to_stage=target.value,
                actor=actor,
                comment=comment,
                created_at=stamp,
            )
        )
        return Stage(row.stage)

    def _archive_others(
        self, conn: Connection, model_id: int, name: str, number: int, stage: Stage, actor: str
    ) -> list[int]:
        v = t.model_versions.c
        others = conn.execute(
            select(v.version).where(
                v.model_id == model_id, v.stage == stage.value, v.version != number
            )
        ).scalars()
        archived = list(others)
        for other in archived:
            self._refuse_aliased(conn, model_id, name, other)
            self._move(
                conn, model_id, name, other, Stage.ARCHIVED, actor, f"replaced by version {number}"
            )
        return archived

    def _refuse_aliased(self, conn: Connection, model_id: int, name: str, number: int) -> None:
        a = t.aliases.c
        aliases = sorted(
            conn.execute(
                select(a.alias).where(a.model_id == model_id, a.version == number)
            ).scalars()
        )
        if aliases:
            named = ", ".join(f"'{alias}'" for alias in aliases)
            plural = "es" if len(aliases) > 1 else ""
            raise Conflict(
                f"version {number} of '{name}' is the target of alias{plural} {named}: "
                f"move or delete the alias{plural} first"
            )

    def stage_history(self, ref: ModelRef | str) -> list[dict[str, Any]]:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        s = t.stage_changes.c
        with self.db.read() as conn:
            model_id, number = self.resolve(conn, ref)
            version_id = self._version_id(conn, model_id, number)
            rows = conn.execute(
                select(t.stage_changes).where(s.version_id == version_id).order_by(s.id)
            ).all()
        return [
            {
                "from": r.from_stage,
                "to": r.to_stage,
                "actor": r.actor,
                "comment": r.comment,
                "at": r.created_at,
            }
            for r in rows
        ]
