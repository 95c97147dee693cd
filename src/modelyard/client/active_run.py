"""A run being recorded: the object ``yard.start_run()`` returns."""

from __future__ import annotations

import io
import json
import traceback
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from modelyard.clock import now_ms
from modelyard.domain.datasets import Dataset
from modelyard.domain.models import ModelVersion
from modelyard.domain.runs import Artifact, MetricPoint, Run, RunStatus
from modelyard.errors import InvalidInput
from modelyard.tracking.datasets import profile_dataset

if TYPE_CHECKING:
    from modelyard.client.yard import Yard

MetricInput = MetricPoint | tuple[str, float] | tuple[str, float, int]


class ActiveRun:
    """Log to a RUNNING run; use it as a context manager.

    >>> with yard.start_run(experiment="churn", params={"C": 0.5}) as run:
    ...     run.log_metric("loss", 0.42, step=1)
    ...     run.log_model(model, name="churn", input_example=frame.head())

    Leaving the block normally ends the run FINISHED; an exception ends it FAILED
    with the error recorded; Ctrl-C ends it KILLED.
    """

    def __init__(self, yard: Yard, run: Run) -> None:
        self._yard = yard
        self.id = run.id
        self.experiment = run.experiment
        self.name = run.name
        self._steps: defaultdict[str, int] = defaultdict(int)
        self._ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} experiment={self.experiment!r}>"

    # -- metrics, params, tags ---------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one metric point; never blocks on I/O. ``step`` defaults to the next one."""
        if step is None:
            step = self._steps[key]
        self._steps[key] = step + 1
        self._yard._buffer.add(self.id, MetricPoint(key, float(value), step, now_ms()))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_batch(
        self,
        metrics: Iterable[MetricInput] | Mapping[str, Sequence[float]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write many points at once: ``{"loss": [0.9, 0.7, ...]}`` (steps 0..n-1) or
        a list of ``MetricPoint`` / ``(key, value[, step])``. Written synchronously."""
        points = list(_as_points(metrics))
        self._yard._buffer.flush(self.id)
        self._yard.backend.log_batch(self.id, metrics=points, params=params, tags=tags)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._yard.backend.log_batch(self.id, params=params)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._yard.backend.log_batch(self.id, tags=tags)

    def flush(self) -> None:
        """Write every buffered metric point now."""
        self._yard._buffer.flush(self.id)

    # -- artifacts, datasets, models ---------------------------------------

    def log_artifact(
        self, local_path: str | Path, artifact_path: str | None = None
    ) -> list[Artifact]:
        """Upload a file, or every file below a folder, under ``artifact_path``."""
        source = Path(local_path)
        if source.is_dir():
            base = artifact_path or source.name
            files = sorted(p for p in source.rglob("*") if p.is_file())
            return [self._upload(p, f"{base}/{p.relative_to(source).as_posix()}") for p in files]
        if not source.is_file():
            raise InvalidInput(f"cannot log artifact '{source}': no such file or folder")
        return [self._upload(source, artifact_path or source.name)]

    def _upload(self, path: Path, artifact_path: str) -> Artifact:
        with path.open("rb") as handle:
            return self._yard.backend.log_artifact(self.id, artifact_path, handle)

    def log_text(self, text: str, artifact_path: str) -> Artifact:
        return self._yard.backend.log_artifact(self.id, artifact_path, io.BytesIO(text.encode()))

    def log_dict(self, data: Mapping[str, Any], artifact_path: str) -> Artifact:
        return self.log_text(json.dumps(data, indent=2, sort_keys=True, default=str), artifact_path)

    def log_dataset(
        self,
        data: Any,
        *,
        name: str,
        role: str = "training",
        store: bool = True,
        uri: str | None = None,
    ) -> Dataset:
        """Record a DataFrame, Arrow table or Parquet/CSV path the run used.

        Its content fingerprint, schema and row count are always recorded; with
        ``store`` (the default) frames and tables are kept as Parquet in the
        yard, while files are referenced by their path.
        """
        profile = profile_dataset(data, uri=uri)
        content = None
        if store and profile.table is not None:
            content = io.BytesIO()
            pq.write_table(profile.table, content)
            content.seek(0)
        return self._yard.backend.log_dataset(
            self.id,
            name=name,
            role=role,
            fingerprint=profile.fingerprint,
            row_count=profile.row_count,
            columns=profile.columns,
            uri=profile.uri,
            content=content,
        )

    def log_model(
        self,
        model: Any,
        *,
        name: str,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        **package_options: Any,
    ) -> ModelVersion:
        """Package ``model`` into this run and register it as the next version of ``name``."""
        return self._yard.models.register(
            model,
            name=name,
            input_example=input_example,
            run_id=self.id,
            description=description,
            tags=tags,
            **package_options,
        )

    # -- lifecycle ---------------------------------------------------------

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> Run:
        """Flush buffered metrics and end the run."""
        if self._ended:
            return self._yard.backend.get_run(self.id)
        try:
            self._yard._buffer.flush(self.id)
        finally:
            self._ended = True
        return self._yard.backend.finish_run(self.id, RunStatus(status).value, error)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED, "interrupted (KeyboardInterrupt)")
        else:
            summary = "".join(traceback.format_exception(exc_type, exc, tb, limit=-5))
            self.end(RunStatus.FAILED, summary[-4000:])


def _as_points(
    metrics: Iterable[MetricInput] | Mapping[str, Sequence[float]],
) -> Iterable[MetricPoint]:
    stamp = now_ms()
    if isinstance(metrics, Mapping):
        for key, values in metrics.items():
            for step, value in enumerate(values):
                yield MetricPoint(key, float(value), step, stamp)
        return
    for item in metrics:
        if isinstance(item, MetricPoint):
            yield item if item.timestamp else MetricPoint(item.key, item.value, item.step, stamp)
        elif len(item) == 3:
            yield MetricPoint(item[0], float(item[1]), int(item[2]), stamp)  # type: ignore[misc]
        else:
            yield MetricPoint(item[0], float(item[1]), 0, stamp)
