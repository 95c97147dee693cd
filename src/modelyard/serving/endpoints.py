"""The serving control plane: endpoints and their numbered revisions.

Every change (create, update, rollback) writes a new revision in the same
transaction that checks it: weights add up to 100, every version exists and is
not archived, and every route and shadow can read the requests the endpoint
accepts (compatible signatures). A change that fails any check is refused with
a message naming the problem, and the current revision keeps serving.

Each change publishes a ``Changed`` in its transaction (what was served before and
after, the revision diff), and the revision records ``current_actor()`` as its author.
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from modelyard.catalog.stages import ApprovalGate
from modelyard.catalog.versions import VersionReader
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.endpoints import (
    ONNX,
    TWIN_OF_TAG,
    TWIN_TAG,
    Batching,
    Endpoint,
    Revision,
    Spec,
    Target,
    TargetRequest,
    batching_from,
    check_compatible,
    check_endpoint_name,
    check_subject_column,
    check_weights,
    diff_specs,
    spec_summary,
)
from modelyard.domain.events import Changed, EndpointCreated, Publisher
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.models import ModelRef, Stage
from modelyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.governance.workspaces import check_same
from modelyard.store import schema as t
from modelyard.store.database import Database, publish


class EndpointService(Publisher):
    """Create, change, roll back and read endpoints.

    >>> endpoints.create("churn", routes=[TargetRequest.parse("churn/3=90"),
    ...                                   TargetRequest.parse("churn/4=10")])
    >>> endpoints.rollback("churn")          # back to the previous revision
    """

    def __init__(
        self,
        db: Database,
        versions: VersionReader,
        *,
        approval_gate: ApprovalGate | None = None,
    ) -> None:
        self.db = db
        self.versions = versions  # what a route's reference names, in the revision's transaction
        # refuses routing traffic to a version the approval policy forbids (None: no policy)
        self.approval_gate = approval_gate

    # -- changes -----------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        routes: list[TargetRequest],
        shadows: list[TargetRequest] | None = None,
        batching: Batching | None = None,
        description: str = "",
        comment: str = "",
        workspace: str = DEFAULT_WORKSPACE,
    ) -> Endpoint:
        """A new endpoint of ``workspace``, serving versions of that workspace's models."""
        check_endpoint_name(name)
        check_weights(routes)
        stamp = now_ms()
        actor = current_actor().user
        try:
            with self.db.write() as conn:
                spec = Spec(
                    routes=self._resolve(conn, routes),
                    shadows=self._resolve(conn, shadows or []),
                    batching=batching or Batching(),
                )
                self._validate(conn, spec, workspace)
                result = conn.execute(
                    t.endpoints.insert().values(
                        name=name,
                        workspace=workspace,
                        description=description,
                        revision=1,
                        created_by=actor,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
                endpoint_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                changes = self._write_revision(conn, endpoint_id, 1, spec, None, comment, stamp)
                after = _revised(1, spec, changes, comment)
                publish(
                    conn, Changed("create endpoint", f"endpoints/{name}", workspace, None, after)
                )
        except DBIntegrityError:
            raise Conflict(f"endpoint '{name}' already exists") from None
        self.publish(EndpointCreated(name, actor))  # its subscribers act as the same actor
        return self.get(name)

    def update(
        self,
        name: str,
        *,
        routes: list[TargetRequest] | None = None,
        shadows: list[TargetRequest] | None = None,
        batching: Batching | dict[str, Any] | None = None,
        description: str | None = None,
        comment: str = "",
    ) -> Endpoint:
        """A new revision; what is not given is carried over from the current one.

        ``batching`` as a dict changes only the settings it names.
        """
        if routes is not None:
            check_weights(routes)
        with self.db.write() as conn:
            row = self._row(conn, name)
            current = self._spec(conn, row.id, row.revision)
            spec = Spec(
                routes=self._resolve(conn, routes) if routes is not None else current.routes,
                shadows=self._resolve(conn, shadows) if shadows is not None else current.shadows,
                batching=(
                    batching_from(batching, current.batching) or current.batching
                    if isinstance(batching, dict)
                    else batching or current.batching
                ),
            )
            if spec == current and description is None:
                raise InvalidInput(
                    f"endpoint '{name}' already serves this at revision {row.revision}"
                )
            self._validate(conn, spec, row.workspace)
            self._advance(conn, row, spec, current, comment, description)
        return self.get(name)

    def rollback(self, name: str, *, to: int | None = None, comment: str = "") -> Endpoint:
        """A new revision with the spec of revision ``to`` (default: the one before)."""
        with self.db.write() as conn:
            row = self._row(conn, name)
            target = row.revision - 1 if to is None else to
            if to is None and target < 1:
                raise Conflict(f"endpoint '{name}' has no revision before {row.revision}")
            if not 1 <= target <= row.revision:
                raise NotFound(
                    f"endpoint '{name}' has no revision {target} (revisions 1 to {row.revision})"
                )
            if target == row.revision:
                raise InvalidInput(f"endpoint '{name}' is already at revision {target}")
            spec = self._spec(conn, row.id, target)
            current = self._spec(conn, row.id, row.revision)
            if spec == current:
                raise InvalidInput(
                    f"revision {target} of endpoint '{name}' serves what revision "
                    f"{row.revision} serves already"
                )
            self._validate(conn, spec, row.workspace)
            note = comment or f"rollback to revision {target}"
            self._advance(conn, row, spec, current, note, None, rollback_to=target)
        return self.get(name)

    def _advance(
        self,
        conn: Connection,
        row: Any,
        spec: Spec,
        current: Spec,
        comment: str,
        description: str | None,
        rollback_to: int | None = None,
    ) -> None:
        stamp = now_ms()
        number = row.revision + 1
        values: dict[str, Any] = {"revision": number, "updated_at": stamp}
        if description is not None:
            values["description"] = description
        # the compare-and-set on the revision makes two concurrent changes conflict
        result = conn.execute(
            update(t.endpoints)
            .where(t.endpoints.c.id == row.id, t.endpoints.c.revision == row.revision)
            .values(**values)
        )
        if result.rowcount != 1:
            raise Conflict(f"endpoint '{row.name}' changed meanwhile; try again")
        changes = self._write_revision(
            conn, row.id, number, spec, current, comment, stamp, rollback_to
        )
        before, after = _revision(row.revision, current), _revised(number, spec, changes, comment)
        if description is not None:
            before["description"], after["description"] = row.description, description
        action = "change endpoint" if rollback_to is None else "rollback endpoint"
        publish(conn, Changed(action, f"endpoints/{row.name}", row.workspace, before, after))

    def _write_revision(
        self,
        conn: Connection,
        endpoint_id: int,
        number: int,
        spec: Spec,
        before: Spec | None,
        comment: str,
        stamp: int,
        rollback_to: int | None = None,
    ) -> dict[str, Any]:
        """Record revision ``number`` as the current actor's; what it changed."""
        changes = diff_specs(before, spec)
        if rollback_to is not None:
            changes["rollback_to"] = rollback_to
        conn.execute(
            t.endpoint_revisions.insert().values(
                endpoint_id=endpoint_id,
                revision=number,
                spec=spec.to_dict(),
                changes=changes,
                comment=comment,
                created_by=current_actor().user,
                created_at=stamp,
            )
        )
        return changes

    # -- checks ------------------------------------------------------------

    def _resolve(self, conn: Connection, requests: list[TargetRequest]) -> list[Target]:
        targets = []
        for request in requests:
            _, number = self.versions.resolve(conn, request.ref)
            twin_of = None
            if request.runtime == ONNX:
                twin_of, number = number, self._twin(conn, request.ref.name, number)
            targets.append(
                Target(
                    model=request.ref.name,
                    version=number,
                    alias=request.ref.alias,
                    follow=request.follow,
                    weight=request.weight,
                    runtime=request.runtime,
                    twin_of=twin_of,
                )
            )
        return targets

    def _twin(self, conn: Connection, model: str, number: int) -> int:
        """The version number of ``model/number``'s ONNX twin, checked to be one."""
        version = self.versions.version_in(conn, ModelRef(model, number))
        paired = version.tags.get(TWIN_TAG)
        if paired is None or not str(paired).isdigit():
            raise NotFound(
                f"{version.ref} has no ONNX twin: register one with "
                f"`modelyard package twin {version.ref}`"
            )
        twin = self.versions.version_in(conn, ModelRef(model, int(paired)))
        if twin.flavor != ONNX or twin.tags.get(TWIN_OF_TAG) != str(number):
            raise InvalidInput(
                f"{twin.ref}, named as the ONNX twin of {version.ref}, is not its twin "
                f"(flavor {twin.flavor}, {TWIN_OF_TAG}={twin.tags.get(TWIN_OF_TAG)!r})"
            )
        if twin.signature != version.signature:
            raise InvalidInput(f"{twin.ref} does not read what {version.ref} reads")
        return twin.version

    def _validate(self, conn: Connection, spec: Spec, workspace: str) -> None:
        seen: set[str] = set()
        for role, target in spec.targets():
            key = f"{role}:{target.ref}"
            if key in seen:
                raise InvalidInput(f"{target.ref} is listed twice as a {role}")
            seen.add(key)
        if {r.ref for r in spec.routes} & {s.ref for s in spec.shadows}:
            raise InvalidInput("a version cannot be both a route and a shadow")
        signatures = {}
        owners = dict(
            conn.execute(
                select(t.models.c.name, t.models.c.workspace).where(
                    t.models.c.name.in_({target.model for _, target in spec.targets()})
                )
            ).all()
        )
        for _, target in spec.targets():
            check_same(f"model '{target.model}'", owners.get(target.model), workspace)
            version = self.versions.version_in(conn, ModelRef(target.model, target.version))
            if version.stage in (Stage.ARCHIVED, Stage.RETIRED):
                raise Conflict(f"{target.ref} is {version.stage.value} and cannot receive traffic")
            if not version.signature:
                raise InvalidInput(
                    f"{target.ref} has no signature: register it with an input example "
                    "so the endpoint can check requests"
                )
            signatures[target.ref] = version.signature
        if self.approval_gate is not None:
            for route in spec.routes:
                self.approval_gate(conn, ModelRef(route.model, route.version), "taking traffic")
        check_compatible(spec, signatures)

    # -- reads -------------------------------------------------------------

    def _row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(t.endpoints).where(t.endpoints.c.name == name)).first()
        if row is None:
            raise NotFound(f"endpoint '{name}' does not exist")
        return row

    def _spec(self, conn: Connection, endpoint_id: int, number: int) -> Spec:
        r = t.endpoint_revisions.c
        spec = conn.execute(
            select(r.spec).where(r.endpoint_id == endpoint_id, r.revision == number)
        ).scalar()
        if spec is None:
            raise NotFound(f"endpoint has no revision {number}")
        return Spec.from_dict(spec)

    def workspace_of(self, conn: Connection, name: str) -> str:
        """The workspace that owns endpoint ``name`` (``NotFound`` if there is none)."""
        return str(self._row(conn, name).workspace)

    def exists(self, name: str) -> bool:
        with self.db.read() as conn:
            found = conn.execute(select(t.endpoints.c.id).where(t.endpoints.c.name == name))
            return found.first() is not None

    def get(self, name: str) -> Endpoint:
        with self.db.read() as conn:
            row = self._row(conn, name)
            return self._endpoint(row, self._spec(conn, row.id, row.revision))

    def list(self, workspace: str | None = None) -> list[Endpoint]:
        """Every endpoint, or ``workspace``'s."""
        e, r = t.endpoints.c, t.endpoint_revisions.c
        query = (
            select(t.endpoints, r.spec)
            .join(t.endpoint_revisions, (r.endpoint_id == e.id) & (r.revision == e.revision))
            .order_by(e.name)
        )
        if workspace is not None:
            query = query.where(e.workspace == workspace)
        with self.db.read() as conn:
            return [self._endpoint(row, Spec.from_dict(row.spec)) for row in conn.execute(query)]

    def revisions(self, name: str) -> builtins.list[Revision]:
        r = t.endpoint_revisions.c
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                select(t.endpoint_revisions).where(r.endpoint_id == row.id).order_by(r.revision)
            ).all()
        return [
            Revision(
                endpoint=name,
                revision=rev.revision,
                spec=Spec.from_dict(rev.spec),
                changes=rev.changes,
                comment=rev.comment,
                created_by=rev.created_by,
                created_at=rev.created_at,
            )
            for rev in rows
        ]

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        """Keep ``name``'s prediction log for ``days`` (None: forever); serving processes
        delete older predictions and labels on schedule."""
        if days is not None and (isinstance(days, bool) or not 1 <= days <= 36_500):
            raise InvalidInput(f"retention must be 1 to 36500 days (or none), got {days!r}")
        with self.db.write() as conn:
            row = self._row(conn, name)
            conn.execute(
                update(t.endpoints)
                .where(t.endpoints.c.id == row.id)
                .values(retention_days=days, updated_at=now_ms())
            )
            before, after = {"retention_days": row.retention_days}, {"retention_days": days}
            publish(
                conn, Changed("set retention", f"endpoints/{name}", row.workspace, before, after)
            )
        return self.get(name)

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        """The input field that identifies a data subject (for erasure requests)."""
        if column is not None:
            check_subject_column(column)
        with self.db.write() as conn:
            row = self._row(conn, name)
            conn.execute(
                update(t.endpoints)
                .where(t.endpoints.c.id == row.id)
                .values(subject_column=column, updated_at=now_ms())
            )
            before, after = {"subject_column": row.subject_column}, {"subject_column": column}
            change = Changed(
                "set subject column", f"endpoints/{name}", row.workspace, before, after
            )
            publish(conn, change)
        return self.get(name)

    def retention(self) -> dict[str, int]:
        """Days to keep, for every endpoint that has a retention policy."""
        e = t.endpoints.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(e.name, e.retention_days).where(e.retention_days.is_not(None))
            ).all()
        return {row.name: int(row.retention_days) for row in rows}

    def revision_at(self, name: str, at: int) -> Revision | None:
        """The revision that was current at epoch ms ``at`` (None before the endpoint existed)."""
        earlier = [r for r in self.revisions(name) if r.created_at <= at]
        return earlier[-1] if earlier else None

    def live(self, names: builtins.list[str] | None = None) -> builtins.list[tuple[str, int, Spec]]:
        """(name, revision, spec) of each endpoint as the data plane serves it now.

        Followed aliases are resolved to the versions they name at this moment.
        One read: the data plane calls this every second.
        """
        e, r = t.endpoints.c, t.endpoint_revisions.c
        query = select(e.name, e.revision, r.spec).join(
            t.endpoint_revisions, (r.endpoint_id == e.id) & (r.revision == e.revision)
        )
        if names:
            query = query.where(e.name.in_(names))
        with self.db.read() as conn:
            return self._live(conn, query)

    def _live(self, conn: Connection, query: Any) -> builtins.list[tuple[str, int, Spec]]:
        e = t.endpoints.c
        rows = conn.execute(query.order_by(e.name)).all()
        specs = [(row.name, row.revision, Spec.from_dict(row.spec)) for row in rows]
        wanted = {
            (target.model, target.alias)
            for _, _, spec in specs
            for _, target in spec.targets()
            if target.follow and target.alias
        }
        resolved = self._aliases(conn, wanted)
        if self.approval_gate is not None:
            # an alias moved to a version not approved for traffic: keep serving the old one
            for (model, alias), number in list(resolved.items()):
                try:
                    self.approval_gate(conn, ModelRef(model, version=number), "taking traffic")
                except PermissionDenied:
                    del resolved[(model, alias)]
        return [(name, number, spec.with_versions(resolved)) for name, number, spec in specs]

    def serving(self, conn: Connection) -> dict[tuple[str, int], builtins.list[str]]:
        """For each (model, version) any endpoint routes or shadows to now: the endpoints."""
        e, r = t.endpoints.c, t.endpoint_revisions.c
        query = select(e.name, e.revision, r.spec).join(
            t.endpoint_revisions, (r.endpoint_id == e.id) & (r.revision == e.revision)
        )
        found: dict[tuple[str, int], builtins.list[str]] = {}
        for name, _, spec in self._live(conn, query):
            for _, target in spec.targets():
                found.setdefault((target.model, target.version), []).append(name)
                if target.twin_of is not None:  # its twin serves it
                    found.setdefault((target.model, target.twin_of), []).append(name)
        return found

    def _aliases(
        self, conn: Connection, wanted: set[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        if not wanted:
            return {}
        m, a = t.models.c, t.aliases.c
        rows = conn.execute(
            select(m.name, a.alias, a.version)
            .join(t.aliases, a.model_id == m.id)
            .where(m.name.in_({model for model, _ in wanted}))
        ).all()
        return {(row.name, row.alias): int(row.version) for row in rows}

    def _endpoint(self, row: Any, spec: Spec) -> Endpoint:
        return Endpoint(
            name=row.name,
            description=row.description,
            revision=row.revision,
            spec=spec,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            retention_days=row.retention_days,
            subject_column=row.subject_column,
            workspace=row.workspace,
        )


def _revision(number: int, spec: Spec) -> dict[str, Any]:
    """What revision ``number`` serves, in short (the audit summary of an endpoint)."""
    return {"revision": number, **spec_summary(spec)}


def _revised(number: int, spec: Spec, changes: dict[str, Any], comment: str) -> dict[str, Any]:
    return {**_revision(number, spec), "changes": changes, "comment": comment}
