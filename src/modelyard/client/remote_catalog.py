"""The model catalog of the remote backend."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from modelyard.artifacts.keys import safe_key
from modelyard.client.remote_base import CHUNK, RemoteBase, _body, _path, _selector, _texts, parse
from modelyard.domain.models import Inventory, ModelVersion, RegisteredModel
from modelyard.domain.runs import Artifact
from modelyard.packaging import upload_order, verify_package
from modelyard.tracking.runs import PACKAGE_PATH, run_artifact_key


class RemoteCatalog(RemoteBase):
    """Packages, models, versions, aliases, stages, cards, retirement and inventory,
    over HTTP."""

    if TYPE_CHECKING:  # a run's package is uploaded as its artifacts (``RemoteTracking``)

        def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact: ...

    def upload_package(self, directory: Path, run_id: str | None) -> str:
        if run_id is not None:
            for relative, path in upload_order(directory):
                with path.open("rb") as handle:
                    self.log_artifact(run_id, f"{PACKAGE_PATH}/{relative}", handle)
            return run_artifact_key(run_id, PACKAGE_PATH)
        upload_id = uuid.uuid4().hex
        for relative, path in upload_order(directory):
            with path.open("rb") as handle:
                self._send("PUT", f"/uploads/{upload_id}/{quote(relative)}", content=_body(handle))
        return f"uploads/{upload_id}"

    def fetch_package(self, version: ModelVersion) -> Path:
        """Download a version's package into ``home/cache/packages/<digest>`` (once per digest).

        Files land in a staging folder that is checked against the version's
        package digest before it is renamed into the cache, so the cache never
        holds a partial or tampered package.
        """
        target = self.home / "cache" / "packages" / version.package_digest
        if (target / "manifest.json").is_file():
            return target
        base = f"/models/{_path(version.model)}/versions/{version.version}/package"
        listing = self._json("GET", base)
        staging = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            for relative in listing["files"]:
                self._download(f"{base}/{quote(safe_key(relative))}", staging / relative)
            verify_package(staging, expected_digest=version.package_digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():  # else another process fetched it meanwhile
                staging.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _download(self, path: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with self._stream("GET", path) as response, destination.open("wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)

    def create_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": _texts(tags)}
        return parse(RegisteredModel, self._json("POST", "/models", json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return parse(RegisteredModel, self._json("GET", f"/models/{_path(name)}"))

    def list_models(
        self,
        name_contains: str | None = None,
        tag: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RegisteredModel]:
        query = {"name_contains": name_contains, "tag": tag, "limit": limit, "after": after}
        params = {k: v for k, v in query.items() if v is not None and v != ""}
        return parse(list[RegisteredModel], self._json("GET", "/models", params=params))

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"description": description, "tags": _texts(tags)}
        return parse(RegisteredModel, self._json("PATCH", f"/models/{_path(name)}", json=body))

    def register_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        body = {
            "source": source,
            "run_id": run_id,
            "description": description,
            "tags": _texts(tags),
        }
        return parse(ModelVersion, self._json("POST", f"/models/{_path(name)}/versions", json=body))

    def get_version(self, ref: str) -> ModelVersion:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}"
        return parse(ModelVersion, self._json("GET", url))

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
        query = {
            "name": name,
            "stage": stage,
            "run_id": run_id,
            "tag": tag,
            "sensitivity": sensitivity,
            "limit": limit,
            "after": after,
        }
        params = {k: v for k, v in query.items() if v is not None and v != ""}
        return parse(list[ModelVersion], self._json("GET", "/versions", params=params))

    def update_version(
        self, ref: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        name, selector = _selector(ref)
        body = {"description": description, "tags": _texts(tags)}
        url = f"/models/{_path(name)}/versions/{_path(selector)}"
        return parse(ModelVersion, self._json("PATCH", url, json=body))

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        url = f"/models/{_path(name)}/aliases/{_path(alias)}"
        return parse(ModelVersion, self._json("PUT", url, json={"version": version}))

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", f"/models/{_path(name)}/aliases/{_path(alias)}")

    def transition_stage(
        self,
        ref: str,
        stage: str,
        *,
        comment: str = "",
        archive_others: bool = False,
    ) -> ModelVersion:
        name, selector = _selector(ref)
        body = {
            "stage": stage,
            "comment": comment,
            "archive_others": archive_others,
        }
        url = f"/models/{_path(name)}/versions/{_path(selector)}/stage"
        return parse(ModelVersion, self._json("POST", url, json=body))

    def stage_history(self, ref: str) -> list[dict[str, Any]]:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/stages"
        result: list[dict[str, Any]] = self._json("GET", url)
        return result

    def retire_version(self, ref: str, comment: str) -> ModelVersion:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/retire"
        return parse(ModelVersion, self._json("POST", url, json={"comment": comment}))

    def retire_model(self, name: str, comment: str) -> list[ModelVersion]:
        answer = self._json("POST", f"/models/{_path(name)}/retire", json={"comment": comment})
        return parse(list[ModelVersion], answer)

    def model_card(self, ref: str, form: str) -> str:
        name, selector = _selector(ref)
        url = f"/models/{_path(name)}/versions/{_path(selector)}/card"
        return self._send("GET", url, params={"format": form}).text

    def get_inventory(self, name: str) -> Inventory:
        return parse(Inventory, self._json("GET", f"/models/{_path(name)}/inventory"))

    def update_inventory(self, name: str, changes: dict[str, Any]) -> Inventory:
        answer = self._json("PATCH", f"/models/{_path(name)}/inventory", json=changes)
        return parse(Inventory, answer)

    def search_inventory(self, **filters: str | None) -> list[Inventory]:
        params = {k: v for k, v in filters.items() if v is not None}
        return parse(list[Inventory], self._json("GET", "/inventory", params=params))
