"""Datasets that runs used: recorded once per (name, content), linked by role."""

from __future__ import annotations

import re
import uuid
from typing import Any, BinaryIO

from sqlalchemy import select

from modelyard.artifacts.store import ArtifactStore
from modelyard.clock import now_ms
from modelyard.domain.datasets import DATASET_ROLES, Column, Dataset, DatasetUse
from modelyard.errors import InvalidInput, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database
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
            if conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
                raise NotFound(f"run '{run_id}' does not exist")
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
