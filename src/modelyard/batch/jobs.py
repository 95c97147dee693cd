"""The record of batch scoring jobs: started, finished, listed.

Scoring itself runs where the data is (``batch/local.py``, on the caller's machine);
this service keeps only the record, in the workspace of the model scored::

    >>> job = jobs.start("churn@champion", input_uri="file:///data/in/",
    ...                  output_uri="file:///data/scores.parquet", output_format="parquet")
    >>> jobs.finish(job.id, JobOutcome(JobStatus.SUCCEEDED, rows_in=10, rows_out=10, ...))

Who ran a job is ``current_actor().user``; only they may finish it. A job that
succeeds is linked to a dataset record for its input and one for its output (found by
content fingerprint in the workspace, else created under the file or folder name), so
lineage walks dataset -> job -> dataset and version -> job.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, select

from modelyard.catalog.registry import Catalog
from modelyard.clock import now_ms
from modelyard.domain.actors import current_actor
from modelyard.domain.batch import (
    FINISHED,
    STALE_MS,
    BatchJob,
    JobOutcome,
    JobStatus,
    check_engine,
    check_fingerprint,
    check_format,
    check_keep,
    check_workers,
    parse_status,
)
from modelyard.domain.endpoints import check_endpoint_name
from modelyard.domain.events import Changed
from modelyard.domain.models import ModelRef, Stage
from modelyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.governance.workspaces import check_same
from modelyard.store import schema as t
from modelyard.store.database import Database, publish
from modelyard.store.dialects import insert_for

ERROR_CHARS = 2000  # an error is kept whole up to here; the audit summary keeps 200


class BatchJobs:
    """Start, finish and read batch scoring job records."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog

    def start(
        self,
        ref: str,
        *,
        input_uri: str,
        output_uri: str,
        output_format: str = "parquet",
        keep: list[str] | tuple[str, ...] = (),
        workers: int = 1,
        engine: str | None = None,
        log_to: str | None = None,
    ) -> BatchJob:
        """Record a running job of version ``ref`` (an alias resolves to its version now),
        scored by ``engine`` (``local`` or ``ray``; None: not said) with ``workers``."""
        parsed = ModelRef.parse(ref)
        row: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "ref": str(parsed),
            "status": JobStatus.RUNNING.value,
            "input_uri": _uri(input_uri, "input"),
            "output_uri": _uri(output_uri, "output"),
            "output_format": check_format(output_format),
            "keep": check_keep(list(keep)),
            "workers": check_workers(workers),
            "engine": None if engine is None else check_engine(engine),
            "log_to": None if log_to is None else check_endpoint_name(log_to),
            "created_by": current_actor().user,
            "created_at": now_ms(),
        }
        row["heartbeat_at"] = row["created_at"]
        with self.db.write() as conn:
            version = self.catalog.version_in(conn, parsed)
            if version.stage is Stage.RETIRED:
                raise Conflict(f"{version.ref} is retired: it scores nothing any more")
            if version.signature is None:
                raise InvalidInput(f"{version.ref} has no signature: batch scoring enforces one")
            model_id, _ = self.catalog.resolve(conn, ModelRef(version.model, version.version))
            workspace = _model_workspace(conn, model_id)
            if row["log_to"] is not None:
                _check_endpoint(conn, row["log_to"], workspace)
            row |= {
                "workspace": workspace,
                "model_id": model_id,
                "version": version.version,
                "package_digest": version.package_digest,
            }
            conn.execute(t.batch_jobs.insert().values(**row))
            after = {
                "version": version.ref,
                "digest": version.package_digest,
                "input": row["input_uri"],
                "output": row["output_uri"],
                "log_to": row["log_to"],
                "engine": row["engine"],
                "workers": row["workers"],
            }
            publish(conn, Changed("start batch job", _resource(row["id"]), workspace, after=after))
        return self.get(row["id"])

    def finish(self, job_id: str, outcome: JobOutcome) -> BatchJob:
        """Record how job ``job_id`` ended (and how many workers scored it, when the engine
        chose that); only who started it may, and only once."""
        if outcome.status not in FINISHED:
            raise InvalidInput(f"a job finishes succeeded or failed, not {outcome.status.value}")
        check_fingerprint(outcome.input_fingerprint, "input")
        check_fingerprint(outcome.output_fingerprint, "output")
        with self.db.write() as conn:
            row = _job_row(conn, job_id)
            _check_finisher(row)
            values = _finished_values(outcome)
            if values.get("workers", row.workers) > row.workers:
                raise InvalidInput(
                    f"batch job {job_id} was started with at most {row.workers} workers, "
                    f"not {values['workers']}: a finish says how many of them scored"
                )
            if outcome.status is JobStatus.SUCCEEDED:
                values |= self._link_datasets(conn, row, outcome)
            conn.execute(t.batch_jobs.update().where(t.batch_jobs.c.id == job_id).values(**values))
            after = {
                "status": outcome.status.value,
                "rows_in": outcome.rows_in,
                "rows_out": outcome.rows_out,
                "workers": values.get("workers", row.workers),
                "error": (outcome.error or "")[:200] or None,
            }
            change = Changed(
                "finish batch job",
                _resource(job_id),
                row.workspace,
                {"status": row.status},
                after,
            )
            publish(conn, change)
        return self.get(job_id)

    def heartbeat(self, job_id: str) -> BatchJob:
        """Renew running job ``job_id``'s heartbeat (only who started it may): its process
        is still scoring. A lease renewal, like a monitor window's claim: not an audited
        change (the start and the finish are)."""
        with self.db.write() as conn:
            row = _job_row(conn, job_id)
            _check_finisher(row)
            j = t.batch_jobs.c
            conn.execute(t.batch_jobs.update().where(j.id == job_id).values(heartbeat_at=now_ms()))
        return self.get(job_id)

    def _link_datasets(self, conn: Connection, row: Any, outcome: JobOutcome) -> dict[str, Any]:
        if outcome.input_fingerprint is None or outcome.output_fingerprint is None:
            raise InvalidInput("a succeeded job names its input's and its output's fingerprints")
        return {
            "input_dataset_id": _dataset_for(
                conn,
                self.db.dialect,
                row.workspace,
                row.input_uri,
                outcome.input_fingerprint,
                outcome.rows_in,
                outcome.input_columns,
            ),
            "output_dataset_id": _dataset_for(
                conn,
                self.db.dialect,
                row.workspace,
                row.output_uri,
                outcome.output_fingerprint,
                outcome.rows_out,
                outcome.output_columns,
            ),
        }

    def get(self, job_id: str) -> BatchJob:
        with self.db.read() as conn:
            rows = conn.execute(_jobs_query().where(t.batch_jobs.c.id == job_id)).all()
        if not rows:
            raise NotFound(f"batch job '{job_id}' does not exist")
        return _job(rows[0])

    def list(
        self,
        *,
        workspace: str | None = None,
        model: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[BatchJob]:
        """The newest jobs first, filtered by workspace, model name and status."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        j = t.batch_jobs.c
        query = _jobs_query().order_by(j.created_at.desc(), j.id).limit(limit)
        if workspace is not None:
            query = query.where(j.workspace == workspace)
        if model is not None:
            query = query.where(t.models.c.name == model)
        if status is not None:
            query = query.where(*_status_is(parse_status(status)))
        with self.db.read() as conn:
            return [_job(row) for row in conn.execute(query)]


def _status_is(status: JobStatus) -> list[Any]:
    """Conditions for jobs shown with ``status``: a running job goes quiet by its heartbeat."""
    j = t.batch_jobs.c
    beat = func.coalesce(j.heartbeat_at, j.created_at)
    cutoff = now_ms() - STALE_MS
    if status is JobStatus.ABANDONED:
        return [j.status == JobStatus.RUNNING.value, beat < cutoff]
    if status is JobStatus.RUNNING:
        return [j.status == JobStatus.RUNNING.value, beat >= cutoff]
    return [j.status == status.value]


def _shown_status(row: Any) -> JobStatus:
    status = JobStatus(row.status)
    beat = row.heartbeat_at if row.heartbeat_at is not None else row.created_at
    if status is JobStatus.RUNNING and beat < now_ms() - STALE_MS:
        return JobStatus.ABANDONED
    return status


def _resource(job_id: str) -> str:
    return f"batch-jobs/{job_id}"


def _uri(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InvalidInput(f"the {what} location {value!r} is empty or not text")
    return value


def _model_workspace(conn: Connection, model_id: int) -> str:
    query = select(t.models.c.workspace).where(t.models.c.id == model_id)
    return str(conn.execute(query).scalar_one())


def _check_endpoint(conn: Connection, endpoint: str, workspace: str) -> None:
    owner = conn.execute(
        select(t.endpoints.c.workspace).where(t.endpoints.c.name == endpoint)
    ).scalar()
    if owner is None:
        raise NotFound(f"endpoint '{endpoint}' does not exist (--log-to names one)")
    check_same(f"endpoint '{endpoint}'", str(owner), workspace)


def _job_row(conn: Connection, job_id: str) -> Any:
    row = conn.execute(select(t.batch_jobs).where(t.batch_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"batch job '{job_id}' does not exist")
    if row.status != JobStatus.RUNNING.value:
        raise Conflict(f"batch job '{job_id}' has finished already ({row.status})")
    return row


def _check_finisher(row: Any) -> None:
    user = current_actor().user
    if row.created_by != user:
        raise PermissionDenied(
            f"batch job '{row.id}' was started by '{row.created_by}': only they may finish it, "
            f"not '{user}'"
        )


def _finished_values(outcome: JobOutcome) -> dict[str, Any]:
    chosen = {} if outcome.workers is None else {"workers": check_workers(outcome.workers)}
    return chosen | {
        "status": outcome.status.value,
        "finished_at": now_ms(),
        "rows_in": outcome.rows_in,
        "rows_out": outcome.rows_out,
        "input_fingerprint": outcome.input_fingerprint,
        "output_fingerprint": outcome.output_fingerprint,
        "error": None if outcome.error is None else outcome.error[:ERROR_CHARS],
    }


def dataset_name(uri: str) -> str:
    """The last part of a location: ``file:///data/scores.parquet`` -> ``scores.parquet``."""
    return uri.rstrip("/").rpartition("/")[2] or uri


def _dataset_for(
    conn: Connection,
    dialect: str,
    workspace: str,
    uri: str,
    fingerprint: str,
    rows: int,
    columns: list[tuple[str, str]],
) -> str:
    """The id of the workspace's dataset with this content, else of a new one named after
    the location (a run that logged the same file is found by its fingerprint)."""
    d = t.datasets.c
    found = conn.execute(
        select(d.id)
        .where(d.fingerprint == fingerprint, d.workspace == workspace)
        .order_by(d.created_at, d.id)
        .limit(1)
    ).scalar()
    if found is not None:
        return str(found)
    name = dataset_name(uri)
    row = {
        "id": uuid.uuid4().hex,
        "name": name,
        "fingerprint": fingerprint,
        "row_count": rows,
        "columns": [{"name": n, "type": kind} for n, kind in columns],
        "uri": uri,
        "stored": False,
        "created_at": now_ms(),
        "workspace": workspace,
    }
    insert = insert_for(dialect, t.datasets).on_conflict_do_nothing(
        index_elements=["name", "fingerprint"]
    )
    conn.execute(insert, [row])
    query = select(d.id).where(d.name == name, d.fingerprint == fingerprint)
    return str(conn.execute(query).scalar_one())


def _jobs_query() -> Any:
    j, m = t.batch_jobs.c, t.models.c
    return select(t.batch_jobs, m.name.label("model")).join(t.models, m.id == j.model_id)


def _job(row: Any) -> BatchJob:
    return BatchJob(
        id=row.id,
        workspace=row.workspace,
        ref=row.ref,
        model=row.model,
        version=row.version,
        package_digest=row.package_digest,
        status=_shown_status(row),
        input_uri=row.input_uri,
        output_uri=row.output_uri,
        output_format=row.output_format,
        created_by=row.created_by,
        created_at=row.created_at,
        keep=list(row.keep),
        workers=row.workers,
        engine=row.engine,
        log_to=row.log_to,
        finished_at=row.finished_at,
        rows_in=row.rows_in,
        rows_out=row.rows_out,
        input_fingerprint=row.input_fingerprint,
        output_fingerprint=row.output_fingerprint,
        input_dataset=row.input_dataset_id,
        output_dataset=row.output_dataset_id,
        error=row.error,
        heartbeat_at=row.heartbeat_at,
    )
