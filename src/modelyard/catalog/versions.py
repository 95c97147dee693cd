"""Reading models and versions on an open connection, inside the caller's transaction.

``VersionReader`` holds no state: every method reads through the connection it is
given, so a check can run inside another service's write transaction and see what
that transaction sees. ``Catalog`` reads through it; a service that needs these
reads but must not depend on the catalog itself (the approval gate, which the
catalog calls when a version moves to production) is given a plain one.

>>> with db.read() as conn:
...     VersionReader().version_in(conn, ModelRef.parse("churn@champion")).version
3
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from modelyard.domain.models import ModelRef, ModelVersion, Stage
from modelyard.errors import NotFound
from modelyard.store import schema as t


class VersionReader:
    """Models and versions as one transaction sees them: ids, owners, what a reference names."""

    def model_id(self, conn: Connection, name: str) -> int:
        """The id of model ``name`` on an open connection; ``NotFound`` if it does not exist."""
        return self._model_id(conn, name)

    def _model_id(self, conn: Connection, name: str) -> int:
        return self._model_row(conn, name)[0]

    def model_workspace(self, conn: Connection, name: str) -> str:
        """The workspace that owns model ``name``; ``NotFound`` if it does not exist."""
        return self._model_row(conn, name)[1]

    def _model_row(self, conn: Connection, name: str) -> tuple[int, str]:
        """The id of model ``name`` and the workspace that owns it."""
        m = t.models.c
        row = conn.execute(select(m.id, m.workspace).where(m.name == name)).first()
        if row is None:
            raise NotFound(f"model '{name}' does not exist")
        return int(row.id), str(row.workspace)

    def resolve(self, conn: Connection, ref: ModelRef) -> tuple[int, int]:
        """(model id, version number) that ``ref`` names right now."""
        model = conn.execute(select(t.models).where(t.models.c.name == ref.name)).first()
        if model is None:
            raise NotFound(f"model '{ref.name}' does not exist")
        if ref.alias:
            row = conn.execute(
                select(t.aliases.c.version).where(
                    t.aliases.c.model_id == model.id, t.aliases.c.alias == ref.alias
                )
            ).first()
            if row is None:
                raise NotFound(f"model '{ref.name}' has no alias '{ref.alias}'")
            return model.id, int(row.version)
        if ref.version is None:
            if not model.last_version:
                raise NotFound(f"model '{ref.name}' has no versions yet")
            return model.id, int(model.last_version)
        if not 1 <= ref.version <= model.last_version:
            latest = f"latest is {model.last_version}" if model.last_version else "it has none"
            raise NotFound(f"model '{ref.name}' has no version {ref.version} ({latest})")
        return model.id, ref.version

    def version_in(self, conn: Connection, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names, read on an open connection (inside a transaction)."""
        model_id, number = self.resolve(conn, ref)
        rows = self._version_rows(
            conn,
            [t.model_versions.c.model_id == model_id, t.model_versions.c.version == number],
        )
        if not rows:
            raise NotFound(f"model '{ref.name}' has no version {number}")
        return self._versions_from_rows(conn, rows)[0]

    def _version_rows(
        self, conn: Connection, conditions: list[Any], *, limit: int | None = None
    ) -> list[Any]:
        v, m = t.model_versions.c, t.models.c
        query = (
            select(t.model_versions, m.name.label("model"))
            .join(t.models, m.id == v.model_id)
            .where(*conditions)
            .order_by(m.name, v.version)
            .limit(limit)
        )
        return list(conn.execute(query).all())

    def _versions_from_rows(self, conn: Connection, rows: list[Any]) -> list[ModelVersion]:
        ids = [r.id for r in rows]
        tags: dict[int, dict[str, str]] = {}
        for vid, key, value in conn.execute(
            select(t.version_tags).where(t.version_tags.c.version_id.in_(ids))
        ):
            tags.setdefault(vid, {})[key] = value
        aliases: dict[tuple[int, int], list[str]] = {}
        model_ids = {r.model_id for r in rows}
        for model_id, alias, version, _ in conn.execute(
            select(t.aliases).where(t.aliases.c.model_id.in_(model_ids)).order_by(t.aliases.c.alias)
        ):
            aliases.setdefault((model_id, version), []).append(alias)
        return [
            ModelVersion(
                model=r.model,
                version=r.version,
                stage=Stage(r.stage),
                source=r.source,
                package_digest=r.package_digest,
                flavor=r.flavor,
                created_at=r.created_at,
                updated_at=r.updated_at,
                run_id=r.run_id,
                description=r.description,
                created_by=r.created_by,
                signature=r.signature,
                tags=tags.get(r.id, {}),
                aliases=aliases.get((r.model_id, r.version), []),
            )
            for r in rows
        ]

    def _version_id(self, conn: Connection, model_id: int, number: int) -> int:
        v = t.model_versions.c
        return int(
            conn.execute(
                select(v.id).where(v.model_id == model_id, v.version == number)
            ).scalar_one()
        )
