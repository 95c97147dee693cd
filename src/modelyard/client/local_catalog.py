"""The model catalog of the embedded backend."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.catalog.packages import package_directory
from modelyard.client.local_base import LocalBase
from modelyard.domain.models import Inventory, ModelVersion, RegisteredModel
from modelyard.packaging import upload_order
from modelyard.tracking.runs import PACKAGE_PATH, run_artifact_key


class LocalCatalog(LocalBase):
    """Packages, models, versions, aliases, stages, cards, retirement and inventory,
    in-process."""

    def upload_package(self, directory: Path, run_id: str | None) -> str:
        if run_id is not None:
            for relative, path in upload_order(directory):
                with path.open("rb") as handle:
                    self._tracking.log_artifact(run_id, f"{PACKAGE_PATH}/{relative}", handle)
            return run_artifact_key(run_id, PACKAGE_PATH)
        prefix = self._catalog.stage_upload(uuid.uuid4().hex, self._home)
        try:
            for relative, path in upload_order(directory):
                with path.open("rb") as handle:
                    self.services.artifacts.put(f"{prefix}/{relative}", handle)
        except BaseException:
            self._discard_upload(prefix)
            raise
        return prefix

    def _discard_upload(self, prefix: str) -> None:
        """Remove the files of an upload cut short (a full disk wants its space back);
        nothing refers to them, and without a manifest they are no package anyway."""
        local = self.services.artifacts.local_path(prefix)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)

    def fetch_package(self, version: ModelVersion) -> Path:
        return package_directory(
            self.services.artifacts,
            version.source,
            version.package_digest,
            self.services.settings.home / "cache" / "packages",
        )

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._catalog.create_model(name, description, tags, workspace=self._home)

    def get_model(self, name: str) -> RegisteredModel:
        return self._catalog.get_model(name)

    def list_models(
        self,
        name_contains: str | None = None,
        tag: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RegisteredModel]:
        return self._catalog.list_models(
            name_contains, tag, workspace=self.workspace, limit=limit, after=after
        )

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        return self._catalog.update_model(name, description=description, tags=tags)

    def register_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        return self._catalog.register_version(
            name,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags,
            workspace=self._home,
        )

    def get_version(self, ref: str) -> ModelVersion:
        return self._catalog.get_version(ref)

    def search_versions(
        self,
        name: str | None = None,
        *,
        stage: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        sensitivity: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ModelVersion]:
        return self._catalog.search_versions(
            name,
            stage=stage,
            run_id=run_id,
            tag=tag,
            sensitivity=sensitivity,
            workspace=self.workspace,
            limit=limit,
            after=after,
        )

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        return self._catalog.update_version(ref, description=description, tags=tags)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self._catalog.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._catalog.delete_alias(name, alias)

    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        return self._catalog.transition_stage(
            ref, stage, comment=comment, archive_others=archive_others
        )

    def stage_history(self, ref: str) -> list[dict[str, Any]]:
        return self._catalog.stage_history(ref)

    def retire_version(self, ref: str, comment: str) -> ModelVersion:
        return self.services.retirement.retire_version(ref, comment=comment)

    def retire_model(self, name: str, comment: str) -> list[ModelVersion]:
        return self.services.retirement.retire_model(name, comment=comment)

    def model_card(self, ref: str, form: str) -> str:
        return self.services.cards.card(ref, form)

    def get_inventory(self, name: str) -> Inventory:
        return self.services.inventory.get(name)

    def update_inventory(self, name: str, changes: dict[str, Any]) -> Inventory:
        return self.services.inventory.update(name, **changes)

    def search_inventory(self, **filters: str | None) -> list[Inventory]:
        return self.services.inventory.search(**filters, workspace=self.workspace)
