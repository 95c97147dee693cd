"""Copy an MLflow tracking store into a yard: ``modelyard import mlflow``.

    >>> summary = import_mlflow(yard, "sqlite:///mlflow.db", experiment="churn")
    >>> print("\\n".join(summary.lines()))

MLflow is read with its own client (``MlflowClient(tracking_uri)``); everything is
written through the SDK, so each change is recorded by the yard's services as the
acting user (embedded: the OS user; through a server: the key's user). What is copied:

- experiments (by name: an experiment that exists already is used);
- runs, with params, tags, every point of every metric (step and timestamp), artifacts,
  the artifacts of the models a run logged (under ``mlflow-models/<name>/``), dataset
  inputs (by reference: MLflow keeps no content) and the final status. MLflow's ids and
  times are tags: ``mlflow.run_id``, ``mlflow.experiment_id``, ``mlflow.start_time``,
  ``mlflow.end_time`` (epoch ms);
- registered models with their versions (each MLflow model folder becomes a package,
  its signature converted; tags ``mlflow.model_name``, ``mlflow.version``), version
  tags, descriptions and aliases.

Re-running adds nothing twice: a run is skipped when one with its ``mlflow.run_id`` tag
exists, a version when one with its ``mlflow.version`` tag does, an alias when it points
at that version already. A run whose artifacts cannot be read is imported all the same,
tagged ``modelyard.import.missing_artifacts`` with the reason, and listed in the summary;
a version that cannot be converted is listed and skipped. Neither stops the import.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain.datasets import DATASET_ROLES, Column
from modelyard.domain.models import ModelVersion
from modelyard.domain.runs import MetricPoint, RunStatus
from modelyard.errors import ModelyardError, NotConfigured, NotFound
from modelyard.packaging.mlflow_models import package_mlflow_model

if TYPE_CHECKING:
    from modelyard.client.active_run import ActiveRun
    from modelyard.client.yard import Yard

RUN_ID_TAG = "mlflow.run_id"
VERSION_TAG = "mlflow.version"
MISSING_TAG = "modelyard.import.missing_artifacts"
MAX_TAG_VALUE = 6000
DEFAULT_EXPERIMENT_ID = "0"
_PAGE = 1000
_POINTS_PER_BATCH = 10_000
_ROLES = {"train": "training", "eval": "evaluation", "valid": "validation"}


@dataclass
class ImportSummary:
    """What an import added, what it found already there, and what it could not copy."""

    experiments: list[str] = field(default_factory=list)
    runs: int = 0
    runs_present: int = 0
    metric_points: int = 0
    artifacts: int = 0
    datasets: int = 0
    models: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    versions_present: int = 0
    aliases: list[str] = field(default_factory=list)
    missing_artifacts: dict[str, str] = field(default_factory=dict)  # our run id: reason
    skipped: dict[str, str] = field(default_factory=dict)  # what: why
    notes: list[str] = field(default_factory=list)

    @property
    def added(self) -> bool:
        return bool(self.experiments or self.runs or self.models or self.versions or self.aliases)

    def lines(self) -> list[str]:
        """The summary to print; the problems (what was marked or skipped) come last."""
        problems = [
            f"run {run} imported without artifacts: {why}"
            for run, why in self.missing_artifacts.items()
        ]
        problems += [f"skipped {what}: {why}" for what, why in self.skipped.items()]
        if not self.added:
            first = (
                f"nothing new to import: {self.runs_present} runs and {self.versions_present} "
                "model versions were imported before"
            )
            return [first, *problems, *self.notes]
        lines = [
            f"experiments created: {len(self.experiments)}",
            f"runs imported: {self.runs} ({self.runs_present} already here), "
            f"{self.metric_points} metric points, {self.artifacts} artifacts, "
            f"{self.datasets} dataset inputs",
            f"models created: {len(self.models)}; versions imported: {len(self.versions)} "
            f"({self.versions_present} already here); aliases set: {len(self.aliases)}",
        ]
        return [*lines, *problems, *self.notes]


def import_mlflow(yard: Yard, tracking_uri: str, *, experiment: str | None = None) -> ImportSummary:
    """Copy the MLflow store at ``tracking_uri`` (all experiments, or only ``experiment``
    and the model versions of its runs) into ``yard``."""
    _check_store(tracking_uri)
    imported = _imported_runs(yard)  # the yard first: a refused key stops before any work
    client = _mlflow().MlflowClient(tracking_uri)
    return _Importer(yard, client, tracking_uri, imported).run(experiment)


def import_mlflow_model(
    yard: Yard, directory: str | Path, name: str, *, description: str = ""
) -> ModelVersion:
    """Register the MLflow model folder ``directory`` (its ``MLmodel`` file names the
    flavor) as the next version of ``name``, with its signature and input example.

    >>> import_mlflow_model(yard, "mlruns/1/models/m-4f/artifacts", "churn").ref
    'churn/3'
    """
    yard.models.list(name_contains=name)  # the yard first: a refused key stops before any work
    _mlflow()
    folder = Path(directory)
    with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-model-") as temp:
        manifest = package_mlflow_model(folder, Path(temp) / "package")
        source = yard.backend.upload_package(Path(temp) / "package", None)
    origin = manifest.metadata.get("mlflow", {})
    tags = {
        "mlflow.source": str(folder.resolve())[:MAX_TAG_VALUE],
        "mlflow.flavor": origin["flavor"],
    }
    if origin.get("run_id"):
        tags[RUN_ID_TAG] = origin["run_id"]
    return yard.backend.register_version(name, source=source, description=description, tags=tags)


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise NotConfigured(
            "reading MLflow stores and models needs MLflow: pip install mlflow"
        ) from None
    return mlflow


def _check_store(tracking_uri: str) -> None:
    """Refuse a local store that does not exist (MLflow would create an empty one)."""
    path = None
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///") :])
    elif tracking_uri.startswith("file://"):
        path = Path(tracking_uri[len("file://") :])
    elif "://" not in tracking_uri:
        path = Path(tracking_uri)
    if path is not None and not path.exists():
        raise NotFound(f"MLflow tracking store {tracking_uri} does not exist ({path} is missing)")


def _imported_runs(yard: Yard) -> dict[str, str]:
    """MLflow run id to our run id, for every run imported before."""
    found: dict[str, str] = {}
    cursor = None
    while True:
        page = yard.runs.search(f"tags.{RUN_ID_TAG} is not null", max_results=_PAGE, cursor=cursor)
        found.update({run.tags[RUN_ID_TAG]: run.id for run in page})
        cursor = page.next_cursor
        if cursor is None:
            return found


def _pages(fetch: Any) -> Iterator[Any]:
    """Every item of an MLflow paged search (``fetch(page_token)``)."""
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


class _Importer:
    def __init__(self, yard: Yard, client: Any, tracking_uri: str, runs: dict[str, str]) -> None:
        self.yard = yard
        self.client = client
        self.tracking_uri = tracking_uri
        self.summary = ImportSummary()
        self.runs = runs  # MLflow run id: our run id, for every run imported so far

    def run(self, experiment: str | None) -> ImportSummary:
        experiments = self._experiments(experiment)
        for found in experiments:
            self._import_experiment(found)
        wanted = None
        if experiment is not None:
            wanted = {run_id for run_id, _ in self._mlflow_runs(experiments)}
        for model in _pages(lambda token: self.client.search_registered_models(page_token=token)):
            self._import_model(model, wanted)
        return self.summary

    # -- experiments and runs -------------------------------------------------

    def _experiments(self, name: str | None) -> list[Any]:
        if name is None:
            return list(_pages(lambda token: self.client.search_experiments(page_token=token)))
        found = self.client.get_experiment_by_name(name)
        if found is None:
            raise NotFound(f"MLflow store {self.tracking_uri} has no experiment '{name}'")
        return [found]

    def _mlflow_runs(self, experiments: list[Any]) -> Iterator[tuple[str, Any]]:
        ids = [e.experiment_id for e in experiments]
        for run in _pages(
            lambda token: self.client.search_runs(ids, max_results=_PAGE, page_token=token)
        ):
            yield run.info.run_id, run

    def _import_experiment(self, experiment: Any) -> None:
        runs = list(self._mlflow_runs([experiment]))
        if experiment.experiment_id == DEFAULT_EXPERIMENT_ID and not runs:
            return  # MLflow makes its default experiment in every store; an empty one is noise
        try:
            self.yard.experiments.get(experiment.name)
        except NotFound:
            description = experiment.tags.get("mlflow.note.content", "")
            self.yard.experiments.create(experiment.name, description)
            self.summary.experiments.append(experiment.name)
        for run_id, run in runs:
            if run_id in self.runs:
                self.summary.runs_present += 1
                continue
            try:
                self.runs[run_id] = self._import_run(experiment, run)
            except ModelyardError as exc:  # a run the yard refuses (a bad key): the rest go on
                self.summary.skipped[f"MLflow run {run_id}"] = exc.message
                continue
            self.summary.runs += 1

    def _import_run(self, experiment: Any, run: Any) -> str:
        info = run.info
        tags = self._tags(info.run_id, run.data.tags)
        tags.update(
            {
                "mlflow.experiment_id": experiment.experiment_id,
                "mlflow.start_time": str(info.start_time or ""),
                "mlflow.end_time": str(info.end_time or ""),
            }
        )
        active = self.yard.start_run(
            experiment.name,
            name=info.run_name or None,
            params=run.data.params,
            tags=tags,
            capture_env=False,
        )
        try:
            self._copy_metrics(active, info.run_id, run.data.metrics)
            self._copy_datasets(active, run.inputs)
            missing = self._copy_artifacts(active, info.run_id, experiment.experiment_id)
        except ModelyardError as exc:
            active.end(RunStatus.FAILED, f"import from MLflow failed: {exc}")
            raise
        done = {RUN_ID_TAG: info.run_id}
        if missing:
            done[MISSING_TAG] = missing[:MAX_TAG_VALUE]
            self.summary.missing_artifacts[active.id] = f"MLflow run {info.run_id}: {missing}"
        active.log_batch(tags=done)  # last: a run cut short is imported again, not skipped
        if info.status in ("FINISHED", "FAILED", "KILLED"):
            active.end(info.status)
        return active.id

    def _tags(self, run_id: str, tags: dict[str, str]) -> dict[str, str]:
        kept = {}
        for key, value in tags.items():
            if len(value) > MAX_TAG_VALUE:
                self.summary.notes.append(
                    f"MLflow run {run_id}: tag '{key}' ({len(value)} characters) is longer than "
                    f"{MAX_TAG_VALUE} and was not copied"
                )
                continue
            kept[key] = value
        return kept

    def _copy_metrics(self, active: ActiveRun, run_id: str, metrics: dict[str, float]) -> None:
        for key in sorted(metrics):
            history = self.client.get_metric_history(run_id, key)
            points = [MetricPoint(key, m.value, m.step, m.timestamp) for m in history]
            for start in range(0, len(points), _POINTS_PER_BATCH):
                active.log_batch(points[start : start + _POINTS_PER_BATCH])
            self.summary.metric_points += len(points)

    def _copy_datasets(self, active: ActiveRun, inputs: Any) -> None:
        for used in getattr(inputs, "dataset_inputs", None) or []:
            dataset = used.dataset
            context = {tag.key: tag.value for tag in used.tags}.get("mlflow.data.context", "")
            self.yard.backend.log_dataset(
                active.id,
                name=dataset.name,
                role=_role(context),
                fingerprint=_fingerprint(dataset.digest),
                row_count=_profile_rows(dataset.profile),
                columns=_schema_columns(dataset.schema),
                uri=_source_uri(dataset.source),
                content=None,
            )
            self.summary.datasets += 1

    def _copy_artifacts(self, active: ActiveRun, run_id: str, experiment_id: str) -> str:
        """Copy the run's artifacts and its logged models' files; the reason some could
        not be read ("" when all were)."""
        problems = []
        with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-") as temp:
            try:
                for path in self._artifact_files(run_id, ""):
                    local = self.client.download_artifacts(run_id, path, temp)
                    active.log_artifact(local, path)
                    self.summary.artifacts += 1
            except Exception as exc:
                problems.append(f"run artifacts: {_short(exc)}")
            for model in self._logged_models(run_id, experiment_id):
                problem = self._copy_logged_model(active, model, Path(temp) / model.model_id)
                if problem:
                    problems.append(f"logged model '{model.name}': {problem}")
        return "; ".join(problems)

    def _artifact_files(self, run_id: str, path: str) -> Iterator[str]:
        for entry in self.client.list_artifacts(run_id, path or None):
            if entry.is_dir:
                yield from self._artifact_files(run_id, entry.path)
            else:
                yield entry.path

    def _logged_models(self, run_id: str, experiment_id: str) -> list[Any]:
        search = getattr(self.client, "search_logged_models", None)
        if search is None:  # MLflow before 3 keeps models among the run's artifacts
            return []
        found = search([experiment_id], filter_string=f"source_run_id = '{run_id}'")
        return list(found)

    def _copy_logged_model(self, active: ActiveRun, model: Any, target: Path) -> str:
        from mlflow.artifacts import download_artifacts

        try:
            local = download_artifacts(
                artifact_uri=model.artifact_location,
                dst_path=str(target),
                tracking_uri=self.tracking_uri,
            )
        except Exception as exc:
            return _short(exc)
        files = [p for p in Path(local).rglob("*") if p.is_file()]
        if not files:
            return f"no files at {model.artifact_location}"
        copied = active.log_artifact(local, f"mlflow-models/{model.name}")
        self.summary.artifacts += len(copied)
        return ""

    # -- registered models, versions, aliases ------------------------------------

    def _import_model(self, model: Any, wanted: set[str] | None) -> None:
        versions = sorted(
            _pages(
                lambda token: self.client.search_model_versions(
                    f"name = '{model.name}'", page_token=token
                )
            ),
            key=lambda v: int(v.version),
        )
        if wanted is not None:
            versions = [v for v in versions if v.run_id in wanted]
            if not versions:
                return
        try:
            ours = self.yard.models.get(model.name)
        except NotFound:
            tags = {k: v for k, v in model.tags.items() if len(v) <= MAX_TAG_VALUE}
            ours = self.yard.models.create(model.name, model.description or "", tags)
            self.summary.models.append(model.name)
        numbers = {
            v.tags[VERSION_TAG]: v.version
            for v in self.yard.models.versions(model.name)
            if VERSION_TAG in v.tags
        }
        for version in versions:
            if str(version.version) in numbers:
                self.summary.versions_present += 1
                continue
            number = self._import_version(model.name, version)
            if number is not None:
                numbers[str(version.version)] = number
        full = self.client.get_registered_model(model.name)  # a search answer omits aliases
        self._copy_aliases(full, numbers, ours.aliases)

    def _import_version(self, name: str, version: Any) -> int | None:
        what = f"{name} version {version.version}"
        run_id = self.runs.get(version.run_id or "")
        with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-model-") as temp:
            try:
                uri = self.client.get_model_version_download_uri(name, version.version)
                from mlflow.artifacts import download_artifacts

                local = download_artifacts(
                    artifact_uri=uri, dst_path=f"{temp}/mlflow", tracking_uri=self.tracking_uri
                )
                package_mlflow_model(local, Path(temp) / "package", run_id=run_id)
            except ModelyardError as exc:
                self.summary.skipped[what] = exc.message
                return None
            except Exception as exc:
                self.summary.skipped[what] = _short(exc)
                return None
            source = self.yard.backend.upload_package(Path(temp) / "package", None)
        tags = {
            **{k: v for k, v in version.tags.items() if len(v) <= MAX_TAG_VALUE},
            "mlflow.model_name": name,
            VERSION_TAG: str(version.version),
            "mlflow.source": version.source[:MAX_TAG_VALUE],
        }
        if version.run_id:
            tags[RUN_ID_TAG] = version.run_id
        if version.current_stage and version.current_stage != "None":
            tags["mlflow.stage"] = version.current_stage
        registered = self.yard.backend.register_version(
            name, source=source, run_id=run_id, description=version.description or "", tags=tags
        )
        self.summary.versions.append(registered.ref)
        return registered.version

    def _copy_aliases(self, model: Any, numbers: dict[str, int], current: dict[str, int]) -> None:
        for alias, mlflow_version in sorted(model.aliases.items()):
            number = numbers.get(str(mlflow_version))
            if number is None or current.get(alias) == number:
                continue
            self.yard.models.set_alias(model.name, alias, number)
            self.summary.aliases.append(f"{model.name}@{alias}")


def _role(context: str) -> str:
    lowered = context.lower()
    if lowered in DATASET_ROLES:
        return lowered
    return next((role for prefix, role in _ROLES.items() if lowered.startswith(prefix)), "other")


def _fingerprint(digest: str) -> str:
    """MLflow's digest is a short hash of the content; ours is a sha256, so derive one."""
    return hashlib.sha256(f"mlflow-dataset:{digest}".encode()).hexdigest()


def _profile_rows(profile: str | None) -> int:
    try:
        return int(json.loads(profile or "{}").get("num_rows", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _schema_columns(schema: str | None) -> list[Column]:
    try:
        specs = json.loads(schema or "{}").get("mlflow_colspec", [])
    except (ValueError, AttributeError):
        return []
    return [
        Column(str(s.get("name", i)), str(s.get("type", "unknown"))) for i, s in enumerate(specs)
    ]


def _source_uri(source: str | None) -> str | None:
    try:
        parsed = json.loads(source or "")
    except ValueError:
        return source or None
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if parsed.get(key):
                return str(parsed[key])
    return source or None


def _short(exc: Exception) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines())
    return f"{type(exc).__name__}: {text}"[:400]
