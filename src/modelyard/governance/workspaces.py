"""Workspaces: the teams that own experiments, models, endpoints and datasets.

A user holds a role per workspace (``Identity.set_role``). Each experiment,
model, endpoint and dataset belongs to one workspace; runs and versions belong
to their experiment's and model's, monitors and retraining requests to their
endpoint's. A request acts in the workspace of the resource it names, else in
the one the caller chose, so a role in one team grants nothing in another.
Names stay unique across workspaces: an endpoint's URL and a lineage node keep
meaning one thing.

>>> workspaces.create("fraud", admins=["ana"])
>>> workspaces.owner("model", "churn")
'default'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from modelyard.clock import now_ms
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE, Role, Workspace, check_workspace_name
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.store import schema as t
from modelyard.store.database import Database, publish

OWNED = ("experiment", "model", "endpoint", "dataset")
# owners that never change once found: nothing moves between workspaces, and experiments,
# models and endpoints are never renamed (a monitor may be pointed at another endpoint)
_LASTING = frozenset({"experiment", "model", "version", "endpoint", "prediction", "run", "dataset"})
_REMEMBERED = 10_000


class Workspaces:
    """Create and list workspaces; say which workspace owns a resource."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._owners: dict[tuple[str, str], str] = {}

    def create(self, name: str, admins: Sequence[str] = ()) -> Workspace:
        """A new workspace administered by ``admins`` (recorded as ``create workspace`` in
        it and one ``add member`` per admin, in one transaction: a workspace is never left
        without the admins it was made with)."""
        check_workspace_name(name)
        try:
            with self.db.write() as conn:
                created = conn.execute(
                    t.workspaces.insert().values(name=name, created_at=now_ms())
                ).inserted_primary_key[0]  # type: ignore[index]
                after = {"name": name}
                publish(conn, Changed("create workspace", f"workspaces/{name}", name, after=after))
                for admin in dict.fromkeys(admins):
                    _add_admin(conn, int(created), name, admin)
        except DBIntegrityError:
            raise Conflict(f"workspace '{name}' already exists") from None
        return self.get(name)

    def admins(self, name: str) -> list[str]:
        """The names of the admins of workspace ``name``."""
        u, m, w = t.users.c, t.memberships.c, t.workspaces.c
        query = (
            select(u.name)
            .join(t.memberships, m.user_id == u.id)
            .join(t.workspaces, w.id == m.workspace_id)
            .where(w.name == name, m.role == Role.ADMIN.value)
            .order_by(u.name)
        )
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def get(self, name: str) -> Workspace:
        found = [w for w in self.list() if w.name == name]
        if not found:
            raise NotFound(f"workspace '{name}' does not exist")
        return found[0]

    def list(self) -> list[Workspace]:
        w, m = t.workspaces.c, t.memberships.c
        query = (
            select(w.name, w.created_at, func.count(m.user_id).label("members"))
            .select_from(t.workspaces.outerjoin(t.memberships, m.workspace_id == w.id))
            .group_by(w.name, w.created_at)
            .order_by(w.name)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [Workspace(r.name, r.created_at, int(r.members)) for r in rows]

    def require(self, conn: Connection, name: str) -> str:
        """``name`` if that workspace exists (``default`` always does)."""
        if name == DEFAULT_WORKSPACE:
            return name
        found = conn.execute(select(t.workspaces.c.id).where(t.workspaces.c.name == name)).first()
        if found is None:
            raise NotFound(f"workspace '{name}' does not exist")
        return name

    def known_endpoint(self, name: str) -> str | None:
        """The owner of endpoint ``name`` if already looked up (no database read)."""
        return self._owners.get(("endpoint", name))

    def owner(self, kind: str, key: str) -> str | None:
        """The workspace that owns ``kind`` ``key``, or None when there is no such thing.

        Kinds: experiment, model, version (``model/N``), endpoint, prediction
        (``endpoint/id``), monitor, run, dataset (name or id), retraining_request, alert,
        secret, batch_job.
        """
        known = self._owners.get((kind, key))
        if known is not None:
            return known
        resolve = _RESOLVERS.get(kind)
        if resolve is None:
            raise InvalidInput(f"unknown resource kind '{kind}'")
        with self.db.read() as conn:
            found = resolve(conn, key)
        if found is not None and kind in _LASTING:
            if len(self._owners) >= _REMEMBERED:
                self._owners.clear()
            self._owners[(kind, key)] = found
        return found


def _add_admin(conn: Connection, workspace_id: int, workspace: str, user: str) -> None:
    found = conn.execute(select(t.users.c.id).where(t.users.c.name == user)).scalar()
    if found is None:
        raise NotFound(f"user '{user}' does not exist")
    conn.execute(
        t.memberships.insert().values(
            user_id=found, workspace_id=workspace_id, role=Role.ADMIN.value
        )
    )
    before = {"workspace": workspace, "role": None}
    after = {"workspace": workspace, "role": Role.ADMIN.value}
    publish(conn, Changed("add member", f"users/{user}", workspace, before, after))


def check_same(what: str, owner: str | None, workspace: str) -> None:
    """Refuse to tie something in ``workspace`` to ``what``, owned by another workspace."""
    if owner is not None and owner != workspace:
        raise InvalidInput(
            f"{what} belongs to workspace '{owner}', not '{workspace}': "
            "resources are only combined within one workspace"
        )


def _scalar(conn: Connection, query: Any) -> str | None:
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def _model(conn: Connection, key: str) -> str | None:
    return _scalar(conn, select(t.models.c.workspace).where(t.models.c.name == key))


def _endpoint(conn: Connection, key: str) -> str | None:
    return _scalar(conn, select(t.endpoints.c.workspace).where(t.endpoints.c.name == key))


def _experiment(conn: Connection, key: str) -> str | None:
    e = t.experiments.c
    condition = e.name == key
    if key.isdigit():
        condition = condition | (e.id == int(key))
    return _scalar(conn, select(e.workspace).where(condition).order_by(e.id).limit(1))


def _run(conn: Connection, key: str) -> str | None:
    e, r = t.experiments.c, t.runs.c
    query = select(e.workspace).join(t.runs, r.experiment_id == e.id).where(r.id == key)
    return _scalar(conn, query)


def run_workspace(conn: Connection, run_id: str) -> str:
    """The workspace of run ``run_id`` on an open connection; ``NotFound`` if there is none."""
    owner = _run(conn, run_id)
    if owner is None:
        raise NotFound(f"run '{run_id}' does not exist")
    return owner


def _dataset(conn: Connection, key: str) -> str | None:
    d = t.datasets.c
    query = select(d.workspace).where((d.name == key) | (d.id == key))
    return _scalar(conn, query.order_by(d.created_at).limit(1))


def _monitor(conn: Connection, key: str) -> str | None:
    endpoint = _scalar(conn, select(t.monitors.c.endpoint).where(t.monitors.c.name == key))
    return None if endpoint is None else _endpoint(conn, endpoint) or DEFAULT_WORKSPACE


def _retraining_request(conn: Connection, key: str) -> str | None:
    q, m = t.retraining_requests.c, t.monitors.c
    query = select(m.name).join(t.monitors, m.id == q.monitor_id).where(q.id == key)
    monitor = _scalar(conn, query)
    return None if monitor is None else _monitor(conn, monitor)


def _alert(conn: Connection, key: str) -> str | None:
    a, m = t.alerts.c, t.monitors.c
    query = select(m.name).join(t.alerts, a.monitor_id == m.id).where(a.id == key)
    monitor = _scalar(conn, query)
    return None if monitor is None else _monitor(conn, monitor)


def _secret(conn: Connection, key: str) -> str | None:
    return _scalar(conn, select(t.secrets.c.workspace).where(t.secrets.c.name == key))


def _version(conn: Connection, key: str) -> str | None:
    """``model/3``, ``model@alias`` or ``model``."""
    return _model(conn, key.replace("@", "/").partition("/")[0])


def _prediction(conn: Connection, key: str) -> str | None:
    return _endpoint(conn, key.partition("/")[0])


def _batch_job(conn: Connection, key: str) -> str | None:
    return _scalar(conn, select(t.batch_jobs.c.workspace).where(t.batch_jobs.c.id == key))


_RESOLVERS: dict[str, Callable[[Connection, str], str | None]] = {
    "experiment": _experiment,
    "model": _model,
    "version": _version,
    "endpoint": _endpoint,
    "prediction": _prediction,
    "monitor": _monitor,
    "run": _run,
    "dataset": _dataset,
    "retraining_request": _retraining_request,
    "alert": _alert,
    "secret": _secret,
    "batch_job": _batch_job,
    "job": _batch_job,  # as lineage names it: job:<id>
}
