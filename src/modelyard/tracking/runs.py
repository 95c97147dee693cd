"""The tracking service: experiments, runs, and everything a run records.

Usable without any server::

    service = TrackingService(Database("sqlite:///yard.db"), LocalArtifactStore("art"))
    run = service.create_run("churn", params={"C": "0.5"})
    service.log_batch(run.id, metrics=[MetricPoint("loss", 0.3, step=1, timestamp=now_ms())])
    service.finish_run(run.id, RunStatus.FINISHED)

Every write publishes a ``Changed`` in its own transaction (the audit log records
it as the current actor): names, keys and counts, never a param or metric value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, BinaryIO

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from modelyard.artifacts.keys import safe_key
from modelyard.artifacts.store import ArtifactStore
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.events import Changed
from modelyard.domain.identity import DEFAULT_WORKSPACE
from modelyard.domain.runs import (
    Artifact,
    Environment,
    Experiment,
    MetricPoint,
    Run,
    RunStatus,
)
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.governance.workspaces import check_same, run_workspace
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

MAX_KEY = 250
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PACKAGE_PATH = "model"  # where a run keeps the package of a model it logged
MAX_PARAM_VALUE = 6000


def new_run_id() -> str:
    return uuid.uuid4().hex


def run_artifact_key(run_id: str, path: str) -> str:
    return f"runs/{run_id}/artifacts/{safe_key(path)}"


def _check_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise InvalidInput(f"{kind} name {key!r} must be a non-empty string of at most 250 chars")
    return key


def stringify(value: Any) -> str:
    """Params and tags are stored as text; booleans and None read the Python way."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise InvalidInput(f"value {text[:40]!r}... is longer than {MAX_PARAM_VALUE} characters")
    return text


def _metric_rows(run_id: str, points: Sequence[MetricPoint]) -> list[dict[str, Any]]:
    rows = []
    for point in points:
        _check_key("metric", point.key)
        try:
            value = float(point.value)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"metric '{point.key}' value {point.value!r} is not a number"
            ) from None
        step, stamp = int(point.step), int(point.timestamp) or now_ms()
        if not (INT64_MIN <= step <= INT64_MAX and 0 <= stamp <= INT64_MAX):
            raise InvalidInput(
                f"metric '{point.key}' step {step} or timestamp {stamp} is out of range "
                "(steps and timestamps are 64-bit integers; timestamps are epoch milliseconds)"
            )
        rows.append(
            {"run_id": run_id, "key": point.key, "value": value, "step": step, "timestamp": stamp}
        )
    return rows


def _batch_summary(
    rows: list[dict[str, Any]], params: Mapping[str, Any] | None, tags: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a batch wrote, never the values: the keys, and how many metric points."""
    return {
        "params": sorted(params or {}),
        "tags": sorted(tags or {}),
        "metrics": sorted({row["key"] for row in rows}),
        "points": len(rows),
    }


def _latest_per_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        best = latest.get(row["key"])
        if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
            latest[row["key"]] = row
    return list(latest.values())


class TrackingService:
    """Experiments and runs over a metadata ``Database`` and an ``ArtifactStore``."""

    def __init__(self, db: Database, artifacts: ArtifactStore) -> None:
        self.db = db
        self.artifacts = artifacts
        self._experiments: dict[str, Experiment] = {}  # never renamed or deleted: safe to keep
        self._environments: set[str] = set()  # stored by content hash: never change

    # -- experiments -------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", *, workspace: str = DEFAULT_WORKSPACE
    ) -> Experiment:
        _check_key("experiment", name)
        try:
            with self.db.write() as conn:
                created = conn.execute(
                    t.experiments.insert().values(
                        name=name, description=description, created_at=now_ms(), workspace=workspace
                    )
                )
                experiment_id = int(created.inserted_primary_key[0])  # type: ignore[index]
                after = {"experiment_id": experiment_id, "name": name}
                publish(
                    conn,
                    Changed("create experiment", f"experiments/{name}", workspace, after=after),
                )
        except DBIntegrityError:
            raise Conflict(f"experiment '{name}' already exists") from None
        return self.get_experiment(name)

    def get_experiment(self, name: str) -> Experiment:
        with self.db.read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
        if row is None:
            raise NotFound(f"experiment '{name}' does not exist")
        return _experiment(row)

    def experiment_by_id(self, experiment_id: int) -> Experiment:
        with self.db.read() as conn:
            query = select(t.experiments).where(t.experiments.c.id == experiment_id)
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        return _experiment(row)

    def ensure_experiment(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> Experiment:
        """Get the experiment, creating it in ``workspace`` if needed; safe when racing
        other processes. One that exists in another workspace is refused."""
        found = self._experiments.get(name)
        if found is None:
            try:
                found = self.get_experiment(name)
            except NotFound:
                try:
                    found = self.create_experiment(name, workspace=workspace)
                except Conflict:
                    found = self.get_experiment(name)
            self._experiments[name] = found
        check_same(f"experiment '{name}'", found.workspace, workspace)
        return found

    def list_experiments(self, workspace: str | None = None) -> list[Experiment]:
        query = select(t.experiments).order_by(t.experiments.c.id)
        if workspace is not None:
            query = query.where(t.experiments.c.workspace == workspace)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_experiment(r) for r in rows]

    def experiment_ids(
        self, names: Sequence[str] | None, workspace: str | None = None
    ) -> list[int] | None:
        """Ids of the named experiments, or of every experiment of ``workspace``
        (None: no restriction); a named experiment of another workspace is not found."""
        if names is None:
            if workspace is None:
                return None
            return [e.id for e in self.list_experiments(workspace)]
        found = [self.get_experiment(name) for name in names]
        for experiment in found:
            if workspace is not None and experiment.workspace != workspace:
                raise NotFound(f"experiment '{experiment.name}' does not exist")
        return [experiment.id for experiment in found]

    # -- runs --------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        environment: Environment | None = None,
        environment_id: str | None = None,
        run_id: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created in ``workspace`` if it does not exist).

        Pass the captured ``environment``, or the ``environment_id`` of one stored
        before (clients send the environment once per process, then its id). The
        run's user is the current actor (``domain.actors``), never an argument.
        """
        exp = self.ensure_experiment(experiment, workspace)
        run = Run(
            id=run_id or new_run_id(),
            experiment_id=exp.id,
            experiment=exp.name,
            name=name or "",
            status=RunStatus.RUNNING,
            start_time=now_ms(),
            user=current_actor().user,
            environment_id=environment.id if environment else environment_id,
            params={_check_key("param", k): stringify(v) for k, v in (params or {}).items()},
            tags={_check_key("tag", k): stringify(v) for k, v in (tags or {}).items()},
        )
        if not run.name:
            run = replace(run, name=f"run-{run.id[:8]}")
        with self.db.write() as conn:
            if environment is not None and environment.id not in self._environments:
                self._store_environment(conn, environment)
            elif environment is None and environment_id is not None:
                self._require_environment(conn, environment_id)
            conn.execute(
                t.runs.insert().values(
                    id=run.id,
                    experiment_id=run.experiment_id,
                    name=run.name,
                    status=run.status.value,
                    start_time=run.start_time,
                    user=run.user,
                    environment_id=run.environment_id,
                )
            )
            self._write_params(conn, run.id, run.params, new_run=True)
            self._write_tags(conn, run.id, run.tags)
            after = {
                "experiment": exp.name,
                "name": run.name,
                "params": sorted(run.params),
                "tags": sorted(run.tags),
            }
            publish(conn, Changed("create run", f"runs/{run.id}", exp.workspace, after=after))
        if environment is not None:
            self._environments.add(environment.id)
        return run

    def _store_environment(self, conn: Connection, environment: Environment) -> None:
        stmt = insert_for(self.db.dialect, t.environments).values(
            id=environment.id, data=environment.as_dict(), created_at=now_ms()
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    def _require_environment(self, conn: Connection, environment_id: str) -> None:
        found = conn.execute(
            select(t.environments.c.id).where(t.environments.c.id == environment_id)
        ).first()
        if found is None:
            raise NotFound(f"environment '{environment_id}' is not stored: send it in full")

    def get_environment(self, environment_id: str) -> Environment:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.environments).where(t.environments.c.id == environment_id)
            ).first()
        if row is None:
            raise NotFound(f"environment '{environment_id}' does not exist")
        return Environment(id=row.id, **row.data)

    def _require_run(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist")
        return row

    def _require_active(self, conn: Connection, run_id: str) -> str:
        """The workspace of run ``run_id``, which must still be running (one read)."""
        r, e = t.runs.c, t.experiments.c
        row = conn.execute(
            select(r.status, e.workspace)
            .join(t.experiments, e.id == r.experiment_id)
            .where(r.id == run_id)
        ).first()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist")
        if row.status != RunStatus.RUNNING.value:
            raise Conflict(
                f"run '{run_id}' is {row.status}; it no longer accepts metrics or params"
            )
        return str(row.workspace)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricPoint] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Record many metric points, params and tags in one transaction."""
        rows = _metric_rows(run_id, metrics)
        with self.db.write() as conn:
            workspace = self._require_active(conn, run_id)
            if rows:
                conn.execute(t.metrics.insert(), rows)
                self._upsert_latest(conn, _latest_per_key(rows))
            self._write_params(conn, run_id, params or {})
            self._write_tags(conn, run_id, tags or {})
            after = _batch_summary(rows, params, tags)
            publish(conn, Changed("log batch", f"runs/{run_id}", workspace, after=after))

    def _upsert_latest(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        stmt = insert_for(self.db.dialect, t.latest_metrics)
        current = t.latest_metrics.c
        newer = or_(
            stmt.excluded.step > current.step,
            and_(stmt.excluded.step == current.step, stmt.excluded.timestamp >= current.timestamp),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": stmt.excluded.value,
                "step": stmt.excluded.step,
                "timestamp": stmt.excluded.timestamp,
            },
            where=newer,
        )
        conn.execute(stmt, rows)

    def _write_params(
        self, conn: Connection, run_id: str, params: Mapping[str, Any], *, new_run: bool = False
    ) -> None:
        if not params:
            return
        wanted = {_check_key("param", k): stringify(v) for k, v in params.items()}
        stmt = insert_for(self.db.dialect, t.params).on_conflict_do_nothing(
            index_elements=["run_id", "key"]
        )
        conn.execute(stmt, [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items()])
        if new_run:
            return  # a run created in this transaction has no earlier params to clash with
        stored = conn.execute(
            select(t.params.c.key, t.params.c.value).where(
                t.params.c.run_id == run_id, t.params.c.key.in_(wanted)
            )
        ).all()
        for key, value in stored:
            if value != wanted[key]:
                raise Conflict(
                    f"param '{key}' of run '{run_id}' is already {value!r}; "
                    f"params are immutable (tried {wanted[key]!r})"
                )

    def _write_tags(self, conn: Connection, run_id: str, tags: Mapping[str, Any]) -> None:
        if not tags:
            return
        stmt = insert_for(self.db.dialect, t.tags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
        )
        rows = [
            {"run_id": run_id, "key": _check_key("tag", k), "value": stringify(v)}
            for k, v in tags.items()
        ]
        conn.execute(stmt, rows)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a run, running or ended (a tag describes a run, it is no result)."""
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            self._write_tags(conn, run_id, tags)
            after = {"tags": sorted(tags)}
            change = Changed(
                "set run tags", f"runs/{run_id}", run_workspace(conn, run_id), None, after
            )
            publish(conn, change)

    def finish_run(self, run_id: str, status: RunStatus | str, error: str | None = None) -> Run:
        """End a run as FINISHED, FAILED or KILLED, recording ``error`` if given."""
        final = RunStatus(status)
        if not final.is_terminal:
            raise InvalidInput(f"a run cannot be finished as {final.value}")
        with self.db.write() as conn:
            ended = conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.status == RunStatus.RUNNING.value)
                .values(status=final.value, end_time=now_ms(), error=error)
            )
            if ended.rowcount != 1:
                row = self._require_run(conn, run_id)
                raise Conflict(f"run '{run_id}' already ended as {row.status}")
            before, after = {"status": RunStatus.RUNNING.value}, {"status": final.value}
            change = Changed(
                "finish run", f"runs/{run_id}", run_workspace(conn, run_id), before, after
            )
            publish(conn, change)
            return load_runs(conn, [run_id])[0]

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            found = load_runs(conn, [run_id])
        if not found:
            raise NotFound(f"run '{run_id}' does not exist")
        return found[0]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        m = t.metrics.c
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                select(m.key, m.value, m.step, m.timestamp)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.id)
            ).all()
        return [MetricPoint(r.key, r.value, r.step, r.timestamp) for r in rows]

    # -- artifacts ---------------------------------------------------------

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        """Store ``source`` as the run's artifact ``path``; records sha256 and size."""
        key = run_artifact_key(run_id, path)
        with self.db.read() as conn:
            self._require_run(conn, run_id)
        sha256, size = self.artifacts.put(key, source)
        artifact = Artifact(path=safe_key(path), sha256=sha256, size=size, created_at=now_ms())
        stmt = insert_for(self.db.dialect, t.artifacts)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={"sha256": sha256, "size": size, "created_at": artifact.created_at},
        )
        with self.db.write() as conn:
            conn.execute(stmt, [{"run_id": run_id, **artifact.__dict__}])
            after = {"path": artifact.path, "size": size, "sha256": sha256}
            resource = f"runs/{run_id}/artifacts/{artifact.path}"
            workspace = run_workspace(conn, run_id)
            publish(conn, Changed("log artifact", resource, workspace, after=after))
        return artifact

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[Artifact]:
        a = t.artifacts.c
        query = select(t.artifacts).where(a.run_id == run_id).order_by(a.path)
        if prefix:
            query = query.where(a.path.startswith(safe_key(prefix) + "/", autoescape=True))
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(query).all()
        return [Artifact(r.path, r.sha256, r.size, r.created_at) for r in rows]

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.artifacts.c.path).where(
                    t.artifacts.c.run_id == run_id, t.artifacts.c.path == safe_key(path)
                )
            ).first()
        if row is None:
            raise NotFound(f"run '{run_id}' has no artifact '{path}'")
        return self.artifacts.open(run_artifact_key(run_id, path))


def load_runs(conn: Connection, run_ids: Iterable[str]) -> list[Run]:
    """Read whole runs (params, latest metrics, tags) for ``run_ids``, in that order."""
    ids = list(run_ids)
    if not ids:
        return []
    r, e = t.runs.c, t.experiments.c
    rows = conn.execute(
        select(t.runs, e.name.label("experiment"))
        .join(t.experiments, e.id == r.experiment_id)
        .where(r.id.in_(ids))
    ).all()
    params = _grouped(conn, t.params, ids)
    tags = _grouped(conn, t.tags, ids)
    metrics = _grouped(conn, t.latest_metrics, ids)
    by_id = {row.id: _run_from_row(row, params, metrics, tags) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def _grouped(conn: Connection, table: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    query = select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(ids))
    for run_id, key, value in conn.execute(query):
        grouped.setdefault(run_id, {})[key] = value
    return grouped


def _experiment(row: Any) -> Experiment:
    return Experiment(row.id, row.name, row.created_at, row.description, row.workspace)


def _run_from_row(
    row: Any, params: dict[str, Any], metrics: dict[str, Any], tags: dict[str, Any]
) -> Run:
    return Run(
        id=row.id,
        experiment_id=row.experiment_id,
        experiment=row.experiment,
        name=row.name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        user=row.user,
        error=row.error,
        environment_id=row.environment_id,
        params=params.get(row.id, {}),
        metrics=metrics.get(row.id, {}),
        tags=tags.get(row.id, {}),
    )


def count_runs(conn: Connection, experiment_ids: list[int] | None) -> int:
    query = select(func.count()).select_from(t.runs)
    if experiment_ids is not None:
        query = query.where(t.runs.c.experiment_id.in_(experiment_ids))
    return int(conn.execute(query).scalar_one())
