"""``modelyard.connect()``: the SDK's entry point, embedded or remote."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from modelyard.client.active_run import ActiveRun
from modelyard.client.admin import AdminAPI, AuditAPI
from modelyard.client.backend import Backend
from modelyard.client.batch import BatchAPI
from modelyard.client.buffer import MetricBuffer
from modelyard.client.endpoints import EndpointsAPI
from modelyard.client.models import ModelsAPI
from modelyard.client.monitors import MonitorsAPI
from modelyard.client.secrets import SecretsAPI
from modelyard.domain.runs import Experiment, MetricPoint, Run, RunPage
from modelyard.governance.lineage import LineageGraph
from modelyard.tracking.environment import capture_environment


class RunsAPI:
    """``yard.runs``: read, search and compare runs."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def get(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def search(
        self,
        filter: str | None = None,
        *,
        experiments: Sequence[str] | str | None = None,
        order_by: str | Sequence[str] | None = None,
        max_results: int = 100,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs matching ``filter``; pass ``page.next_cursor`` for the next.

        >>> page = yard.runs.search("metrics.auc > 0.9 and params.C = 0.5",
        ...                         order_by="metrics.auc desc")
        """
        names = [experiments] if isinstance(experiments, str) else experiments
        return self._backend.search_runs(names, filter, order_by, max_results, cursor)

    def to_frame(
        self,
        filter: str | None = None,
        *,
        experiments: Sequence[str] | str | None = None,
        order_by: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every matching run as one row: attributes, ``params.*`` and ``metrics.*`` columns."""
        names = [experiments] if isinstance(experiments, str) else experiments
        return self._backend.runs_frame(names, filter, order_by)

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        return self._backend.metric_history(run_id, key)

    def compare(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Params and latest metrics of several runs side by side (one column per run)."""
        runs = [self.get(run_id) for run_id in run_ids]
        rows: dict[str, dict[str, Any]] = {}
        for run in runs:
            column = f"{run.name} ({run.id[:8]})"
            for key, value in {"status": run.status.value, "experiment": run.experiment}.items():
                rows.setdefault(key, {})[column] = value
            for key, value in sorted(run.params.items()):
                rows.setdefault(f"params.{key}", {})[column] = value
            for key, metric in sorted(run.metrics.items()):
                rows.setdefault(f"metrics.{key}", {})[column] = metric
        return pd.DataFrame.from_dict(rows, orient="index")


class ExperimentsAPI:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def create(self, name: str, description: str = "") -> Experiment:
        return self._backend.create_experiment(name, description)

    def get(self, name: str) -> Experiment:
        return self._backend.get_experiment(name)

    def list(self) -> list[Experiment]:
        return self._backend.list_experiments()


class DatasetsAPI:
    """``yard.datasets``: the sensitivity classes of logged datasets.

    >>> yard.datasets.classify("churn-train", ["pii"])
    >>> yard.lineage("endpoint:churn").nodes[0].attributes["sensitivity"]
    ['pii']
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def classify(self, name: str, classes: Sequence[str]) -> list[str]:
        """Set the classes of every content version of ``name`` (empty clears them)."""
        return self._backend.classify_dataset(name, list(classes))

    def classes(self, name: str) -> list[str]:
        return self._backend.dataset_classes(name)


class Yard:
    """A connection to a yard. Make one with ``modelyard.connect()``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.runs = RunsAPI(backend)
        self.experiments = ExperimentsAPI(backend)
        self.models = ModelsAPI(self)
        self.endpoints = EndpointsAPI(self)
        self.datasets = DatasetsAPI(backend)
        self.secrets = SecretsAPI(backend)
        self.monitors = MonitorsAPI(backend)
        self.batch = BatchAPI(self)
        self.admin = AdminAPI(backend)
        self.audit = AuditAPI(backend)
        self._buffer = MetricBuffer(self._write_metrics)

    def _write_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        self.backend.log_batch(run_id, metrics=points)

    def __repr__(self) -> str:
        return f"<Yard {self.backend.location}>"

    def start_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        capture_env: bool = True,
    ) -> ActiveRun:
        """Start a run; use it in a ``with`` block so it always ends with a status."""
        environment = capture_environment(os.getcwd()) if capture_env else None
        run = self.backend.create_run(
            experiment,
            name=name,
            params=params or {},
            tags=tags or {},
            environment=environment,
        )
        return ActiveRun(self, run)

    def lineage(self, node: str) -> LineageGraph:
        """Upstream and downstream of ``node``: ``dataset:NAME``, ``run:ID``,
        ``version:MODEL/N``, ``endpoint:NAME`` or ``prediction:ENDPOINT/ID``.

        >>> graph = yard.lineage("prediction:churn/3f9c0a1b2c3d-0000002a")
        >>> [n.label for n in graph.upstream("dataset")]
        ['churn-train', 'churn-test']
        """
        return self.backend.lineage(node)

    def close(self) -> None:
        """Flush buffered metrics and release connections."""
        self._buffer.close()
        self.backend.close()

    def __enter__(self) -> Yard:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    home: str | os.PathLike[str] | None = None,
    workspace: str | None = None,
) -> Yard:
    """Open a yard.

    ``connect()`` is embedded: SQLite and files in ``MODELYARD_HOME`` (default
    ``./.modelyard``), or the database in ``MODELYARD_DB_URL``.
    ``connect("http://host:8700", api_key=...)`` talks to ``modelyard server``;
    ``MODELYARD_URL`` and ``MODELYARD_API_KEY`` set the same from the environment; a
    remote yard caches packages in ``home`` (or ``MODELYARD_HOME``) if given, else in the
    user's cache folder (``~/.cache/modelyard``).
    ``workspace`` (or ``MODELYARD_WORKSPACE``) is the team's workspace the yard
    creates in and lists from; by default the server picks the key's user's own.
    """
    from modelyard.config import Settings, client_home

    settings = Settings.from_env(home)
    url = url or settings.server_url
    workspace = workspace or settings.workspace
    if url:
        from modelyard.client.remote import RemoteBackend

        remote = RemoteBackend(
            url, api_key=api_key or settings.api_key, home=client_home(home), workspace=workspace
        )
        return Yard(remote)
    from modelyard.bootstrap import bootstrap
    from modelyard.client.local import LocalBackend

    return Yard(LocalBackend(bootstrap(settings), workspace=workspace))
