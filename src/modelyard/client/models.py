"""``yard.models``: register, find, alias, promote, load, export and import versions."""

from __future__ import annotations

import builtins
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain.endpoints import TWIN_OF_TAG, TWIN_TAG
from modelyard.domain.explanations import Explanation, Importance
from modelyard.domain.models import (
    Inventory,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    check_date,
)
from modelyard.domain.signing import PackageVerification, VersionSignature
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelyard.packaging import (
    LoadedModel,
    Manifest,
    load_package,
    package_digest,
    verify_package,
    write_package,
)
from modelyard.packaging.archives import is_archive, unpack_archive
from modelyard.packaging.function import write_function
from modelyard.packaging.signing import check_signature, key_id_of

if TYPE_CHECKING:
    from modelyard.client.backend import Backend
    from modelyard.client.yard import Yard

EXPORT_RECORD = "modelyard-version.json"
EXPORT_FORMATS = ("package", "onnx", "function")
SAMPLE_ROWS = 2000


class ModelsAPI:
    """The model catalog as the SDK shows it."""

    def __init__(self, yard: Yard) -> None:
        self._yard = yard

    @property
    def _backend(self) -> Backend:
        return self._yard.backend

    def register(
        self,
        model: Any,
        *,
        name: str,
        input_example: Any = None,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        **package_options: Any,
    ) -> ModelVersion:
        """Package ``model`` and register it as the next version of ``name``.

        >>> version = yard.models.register(clf, name="churn", input_example=X.head())
        >>> version.version
        1
        """
        with tempfile.TemporaryDirectory(prefix="modelyard-package-") as temp:
            directory = Path(temp) / "model"
            write_package(
                model, directory, input_example=input_example, run_id=run_id, **package_options
            )
            return self._register_directory(directory, name, run_id, description, tags)

    def _register_directory(
        self,
        directory: Path,
        name: str,
        run_id: str | None,
        description: str,
        tags: Mapping[str, Any] | None,
    ) -> ModelVersion:
        source = self._backend.upload_package(directory, run_id)
        return self._backend.register_version(
            name,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags,
        )

    def get(self, name: str) -> RegisteredModel:
        return self._backend.get_model(name)

    def create(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._backend.create_model(name, description, tags)

    def list(
        self,
        name_contains: str | None = None,
        tag: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RegisteredModel]:
        """Models by name (all of them, or a page of ``limit`` named after ``after``).

        >>> page = yard.models.list(limit=100)
        >>> more = yard.models.list(limit=100, after=page[-1].name)
        """
        return self._backend.list_models(name_contains, tag, limit=limit, after=after)

    def update(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._backend.update_model(name, description=description, tags=tags)

    def set_tags(self, name: str, tags: Mapping[str, Any]) -> RegisteredModel:
        """Set ``tags`` on model ``name``: new keys are added, existing ones take the new
        value, the others stay.

        >>> yard.models.set_tags("churn", {"team": "retention", "pii": "no"}).tags
        {'pii': 'no', 'team': 'retention'}
        """
        return self.update(name, tags=_some(tags))

    def version(self, ref: str) -> ModelVersion:
        """A version by reference: ``churn/3``, ``churn@champion`` or ``churn`` (latest)."""
        return self._backend.get_version(str(ModelRef.parse(ref)))

    def versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> builtins.list[ModelVersion]:
        """Versions filtered by stage, run, tag or a sensitivity class of their data, by
        model name and number; a page of ``limit`` after ``after`` (a reference, churn/3).

        >>> page = yard.models.versions(stage="production", limit=100)
        >>> more = yard.models.versions(stage="production", limit=100, after=page[-1].ref)
        """
        return self._backend.search_versions(
            name,
            stage=stage,
            run_id=run_id,
            tag=tag,
            sensitivity=sensitivity,
            limit=limit,
            after=after,
        )

    def retire(self, ref: str, *, comment: str = "") -> ModelVersion:
        """Retire version ``ref`` (``churn/3``): nothing may serve it and no alias name it.

        Its record, package and history stay; its stage never changes again."""
        parsed = ModelRef.parse(ref)
        if parsed.version is None and parsed.alias is None:
            raise InvalidInput(
                f"name one version to retire (e.g. {parsed.name}/3), or use retire_model"
            )
        return self._backend.retire_version(str(parsed), comment)

    def retire_model(self, name: str, *, comment: str = "") -> builtins.list[ModelVersion]:
        """Retire every version of ``name`` (all or none); the model takes no new versions."""
        return self._backend.retire_model(name, comment)

    def request_approval(self, ref: str, *, comment: str = "") -> dict[str, Any]:
        """Ask reviewers to approve version ``ref`` (its current package) for production
        and traffic; the answer is where it stands."""
        return self._backend.approval_decision(str(ModelRef.parse(ref)), "request", comment)

    def approve(self, ref: str, *, comment: str = "") -> dict[str, Any]:
        """Approve ``ref``: you may not approve your own request or your own version."""
        return self._backend.approval_decision(str(ModelRef.parse(ref)), "approve", comment)

    def reject(self, ref: str, *, comment: str) -> dict[str, Any]:
        """Reject ``ref`` with a comment saying why; it stays blocked until requested again."""
        return self._backend.approval_decision(str(ModelRef.parse(ref)), "reject", comment)

    def approvals(self, ref: str) -> dict[str, Any]:
        """Where ``ref`` stands (state, approvers, required) and its decision history."""
        return self._backend.approval_status(str(ModelRef.parse(ref)))

    def approval_policy(self, required: int | None = None) -> int:
        """How many approvals a version needs (set it with ``required``; 0 turns it off)."""
        return self._backend.approval_policy(required)

    def card(self, ref: str, format: str = "markdown") -> str:
        """The model card of version ``ref`` as Markdown, (``format="html"``) HTML, or
        (``format="json"``) its sections as JSON text."""
        return self._backend.model_card(str(ModelRef.parse(ref)), format)

    def explain(self, ref: str, rows: Any, *, top: int | None = None) -> Explanation:
        """Why version ``ref`` answers ``rows`` (a DataFrame or records) as it does: per
        row, a SHAP value per feature, the base value, the explained output and the
        ``top`` (default 5) contributions in plain words (see ``yard.endpoints.explain``).

        >>> yard.models.explain("churn@champion", frame.head(3)).rows[0].text
        """
        records = rows.to_dict(orient="records") if hasattr(rows, "to_dict") else list(rows)
        return self._backend.explain_version(str(ModelRef.parse(ref)), records, top=top)

    def importance(self, ref: str) -> Importance:
        """Version ``ref``'s global feature importance: mean |SHAP| per feature on a sample
        of its training data (computed in the background after registration), largest
        first; ``.shares`` gives each feature's part of the total.

        >>> yard.models.importance("churn/3").shares
        {'tenure': 0.41, 'plan': 0.22, ...}
        """
        return self._backend.feature_importance(str(ModelRef.parse(ref)))

    def compare(self, name: str, a: int, b: int) -> dict[str, Any]:
        """Versions ``a`` and ``b`` of model ``name`` side by side: ``metrics`` (the
        training runs' metrics and their change), ``signature`` (inputs added, removed,
        retyped; whether outputs changed), ``importance`` (each feature's share of mean
        |SHAP| in both, and its rank; largest change first), ``data`` (the training
        datasets, whether they are the same content, and per column how the reference
        profile's mean and missing rate moved) and ``notes`` (what one of them lacks).

        >>> yard.models.compare("churn", 3, 4)["signature"]["added"]
        ['tenure_months']
        """
        return self._backend.compare_versions(name, a, b)

    def inventory(self, name: str) -> Inventory:
        """The model-risk inventory fields of model ``name``."""
        return self._backend.get_inventory(name)

    def set_inventory(self, name: str, **fields: Any) -> Inventory:
        """Change inventory fields: risk_tier (low, medium, high, critical),
        business_owner, validator, validation_status (not_validated, in_progress,
        validated, rejected, expired), last_validated and next_validation (dates)."""
        changes = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in fields.items()}
        return self._backend.update_inventory(name, changes)

    def inventory_search(
        self,
        *,
        risk_tier: str | None = None,
        owner: str | None = None,
        validator: str | None = None,
        status: str | None = None,
    ) -> builtins.list[Inventory]:
        return self._backend.search_inventory(
            risk_tier=risk_tier, owner=owner, validator=validator, status=status
        )

    def overdue(self, on: Any = None) -> builtins.list[Inventory]:
        """Models whose next validation date is before ``on`` (a date or ISO text such
        as 2026-11-23; default: today)."""
        import datetime as dt

        day = check_date("on", on or dt.date.today())
        return self._backend.search_inventory(overdue_on=day)

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        return self._backend.update_version(ref, description=description, tags=tags)

    def set_version_tags(self, ref: str, tags: Mapping[str, Any]) -> ModelVersion:
        """Set ``tags`` on version ``ref`` (``churn/3``, ``churn@champion``), as ``set_tags``.

        >>> yard.models.set_version_tags("churn/3", {"validated": "2026-11-30"})
        """
        return self.update_version(ref, tags=_some(tags))

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``name@alias`` at ``version``; moving an alias is atomic."""
        return self._backend.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._backend.delete_alias(name, alias)

    def transition(
        self, ref: str, stage: str, *, comment: str = "", archive_others: bool = False
    ) -> ModelVersion:
        """Move a version along candidate -> staging -> production -> archived."""
        return self._backend.transition_stage(
            ref, stage, comment=comment, archive_others=archive_others
        )

    def stage_history(self, ref: str) -> builtins.list[dict[str, Any]]:
        return self._backend.stage_history(ref)

    def load(self, ref: str) -> LoadedModel:
        """Load a version for prediction. Before anything is unpickled, a signed version's
        signature is checked against its registered digest, and every file against it."""
        version = self.version(ref)
        signature = self._signature(version)
        if signature is not None:
            _check_version_signature(version, signature)
        directory = self._backend.fetch_package(version)
        return load_package(directory, expected_digest=version.package_digest)

    def verify(self, ref: str) -> PackageVerification:
        """Prove that version ``ref``'s stored files are the bytes that were registered and,
        when the platform signed it, that its key signed them: ``IntegrityError`` names
        the first file or signature that fails. Nothing is unpickled.

        >>> check = yard.models.verify("churn@champion")
        >>> check.signed, check.key_name
        (True, 'platform-2026')
        """
        version = self.version(ref)
        directory = self._backend.fetch_package(version)
        manifest = verify_package(directory, expected_digest=version.package_digest)
        signature = self._signature(version)
        if signature is None:
            return PackageVerification(
                version.ref, version.package_digest, len(manifest.files), signed=False
            )
        _check_version_signature(version, signature)
        return PackageVerification(
            version.ref,
            version.package_digest,
            len(manifest.files),
            signed=True,
            key_name=signature.key_name,
            key_id=signature.key_id,
            signed_by=signature.signed_by,
            signed_at=signature.signed_at,
        )

    def _signature(self, version: ModelVersion) -> VersionSignature | None:
        try:
            return self._backend.version_signature(version.ref)
        except NotFound:
            return None

    def export(
        self,
        ref: str,
        target: str | Path,
        *,
        format: str = "package",
        tolerance: float | None = None,
    ) -> Path:
        """Write version ``ref`` to ``target`` with a record of where it came from.

        ``format``: ``package`` (a copy of the verified package), ``onnx`` (its ONNX twin,
        written only when it answers the version's reference sample within ``tolerance``
        of the original: ``OutputsDiffer`` names the largest difference otherwise) or
        ``function`` (a handler for functions-as-a-service, see ``packaging/function``).

        >>> yard.models.export("churn@champion", "out/churn-onnx", format="onnx")
        """
        if format not in EXPORT_FORMATS:
            raise InvalidInput(
                f"unknown export format '{format}' (known: {', '.join(EXPORT_FORMATS)})"
            )
        version = self.version(ref)
        directory = self._backend.fetch_package(version)
        verify_package(directory, expected_digest=version.package_digest)
        signature = self._signature(version)
        if signature is not None:
            _check_version_signature(version, signature)
        target = _empty_target(Path(target))
        record: dict[str, Any] = {
            "model": version.model,
            "version": version.version,
            "package_digest": version.package_digest,
            "description": version.description,
            "tags": version.tags,
            "run_id": version.run_id,
            "format": format,
        }
        if format == "onnx":
            manifest = self._export_onnx(version, directory, target, tolerance)
            record["converted_from"] = record.pop("package_digest")
            record["package_digest"] = package_digest(manifest)
            record["check"] = manifest.metadata["check"]
        elif format == "function":
            write_function(
                directory,
                target,
                model=version.model,
                version=version.version,
                digest=version.package_digest,
            )
        else:
            # new files, not copies of the store's private ones: modes follow the umask
            shutil.copytree(directory, target, dirs_exist_ok=True, copy_function=shutil.copyfile)
            if signature is not None:  # the same bytes: the proof travels with them
                record["signature"] = _signature_record(signature)
        (target.parent / f"{target.name}.{EXPORT_RECORD}").write_text(json.dumps(record, indent=2))
        return target

    def register_twin(self, ref: str, *, tolerance: float | None = None) -> ModelVersion:
        """Convert version ``ref`` to ONNX, check it on its reference sample (as
        ``export(format="onnx")``) and register it as its twin: the next version of the
        same model (flavor onnx, same run, tag ``onnx_twin_of``), named by ``ref``'s tag
        ``onnx_twin``. A route ``churn/3=100,onnx`` then serves it through onnxruntime.

        >>> yard.models.register_twin("churn/3").ref
        'churn/4'
        """
        version = self.version(ref)
        directory = self._backend.fetch_package(version)
        verify_package(directory, expected_digest=version.package_digest)
        with tempfile.TemporaryDirectory(prefix="modelyard-twin-") as temp:
            twin_dir = Path(temp) / "twin"
            twin_dir.mkdir()
            self._export_onnx(version, directory, twin_dir, tolerance)
            source = self._backend.upload_package(twin_dir, None)  # beside, not over, the run's
        twin = self._backend.register_version(
            version.model,
            source=source,
            run_id=version.run_id,
            description=f"ONNX twin of {version.ref}",
            tags={TWIN_OF_TAG: str(version.version)},
        )
        self.set_version_tags(version.ref, {TWIN_TAG: str(twin.version)})
        return twin

    def build(self, ref: str, target: str | Path, *, endpoint: str | None = None) -> Path:
        """Write a container build context serving ``ref`` (see ``packaging/container``):
        build it with ``docker build`` or ``podman build``; ``endpoint`` defaults to the
        model's name.

        >>> yard.models.build("churn@champion", "out/churn-image")
        """
        from modelyard.packaging.container import write_build_context

        version = self.version(ref)
        directory = self._backend.fetch_package(version)
        target = _empty_target(Path(target))
        return write_build_context(
            directory,
            target,
            model=version.model,
            version=version.version,
            digest=version.package_digest,
            endpoint=endpoint or version.model,
        )

    def _export_onnx(
        self, version: ModelVersion, directory: Path, target: Path, tolerance: float | None
    ) -> Manifest:
        from modelyard.packaging.onnx import DEFAULT_TOLERANCE, export_onnx

        loaded = load_package(directory, expected_digest=version.package_digest)
        with tempfile.TemporaryDirectory(prefix="modelyard-sample-") as temp:
            sample, sample_name = self._reference_sample(version, loaded, Path(temp))
            staging = Path(temp) / "onnx"
            manifest, _ = export_onnx(
                loaded,
                sample,
                staging,
                tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                sample_name=sample_name,
                metadata={"source": {"model": version.model, "version": version.version}},
            )
            shutil.copytree(staging, target, dirs_exist_ok=True, copy_function=shutil.copyfile)
        return manifest

    def _reference_sample(
        self, version: ModelVersion, loaded: LoadedModel, temp: Path
    ) -> tuple[Any, str]:
        """The rows the version's reference was built on (its run's stored training
        dataset, up to ``SAMPLE_ROWS``), else its input example; and what they are."""
        uses = self._backend.run_datasets(version.run_id) if version.run_id else []
        training = next(
            (u.dataset for u in uses if u.role == "training" and u.dataset.stored), None
        )
        if training is not None:
            import pyarrow.parquet as pq

            path = temp / "sample.parquet"
            with path.open("wb") as handle:
                self._backend.download_dataset(training.name, training.fingerprint, handle)
            first = next(pq.ParquetFile(path).iter_batches(batch_size=SAMPLE_ROWS), None)
            if first is None:
                raise InvalidInput(f"training dataset '{training.name}' has no rows")
            frame = first.to_pandas()
            return frame, f"training dataset '{training.name}'"
        example = loaded.input_example()
        if example is None:
            raise InvalidInput(
                f"{version.ref} has no sample to check an ONNX conversion on: its run kept "
                "no training dataset and its package has no input example"
            )
        return example, "input example"

    def import_(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        description: str | None = None,
        require_signed: bool = False,
    ) -> ModelVersion:
        """Register an exported package directory (or a .zip/.tar/.tar.gz/.tgz archive of
        it, unpacked safely by ``packaging.archives``) as a new version (``name`` from the
        export).

        Every file is hash-checked and, when the export carries a signature, the signature
        is checked against the digest computed from the files, before anything is stored;
        nothing is unpickled. ``require_signed`` refuses a package that carries none. The
        new version keeps the signer's key id in its tag ``imported_signed_by``.
        """
        source = Path(source)
        if is_archive(source):
            with tempfile.TemporaryDirectory(prefix="modelyard-import-") as temp:
                folder = unpack_archive(source, Path(temp))
                return self.import_(
                    folder, name=name, description=description, require_signed=require_signed
                )
        if not (source / "manifest.json").is_file():
            raise InvalidInput(f"'{source}' is not a model package (no manifest.json)")
        record = _export_record(source)
        manifest = verify_package(source, expected_digest=record.get("package_digest"))
        signer = _check_carried_signature(source, record, package_digest(manifest), require_signed)
        model_name = name or record.get("model")
        if not model_name:
            raise InvalidInput(f"'{source}' carries no model name: pass one with --name")
        if description is None:
            description = record.get("description", "")
        tags = dict(record.get("tags") or {})
        if record:
            tags.setdefault("imported_from", f"{record['model']}/{record['version']}")
        if signer:
            tags["imported_signed_by"] = signer
        return self._register_directory(source, model_name, None, description or "", tags)


def _export_record(source: Path) -> dict[str, Any]:
    path = source.parent / f"{source.name}.{EXPORT_RECORD}"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"export record '{path}' is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise IntegrityError(f"export record '{path}' is not a JSON object")
    return record


def _signature_record(signature: VersionSignature) -> dict[str, Any]:
    return {
        "key_id": signature.key_id,
        "key_name": signature.key_name,
        "public_key": signature.public_key,
        "signature": signature.signature,
        "signed_by": signature.signed_by,
        "signed_at": signature.signed_at,
    }


def _check_carried_signature(
    source: Path, record: dict[str, Any], digest: str, require_signed: bool
) -> str | None:
    """The signer ('name (key id)') of an exported package whose signature holds; None
    when it carries none (refused with ``require_signed``)."""
    carried = record.get("signature")
    if not carried:
        if require_signed:
            raise IntegrityError(f"package '{source}' carries no signature")
        return None
    if not isinstance(carried, dict):
        raise IntegrityError(f"the signature of package '{source}' is malformed")
    public_key, key_id = str(carried.get("public_key", "")), str(carried.get("key_id", ""))
    check_signature(public_key, str(carried.get("signature", "")), digest)
    if key_id_of(public_key) != key_id:
        raise IntegrityError(
            f"the signature of package '{source}' names key {key_id}, "
            f"but was made by key {key_id_of(public_key)}"
        )
    return f"{carried.get('key_name', '')} ({key_id})"


def _check_version_signature(version: ModelVersion, signature: VersionSignature) -> None:
    """A signature stored for ``version`` must sign its registered digest under its key."""
    if signature.package_digest != version.package_digest:
        raise IntegrityError(
            f"the signature of {version.ref} covers package {signature.package_digest[:12]}, "
            f"not its registered package {version.package_digest[:12]}"
        )
    check_signature(signature.public_key, signature.signature, version.package_digest)


def _empty_target(target: Path) -> Path:
    if target.exists() and any(target.iterdir()):
        raise Conflict(f"export target '{target}' exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _some(tags: Mapping[str, Any]) -> Mapping[str, Any]:
    if not tags:
        raise InvalidInput("give at least one tag to set")
    return tags
