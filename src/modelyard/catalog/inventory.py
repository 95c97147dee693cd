"""The model-risk inventory: typed fields per registered model (risk tier, owner,
validator, validation status and dates)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.models import Inventory, check_date, check_inventory
from modelyard.errors import NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish


class InventoryService:
    """Model-risk inventory fields: risk tier, owner, validator, validation dates.

    >>> inventory.update("churn", risk_tier="high", next_validation="2027-05-01")
    >>> [i.model for i in inventory.search(overdue_on="2027-06-01")]
    ['churn']
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> Inventory:
        with self.db.read() as conn:
            model_id = _model_id_of(conn, name)
            row = conn.execute(
                select(t.model_inventory).where(t.model_inventory.c.model_id == model_id)
            ).first()
        return _inventory(name, row)

    def update(self, name: str, **changes: Any) -> Inventory:
        """Change the given fields, as the current actor; the others keep their values."""
        clean = check_inventory(changes)
        with self.db.write() as conn:
            model_id, workspace = _model_of(conn, name)
            table = t.model_inventory
            exists = conn.execute(select(table).where(table.c.model_id == model_id)).first()
            before = _inventory(name, exists)
            values = {**clean, "updated_by": current_actor().user, "updated_at": now_ms()}
            if exists is None:
                defaults = {
                    "business_owner": "",
                    "validator": "",
                    "validation_status": "not_validated",
                }
                conn.execute(table.insert().values(model_id=model_id, **{**defaults, **values}))
            else:
                conn.execute(update(table).where(table.c.model_id == model_id).values(**values))
            change = Changed(
                "update inventory",
                f"models/{name}/inventory",
                workspace,
                {field: getattr(before, field) for field in clean},
                clean,
            )
            publish(conn, change)
        return self.get(name)

    def search(
        self,
        *,
        risk_tier: str | None = None,
        owner: str | None = None,
        validator: str | None = None,
        status: str | None = None,
        overdue_on: str | None = None,
        workspace: str | None = None,
    ) -> list[Inventory]:
        """Models by inventory field; ``overdue_on`` (a date) lists validations due before it."""
        check_inventory(
            {
                k: v
                for k, v in {"risk_tier": risk_tier, "validation_status": status}.items()
                if v is not None
            }
        )
        i, m = t.model_inventory.c, t.models.c
        query = select(t.model_inventory, m.name).join(t.models, m.id == i.model_id)
        if workspace is not None:
            query = query.where(m.workspace == workspace)
        if risk_tier:
            query = query.where(i.risk_tier == risk_tier)
        if owner:
            query = query.where(i.business_owner == owner)
        if validator:
            query = query.where(i.validator == validator)
        if status:
            query = query.where(i.validation_status == status)
        if overdue_on:
            day = check_date("overdue_on", overdue_on)
            query = query.where(i.next_validation.is_not(None), i.next_validation < day)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(i.next_validation, m.name)).all()
        return [_inventory(row.name, row) for row in rows]


def _model_id_of(conn: Connection, name: str) -> int:
    return _model_of(conn, name)[0]


def _model_of(conn: Connection, name: str) -> tuple[int, str]:
    m = t.models.c
    row = conn.execute(select(m.id, m.workspace).where(m.name == name)).first()
    if row is None:
        raise NotFound(f"model '{name}' does not exist")
    return int(row.id), str(row.workspace)


def _inventory(name: str, row: Any) -> Inventory:
    if row is None:
        return Inventory(model=name)
    return Inventory(
        model=name,
        risk_tier=row.risk_tier,
        business_owner=row.business_owner,
        validator=row.validator,
        validation_status=row.validation_status,
        last_validated=row.last_validated,
        next_validation=row.next_validation,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
