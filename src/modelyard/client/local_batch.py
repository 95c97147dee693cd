"""Batch scoring records in the embedded backend."""

from __future__ import annotations

from modelyard.batch.jobs import BatchJobs
from modelyard.batch.predictions import JournalWriter
from modelyard.client.local_base import LocalBase
from modelyard.domain.batch import BatchJob, JobOutcome


class LocalBatch(LocalBase):
    """Start, finish and read batch jobs, and open an endpoint's prediction log, in-process."""

    @property
    def _batch_jobs(self) -> BatchJobs:
        return BatchJobs(self.services.db, self.services.catalog)

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
        return self._batch_jobs.start(
            ref,
            input_uri=input_uri,
            output_uri=output_uri,
            output_format=output_format,
            keep=keep,
            workers=workers,
            engine=engine,
            log_to=log_to,
        )

    def finish_batch_job(self, job_id: str, outcome: JobOutcome) -> BatchJob:
        return self._batch_jobs.finish(job_id, outcome)

    def heartbeat_batch_job(self, job_id: str) -> BatchJob:
        return self._batch_jobs.heartbeat(job_id)

    def get_batch_job(self, job_id: str) -> BatchJob:
        return self._batch_jobs.get(job_id)

    def list_batch_jobs(self, model: str | None, status: str | None, limit: int) -> list[BatchJob]:
        return self._batch_jobs.list(
            workspace=self.workspace, model=model, status=status, limit=limit
        )

    def batch_journal(self, endpoint: str) -> JournalWriter:
        self.services.endpoints.get(endpoint)  # NotFound names it before a log is opened
        return self.services.predictions.journal(endpoint)
