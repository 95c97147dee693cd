"""Approvals: maker-checker before a version reaches production or takes traffic.

A workspace policy says how many approvals a version needs (0: none). Someone
requests approval of a version; reviewers other than the requester and other
than the version's author approve or reject it, with a comment. Each decision
records the version's package digest: an approval counts only for the package
it saw. A rejection after the latest request stops the version until it is
requested again; approvals count from the latest request on.

The gate (``check``) runs inside the write transaction of a move to production
and of an endpoint revision that routes traffic to a version, so a version
cannot slip through between the check and the change. ``bootstrap`` hands it to
``Catalog`` and ``EndpointService`` as their ``approval_gate``; the service reads
versions through a ``catalog.versions.VersionReader``, not the catalog.

Who requests or decides is the current actor (``domain.actors``): the key's user
through the API, the OS user embedded.

>>> with acting_as(Actor("ana")):
...     approvals.request("churn/4", comment="beats champion on Q3 data")
>>> with acting_as(Actor("raj")):
...     approvals.approve("churn/4", comment="validated")
>>> approvals.status("churn/4").state
'approved'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from modelyard.catalog.versions import VersionReader
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.models import ModelRef, ModelVersion
from modelyard.errors import Conflict, InvalidInput, PermissionDenied
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

DECISIONS = ("request", "approve", "reject")
MAX_REQUIRED = 10


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a version stands: ``not_required``, ``not_requested``, ``pending``,
    ``approved`` or ``rejected``; who approved the current package since the request."""

    version: str
    digest: str
    required: int
    state: str
    approved_by: list[str] = field(default_factory=list)
    requested_by: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApprovalService:
    """The approval policy, decisions, and the gate that enforces them."""

    def __init__(self, db: Database, versions: VersionReader) -> None:
        self.db = db
        # reads only, on the caller's connection: the catalog calls ``check`` in its own
        # transactions, so this service reads versions without depending on the catalog
        self.versions = versions

    # -- policy ----------------------------------------------------------------

    def policy(self, workspace: str = DEFAULT_WORKSPACE) -> int:
        """How many approvals a version of ``workspace`` needs (0: none)."""
        with self.db.read() as conn:
            return self._required(conn, workspace)

    def _required(self, conn: Connection, workspace: str) -> int:
        p = t.approval_policies.c
        found = conn.execute(select(p.required).where(p.workspace == workspace)).scalar()
        return int(found or 0)

    def set_policy(self, required: int, *, workspace: str = DEFAULT_WORKSPACE) -> int:
        """Require ``required`` approvals for ``workspace``'s versions (0 turns approvals off)."""
        if isinstance(required, bool) or not isinstance(required, int):
            raise InvalidInput(f"required approvals must be a whole number, got {required!r}")
        if not 0 <= required <= MAX_REQUIRED:
            raise InvalidInput(f"required approvals must be 0 to {MAX_REQUIRED}, got {required}")
        actor = current_actor().user
        row = {
            "workspace": workspace,
            "required": required,
            "updated_by": actor,
            "updated_at": now_ms(),
        }
        with self.db.write() as conn:
            before = self._required(conn, workspace)
            statement = insert_for(self.db.dialect, t.approval_policies).on_conflict_do_update(
                index_elements=["workspace"],
                set_={"required": required, "updated_by": actor, "updated_at": row["updated_at"]},
            )
            conn.execute(statement, [row])
            change = Changed(
                "set approval policy",
                "policies/approvals",
                workspace,
                {"required": before},
                {"required": required},
            )
            publish(conn, change)
        return required

    # -- decisions ---------------------------------------------------------------

    # Who decides is always the current actor (``domain.actors``): the key's user through
    # the API, the OS user embedded; never a name a caller passes.

    def request(self, ref: ModelRef | str, *, comment: str = "") -> ApprovalStatus:
        return self._decide(ref, "request", comment)

    def approve(self, ref: ModelRef | str, *, comment: str = "") -> ApprovalStatus:
        return self._decide(ref, "approve", comment)

    def reject(self, ref: ModelRef | str, *, comment: str = "") -> ApprovalStatus:
        if not comment.strip():
            raise InvalidInput("a rejection needs a comment saying why")
        return self._decide(ref, "reject", comment)

    def _decide(self, ref: ModelRef | str, decision: str, comment: str) -> ApprovalStatus:
        actor = current_actor().user
        if not actor:
            raise InvalidInput("a decision needs the name of who makes it")
        parsed = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.write() as conn:
            version = self.versions.version_in(conn, parsed)
            model_id = self.versions.model_id(conn, version.model)
            if decision != "request":
                self._check_reviewer(conn, model_id, version, actor, decision)
            before = self._status(conn, model_id, version)
            conn.execute(
                t.approvals.insert().values(
                    model_id=model_id,
                    version=version.version,
                    digest=version.package_digest,
                    decision=decision,
                    actor=actor,
                    comment=comment,
                    at=now_ms(),
                )
            )
            after = self._status(conn, model_id, version)
            summary = {
                "decision": decision,
                "version": version.version,
                "digest": version.package_digest,
                "state": after.state,
                "comment": comment,
            }
            resource = f"models/{version.model}/{version.version}/approvals"
            workspace = self.versions.model_workspace(conn, version.model)
            before_state = {"state": before.state}
            publish(
                conn, Changed(f"{decision} approval", resource, workspace, before_state, summary)
            )
            return after

    def _check_reviewer(
        self, conn: Connection, model_id: int, version: ModelVersion, actor: str, decision: str
    ) -> None:
        """Maker-checker: not the requester, not the author, once per request."""
        history = self._history(conn, model_id, version.version)
        requests = [h for h in history if h["decision"] == "request"]
        if not requests:
            raise InvalidInput(
                f"nobody requested approval of {version.ref}: request it first "
                f"(modelyard models approval request {version.ref})"
            )
        latest = requests[-1]
        if actor == latest["actor"]:
            raise PermissionDenied(
                f"{actor} requested approval of {version.ref} and cannot {decision} it"
            )
        if version.created_by and actor == version.created_by:
            raise PermissionDenied(f"{actor} registered {version.ref} and cannot {decision} it")
        since = [h for h in history if h["at"] >= latest["at"] and h["id"] > latest["id"]]
        if any(h["actor"] == actor and h["decision"] != "request" for h in since):
            raise Conflict(f"{actor} has already decided on the latest request for {version.ref}")

    # -- reading and the gate ------------------------------------------------------

    def status(self, ref: ModelRef | str) -> ApprovalStatus:
        parsed = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as conn:
            version = self.versions.version_in(conn, parsed)
            model_id = self.versions.model_id(conn, version.model)
            return self._status(conn, model_id, version)

    def _history(self, conn: Connection, model_id: int, number: int) -> list[dict[str, Any]]:
        a = t.approvals.c
        rows = conn.execute(
            select(t.approvals).where(a.model_id == model_id, a.version == number).order_by(a.id)
        ).all()
        return [
            {
                "id": r.id,
                "decision": r.decision,
                "actor": r.actor,
                "comment": r.comment,
                "digest": r.digest,
                "at": r.at,
            }
            for r in rows
        ]

    def _status(self, conn: Connection, model_id: int, version: ModelVersion) -> ApprovalStatus:
        owner = conn.execute(select(t.models.c.workspace).where(t.models.c.id == model_id)).scalar()
        required = self._required(conn, owner or DEFAULT_WORKSPACE)
        history = self._history(conn, model_id, version.version)
        requests = [h for h in history if h["decision"] == "request"]
        latest = requests[-1] if requests else None
        since = [h for h in history if latest is not None and h["id"] > latest["id"]]
        current = [h for h in since if h["digest"] == version.package_digest]
        approved_by = sorted({h["actor"] for h in current if h["decision"] == "approve"})
        rejected = any(h["decision"] == "reject" for h in current)
        if required == 0:
            state = "not_required"
        elif latest is None:
            state = "not_requested"
        elif rejected:
            state = "rejected"
        elif len(approved_by) >= required:
            state = "approved"
        else:
            state = "pending"
        public = [{k: v for k, v in h.items() if k != "id"} for h in history]
        return ApprovalStatus(
            version.ref,
            version.package_digest,
            required,
            state,
            approved_by,
            latest["actor"] if latest else None,
            public,
        )

    def check(self, conn: Connection, ref: ModelRef, purpose: str) -> None:
        """Refuse (``PermissionDenied``) unless the version is approved or approvals are off."""
        version = self.versions.version_in(conn, ref)
        model_id = self.versions.model_id(conn, version.model)
        status = self._status(conn, model_id, version)
        if status.state in ("approved", "not_required"):
            return
        have = f"{len(status.approved_by)} of {status.required}"
        who = f": {', '.join(status.approved_by)}" if status.approved_by else ""
        hint = {
            "not_requested": f"request it with `modelyard models approval request {version.ref}`",
            "pending": "waiting for reviewers other than the requester and the author",
            "rejected": "it was rejected; request approval again after changing it",
        }[status.state]
        raise PermissionDenied(
            f"{version.ref} needs {status.required} approval(s) before {purpose} "
            f"(has {have}{who}); {hint}"
        )
