"""Datasets that runs used: recorded once per (name, content), linked by role.

Logging a dataset and classifying one publish a ``Changed`` in their transaction
(names, fingerprints, counts and classes; never the data).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any, BinaryIO

from sqlalchemy import Connection, select

from modelyard.artifacts.store import ArtifactStore
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.datasets import DATASET_ROLES, Column, Dataset, DatasetUse
from modelyard.domain.events import Changed
from modelyard.errors import InvalidInput, NotFound
from modelyard.governance.workspaces import run_workspace
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def _check_fingerprint(fingerprint: str) -> None:
    if not _FINGERPRINT.match(fingerprint):
        raise InvalidInput(f"dataset fingerprint {fingerprint!r} is not a sha256 hex digest")


def dataset_key(fingerprint: str) -> str:
    return f"datasets/{fingerprint}.parquet"


def _dataset_from_row(row: Any) -> Dataset:
    return Dataset(
        id=row.id,
        name=row.name,
        fingerprint=row.fingerprint,
        row_count=row.row_count,
        columns=[Column(**c) for c in row.columns],
        uri=row.uri,
        stored=row.stored,
        created_at=row.created_at,
    )


class DatasetRegistry:
    """Record a dataset against a run; optionally keep a copy of its content."""

    def __init__(self, db: Database, artifacts: ArtifactStore) -> None:
        self.db = db
        self.artifacts = artifacts

    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        role: str,
        fingerprint: str,
        row_count: int,
        columns: list[Column],
        uri: str | None = None,
        content: BinaryIO | None = None,
        stored: bool = False,
    ) -> Dataset:
        """Link a dataset to ``run_id``; with ``content`` (Parquet bytes) it is stored too.

        ``stored`` says the content was already uploaded with ``store_content``.
        """
        if role not in DATASET_ROLES:
            raise InvalidInput(f"dataset role {role!r} is not one of {', '.join(DATASET_ROLES)}")
        if not name:
            raise InvalidInput("a dataset needs a name")
        _check_fingerprint(fingerprint)
        if content is not None:
            uri = self.store_content(fingerprint, content)
        elif stored:
            uri = self._uploaded(fingerprint)
        kept = content is not None or stored
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "fingerprint": fingerprint,
            "row_count": row_count,
            "columns": [{"name": c.name, "type": c.type} for c in columns],
            "uri": uri,
            "stored": kept,
            "created_at": now_ms(),
        }
        with self.db.write() as conn:
            # a dataset is first owned by the team of the first run that logs it
            row["workspace"] = workspace = run_workspace(conn, run_id)
            insert = insert_for(self.db.dialect, t.datasets).on_conflict_do_nothing(
                index_elements=["name", "fingerprint"]
            )
            conn.execute(insert, [row])
            found = conn.execute(
                select(t.datasets).where(
                    t.datasets.c.name == name, t.datasets.c.fingerprint == fingerprint
                )
            ).one()
            if kept and not found.stored:
                conn.execute(
                    t.datasets.update()
                    .where(t.datasets.c.id == found.id)
                    .values(stored=True, uri=uri)
                )
            link = insert_for(self.db.dialect, t.run_datasets).on_conflict_do_nothing()
            conn.execute(link, [{"run_id": run_id, "dataset_id": found.id, "role": role}])
            after = {
                "name": name,
                "role": role,
                "fingerprint": fingerprint,
                "row_count": found.row_count,
                "columns": len(found.columns),
                "stored": kept or bool(found.stored),
            }
            resource = f"runs/{run_id}/datasets/{name}"
            publish(conn, Changed("log dataset", resource, workspace, after=after))
        return self.get_dataset(found.id)

    def store_content(self, fingerprint: str, content: BinaryIO) -> str:
        """Keep a dataset's Parquet content, shared by every dataset with that fingerprint."""
        _check_fingerprint(fingerprint)
        self.artifacts.put(dataset_key(fingerprint), content)
        return dataset_key(fingerprint)

    def _uploaded(self, fingerprint: str) -> str:
        key = dataset_key(fingerprint)
        if key not in self.artifacts.list("datasets"):
            raise InvalidInput(f"the content of dataset {fingerprint} was not uploaded first")
        return key

    def get_dataset(self, dataset_id: str) -> Dataset:
        with self.db.read() as conn:
            row = conn.execute(select(t.datasets).where(t.datasets.c.id == dataset_id)).first()
        if row is None:
            raise NotFound(f"dataset '{dataset_id}' does not exist")
        return _dataset_from_row(row)

    def run_datasets(self, run_id: str) -> list[DatasetUse]:
        d, link = t.datasets.c, t.run_datasets.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.datasets, link.role)
                .join(t.run_datasets, link.dataset_id == d.id)
                .where(link.run_id == run_id)
                .order_by(link.role, d.name)
            ).all()
        return [DatasetUse(dataset=_dataset_from_row(r), role=r.role) for r in rows]

    def versions(self, key: str, *, workspace: str | None = None) -> list[Dataset]:
        """The content versions of dataset name ``key``, or the datasets with fingerprint
        ``key``, newest first (of ``workspace`` only, when given)."""
        d = t.datasets.c
        query = select(t.datasets).where((d.name == key) | (d.fingerprint == key))
        if workspace is not None:
            query = query.where(d.workspace == workspace)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(d.created_at.desc(), d.id)).all()
        if not rows:
            raise NotFound(f"dataset '{key}' does not exist (a name or a content fingerprint)")
        return [_dataset_from_row(row) for row in rows]

    def open_content(
        self, name: str, fingerprint: str, *, workspace: str | None = None
    ) -> BinaryIO:
        """The stored Parquet content of dataset ``name`` with ``fingerprint``; a dataset
        logged by reference (a file path, or ``store=False``) has none here."""
        d = t.datasets.c
        query = select(t.datasets).where(d.name == name, d.fingerprint == fingerprint)
        if workspace is not None:
            query = query.where(d.workspace == workspace)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"dataset '{name}' has no content version {fingerprint}")
        if not row.stored:
            where = f" (it lives at {row.uri})" if row.uri else ""
            raise NotFound(
                f"the yard does not keep the content of dataset '{name}' {fingerprint[:12]}: "
                f"it was logged by reference{where}"
            )
        return self.artifacts.open(dataset_key(fingerprint))

    # -- sensitivity ----------------------------------------------------------

    def classify(self, name: str, tags: list[str]) -> list[str]:
        """Set the sensitivity classes of every content version of dataset ``name``.

        An empty list clears them. Classes propagate along lineage to the
        versions trained on the data and the endpoints that serve them. Who set
        them is the current actor (``domain.actors``).
        """
        clean = sorted({check_sensitivity(tag) for tag in tags})
        with self.db.write() as conn:
            workspace = _dataset_workspace(conn, name)
            before = dataset_classes(conn, [name]).get(name, [])
            conn.execute(t.dataset_classes.delete().where(t.dataset_classes.c.name == name))
            if clean:
                conn.execute(
                    t.dataset_classes.insert().values(
                        name=name,
                        tags=clean,
                        updated_by=current_actor().user,
                        updated_at=now_ms(),
                    )
                )
            change = Changed(
                "classify dataset",
                f"datasets/{name}",
                workspace,
                {"classes": before},
                {"classes": clean},
            )
            publish(conn, change)
        return clean

    def classes(self, name: str) -> list[str]:
        with self.db.read() as conn:
            found = dataset_classes(conn, [name])
            if (
                not found
                and conn.execute(
                    select(t.datasets.c.id).where(t.datasets.c.name == name).limit(1)
                ).first()
                is None
            ):
                raise NotFound(f"dataset '{name}' does not exist")
        return found.get(name, [])


def _dataset_workspace(conn: Connection, name: str) -> str:
    """The workspace that owns dataset ``name`` (its first content version's)."""
    d = t.datasets.c
    owner = conn.execute(
        select(d.workspace).where(d.name == name).order_by(d.created_at).limit(1)
    ).scalar()
    if owner is None:
        raise NotFound(f"dataset '{name}' does not exist")
    return str(owner)


_SENSITIVITY = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")


def check_sensitivity(tag: str) -> str:
    if not isinstance(tag, str) or not _SENSITIVITY.match(tag):
        raise InvalidInput(
            f"invalid sensitivity class {tag!r}: use a lower-case word such as pii or "
            "confidential (letters, digits, '_' or '-', at most 32)"
        )
    return tag


def dataset_classes(conn: Connection, names: Iterable[str]) -> dict[str, list[str]]:
    """Sensitivity classes by dataset name, for the names that have any."""
    wanted = list(set(names))
    if not wanted:
        return {}
    rows = conn.execute(
        select(t.dataset_classes.c.name, t.dataset_classes.c.tags).where(
            t.dataset_classes.c.name.in_(wanted)
        )
    ).all()
    return {row.name: list(row.tags) for row in rows}
