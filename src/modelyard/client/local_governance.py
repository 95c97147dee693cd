"""Lineage, dataset classes, approvals and secrets in the embedded backend."""

from __future__ import annotations

from typing import Any

from modelyard.client.local_base import LocalBase
from modelyard.domain.secrets import SecretRecord
from modelyard.domain.signing import SigningKey, VersionSignature
from modelyard.errors import InvalidInput
from modelyard.governance.lineage import LineageGraph


class LocalGovernance(LocalBase):
    """Lineage, dataset classification, approvals and secrets, in-process."""

    def lineage(self, node: str) -> LineageGraph:
        return self.services.lineage.of(node)

    def classify_dataset(self, name: str, tags: list[str]) -> list[str]:
        return self.services.datasets.classify(name, tags)

    def dataset_classes(self, name: str) -> list[str]:
        return self.services.datasets.classes(name)

    # -- approvals ----------------------------------------------------------------

    def approval_decision(self, ref: str, decision: str, comment: str) -> dict[str, Any]:
        approvals = self.services.approvals
        act = {
            "request": approvals.request,
            "approve": approvals.approve,
            "reject": approvals.reject,
        }.get(decision)
        if act is None:
            raise InvalidInput(f"decision must be request, approve or reject, got {decision!r}")
        return act(ref, comment=comment).to_dict()

    def approval_status(self, ref: str) -> dict[str, Any]:
        return self.services.approvals.status(ref).to_dict()

    def approval_policy(self, required: int | None) -> int:
        approvals = self.services.approvals
        if required is None:
            return approvals.policy(self._home)
        return approvals.set_policy(required, workspace=self._home)

    # -- package signing ----------------------------------------------------------

    def create_signing_key(self, name: str) -> SigningKey:
        return self.services.signing.create_key(name)

    def list_signing_keys(self) -> list[SigningKey]:
        return self.services.signing.keys()

    def version_signature(self, ref: str) -> VersionSignature:
        version = self._catalog.get_version(ref)
        return self.services.signing.signature_of(version.model, version.version)

    # -- secrets ------------------------------------------------------------------

    def set_secret(self, name: str, value: str) -> SecretRecord:
        return self.services.secrets.set(name, value, workspace=self._home)

    def list_secrets(self) -> list[SecretRecord]:
        return self.services.secrets.names(self.workspace)

    def delete_secret(self, name: str) -> None:
        self.services.secrets.delete(name)
