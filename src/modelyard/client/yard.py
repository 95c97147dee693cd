"""``modelyard.connect()``: the SDK's entry point, embedded or remote."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TextIO

import pandas as pd

from modelyard.client.active_run import ActiveRun
from modelyard.client.admin import AdminAPI, AuditAPI
from modelyard.client.backend import Backend
from modelyard.client.batch import BatchAPI
from modelyard.client.buffer import MetricBuffer
from modelyard.client.downloads import save
from modelyard.client.endpoints import EndpointsAPI
from modelyard.client.models import ModelsAPI
from modelyard.client.monitors import MonitorsAPI
from modelyard.client.reproduce import Plan, reproduce, reproduction_tags
from modelyard.client.secrets import SecretsAPI
from modelyard.domain.datasets import Dataset
from modelyard.domain.reproduction import DEFAULT_TOLERANCE, Reproduction
from modelyard.domain.runs import Artifact, Experiment, MetricPoint, Run, RunPage
from modelyard.errors import NotFound
from modelyard.governance.lineage import LineageGraph
from modelyard.tracking.environment import capture_environment


class RunsAPI:
    """``yard.runs``: read, search, compare and reproduce runs."""

    def __init__(self, yard: Yard) -> None:
        self._yard = yard
        self._backend = yard.backend

    def reproducibility(
        self, ref: str, *, repo: str | os.PathLike[str] | None = None, allow_dirty: bool = False
    ) -> list[str]:
        """What stops run ``ref`` (a run id, or a model version such as ``churn/3``) from
        being run again as recorded: one line per missing or changed piece (code, data,
        entry point, environment capture, metrics); empty when nothing does. Nothing
        is run.

        >>> yard.runs.reproducibility("churn@champion")
        ['data: dataset 'train' at /data/train.csv has changed (sha256 ...)']
        """
        return Plan.of(self._yard, ref, repo=repo, allow_dirty=allow_dirty).problems

    def reproduce(
        self,
        ref: str,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        allow_dirty: bool = False,
        allow_environment: bool = False,
        virtualenv: str | os.PathLike[str] | None = None,
        python: str | os.PathLike[str] | None = None,
        repo: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        log: TextIO | None = None,
    ) -> Reproduction:
        """Run ``ref`` (a run id, or a model version's run) again as it was recorded and
        compare: the recorded entry point runs on a checkout of the recorded commit (a
        temporary git worktree of ``repo``: default the repository the run started in,
        else the current one), with ``python`` (default: this interpreter) after
        checking its packages match the recorded ones (every difference refuses, unless
        ``allow_environment``), or in a new ``virtualenv`` built from them by pip.
        Datasets logged from files must still have their recorded content. The new
        run is tagged ``modelyard.reproduces``; its metrics are compared within
        ``tolerance`` (relative), and its datasets by content fingerprint.

        Raises ``NotReproducible`` naming every missing or changed piece (nothing
        runs), ``ReproductionFailed`` when the entry point fails. The entry point's
        output goes to ``log`` (default stderr).

        >>> result = yard.runs.reproduce("3f9c0a1b", tolerance=1e-6)
        >>> result.ok, [(c.key, c.original, c.reproduced) for c in result.failed]
        """
        return reproduce(
            self._yard,
            ref,
            tolerance=tolerance,
            allow_dirty=allow_dirty,
            allow_environment=allow_environment,
            virtualenv=virtualenv,
            python=python,
            repo=repo,
            timeout=timeout,
            log=log,
        )

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

    def artifacts(self, run_id: str) -> list[Artifact]:
        """The run's artifacts: path, size and sha256 of each file."""
        return self._backend.list_artifacts(run_id)

    def download(
        self, run_id: str, path: str, target: str | os.PathLike[str] | None = None
    ) -> Path:
        """Download artifact ``path`` of the run, hash-checked, to ``target`` (default: its
        file name here; an existing folder: into it). A folder path such as ``model``
        downloads every artifact under it into the folder ``target``.

        >>> yard.runs.download(run.id, "confusion.png")
        PosixPath('confusion.png')
        >>> yard.runs.download(run.id, "model", "churn-model")   # the whole package
        """
        key = path.strip("/")
        artifacts = self.artifacts(run_id)
        exact = [a for a in artifacts if a.path == key]
        if exact:
            return self._save(run_id, exact[0], _file_target(target, key))
        inside = [a for a in artifacts if a.path.startswith(key + "/")]
        if not key or not inside:
            known = ", ".join(a.path for a in artifacts[:10]) or "none"
            raise NotFound(f"run '{run_id}' has no artifact '{path}' (it has: {known})")
        folder = Path(target) if target is not None else Path(PurePosixPath(key).name)
        for artifact in inside:
            self._save(run_id, artifact, folder / artifact.path[len(key) + 1 :])
        return folder

    def _save(self, run_id: str, artifact: Artifact, target: Path) -> Path:
        def fill(handle: BinaryIO) -> None:
            self._backend.download_artifact(run_id, artifact.path, handle)

        what = f"artifact '{artifact.path}' of run '{run_id}'"
        return save(target, fill, sha256=artifact.sha256, what=what)

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
    """``yard.datasets``: logged datasets, their content versions and sensitivity classes.

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

    def versions(self, name: str) -> list[Dataset]:
        """The content versions of dataset ``name`` (or the datasets with that content
        fingerprint), newest first; ``stored`` says whether the yard keeps the content."""
        return self._backend.dataset_versions(name)

    def download(
        self,
        name: str,
        target: str | os.PathLike[str] | None = None,
        *,
        fingerprint: str | None = None,
    ) -> Path:
        """Download a dataset the yard keeps, as Parquet, to ``target`` (default:
        ``NAME.parquet`` here). ``name`` is a dataset name (its newest stored content
        version, or the one with ``fingerprint``) or a content fingerprint.

        >>> yard.datasets.download("churn-train")
        PosixPath('churn-train.parquet')
        >>> pd.read_parquet(_)
        """
        chosen = _stored_version(self.versions(name), name, fingerprint)

        def fill(handle: BinaryIO) -> None:
            self._backend.download_dataset(chosen.name, chosen.fingerprint, handle)

        destination = _file_target(target, f"{chosen.name}.parquet")
        return save(destination, fill, what=f"dataset '{chosen.name}'")


def _stored_version(versions: list[Dataset], name: str, fingerprint: str | None) -> Dataset:
    """The newest content version the yard keeps (or the one with ``fingerprint``)."""
    if fingerprint is not None:
        versions = [v for v in versions if v.fingerprint == fingerprint]
        if not versions:
            raise NotFound(f"dataset '{name}' has no content version {fingerprint}")
    stored = [v for v in versions if v.stored]
    if not stored:
        where = f" (it lives at {versions[0].uri})" if versions[0].uri else ""
        raise NotFound(
            f"the yard does not keep the content of dataset '{name}': it was logged by "
            f"reference{where}"
        )
    return stored[0]


def _file_target(target: str | os.PathLike[str] | None, key: str) -> Path:
    """``target``, or the last part of ``key`` here; a folder ``target`` gets the file."""
    name = PurePosixPath(key).name
    if target is None:
        return Path(name)
    chosen = Path(target)
    return chosen / name if chosen.is_dir() else chosen


class Yard:
    """A connection to a yard. Make one with ``modelyard.connect()``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.runs = RunsAPI(self)
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
        """Start a run; use it in a ``with`` block so it always ends with a status.

        With ``capture_env`` the run records this process's environment: Python, the
        installed packages, the git commit and whether the tree was dirty, and the
        entry point (the command line, script or notebook), which ``runs.reproduce``
        runs again. A run started by ``runs.reproduce`` is tagged
        ``modelyard.reproduces`` with the original run's id.
        """
        environment = capture_environment(os.getcwd()) if capture_env else None
        run = self.backend.create_run(
            experiment,
            name=name,
            params=params or {},
            tags={**reproduction_tags(), **(tags or {})},
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
        """Flush buffered metrics, stop batch scoring's worker processes and release
        connections."""
        self._buffer.close()
        self.batch.close()
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
