"""Batch scoring records over HTTP: the data stays on this machine, only the record travels."""

from __future__ import annotations

from typing import Any

from modelyard.batch.predictions import JournalWriter
from modelyard.client.remote_base import RemoteBase, _path, parse
from modelyard.domain.batch import BatchJob, JobOutcome
from modelyard.domain.models import ModelRef
from modelyard.errors import InvalidInput


class RemoteBatch(RemoteBase):
    """Start, finish and read batch jobs on the server."""

    def start_batch_job(
        self,
        ref: str,
        *,
        input_uri: str,
        output_uri: str,
        output_format: str,
        keep: list[str],
        workers: int,
        engine: str,
        log_to: str | None,
    ) -> BatchJob:
        body = {
            "ref": ref,
            "input_uri": input_uri,
            "output_uri": output_uri,
            "output_format": output_format,
            "keep": keep,
            "workers": workers,
            "engine": engine,
            "log_to": log_to,
        }
        name = _path(ModelRef.parse(ref).name)
        return parse(BatchJob, self._json("POST", f"/models/{name}/batch-jobs", json=body))

    def finish_batch_job(self, job_id: str, outcome: JobOutcome) -> BatchJob:
        body: dict[str, Any] = {
            "status": outcome.status.value,
            "rows_in": outcome.rows_in,
            "rows_out": outcome.rows_out,
            "input_fingerprint": outcome.input_fingerprint,
            "output_fingerprint": outcome.output_fingerprint,
            "input_columns": [list(pair) for pair in outcome.input_columns],
            "output_columns": [list(pair) for pair in outcome.output_columns],
            "error": outcome.error,
        }
        if (
            outcome.workers is not None
        ):  # only when the engine chose: older servers know no such field
            body["workers"] = outcome.workers
        path = f"/batch-jobs/{_path(job_id)}/finish"
        return parse(BatchJob, self._json("POST", path, json=body))

    def heartbeat_batch_job(self, job_id: str) -> BatchJob:
        path = f"/batch-jobs/{_path(job_id)}/heartbeat"
        return parse(BatchJob, self._json("POST", path))

    def get_batch_job(self, job_id: str) -> BatchJob:
        return parse(BatchJob, self._json("GET", f"/batch-jobs/{_path(job_id)}"))

    def list_batch_jobs(self, model: str | None, status: str | None, limit: int) -> list[BatchJob]:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if status is not None:
            params["status"] = status
        return parse(list[BatchJob], self._json("GET", "/batch-jobs", params=params))

    def batch_journal(self, endpoint: str) -> JournalWriter:
        raise InvalidInput(
            f"--log-to {endpoint}: a remote yard keeps its prediction logs on the server, and "
            "batch data never goes there; score with an embedded yard on the server's store "
            "to log batch predictions"
        )
