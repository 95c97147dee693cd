"""Lineage, dataset classes, approvals, package signing and secrets in the remote backend."""

from __future__ import annotations

from typing import Any

from modelyard.client.remote_base import RemoteBase, _path, _quoted_selector, parse
from modelyard.domain.secrets import SecretRecord, check_secret_name
from modelyard.domain.signing import SigningKey, VersionSignature, check_key_name
from modelyard.governance.lineage import LineageGraph, graph_from_dict


class RemoteGovernance(RemoteBase):
    """Lineage, dataset classification, approvals and secrets, over HTTP."""

    def lineage(self, node: str) -> LineageGraph:
        return graph_from_dict(self._json("GET", "/lineage", params={"node": node}))

    def classify_dataset(self, name: str, tags: list[str]) -> list[str]:
        answer = self._json("PUT", f"/datasets/{_path(name)}/classes", json={"classes": tags})
        return list(answer["classes"])

    def dataset_classes(self, name: str) -> list[str]:
        return list(self._json("GET", f"/datasets/{_path(name)}/classes")["classes"])

    # -- approvals ----------------------------------------------------------------

    def approval_decision(self, ref: str, decision: str, comment: str) -> dict[str, Any]:
        name, selector = _quoted_selector(ref)
        body = {"comment": comment}
        if decision == "request":
            path = f"/models/{name}/versions/{selector}/approval-requests"
        else:
            path = f"/models/{name}/versions/{selector}/approvals"
            body["decision"] = decision
        return dict(self._json("POST", path, json=body))

    def approval_status(self, ref: str) -> dict[str, Any]:
        name, selector = _quoted_selector(ref)
        return dict(self._json("GET", f"/models/{name}/versions/{selector}/approvals"))

    def approval_policy(self, required: int | None) -> int:
        if required is None:
            return int(self._json("GET", "/policies/approvals")["required"])
        answer = self._json("PUT", "/policies/approvals", json={"required": required})
        return int(answer["required"])

    # -- package signing ----------------------------------------------------------

    def create_signing_key(self, name: str) -> SigningKey:
        check_key_name(name)
        return parse(SigningKey, self._json("POST", "/signing-keys", json={"name": name}))

    def list_signing_keys(self) -> list[SigningKey]:
        return parse(list[SigningKey], self._json("GET", "/signing-keys"))

    def version_signature(self, ref: str) -> VersionSignature:
        name, selector = _quoted_selector(ref)
        answer = self._json("GET", f"/models/{name}/versions/{selector}/signature")
        return parse(VersionSignature, answer)

    def set_secret(self, name: str, value: str) -> SecretRecord:
        check_secret_name(name)  # a name like '..' would change the URL's path
        answer = self._json("PUT", f"/secrets/{_path(name)}", json={"value": value})
        return parse(SecretRecord, answer)

    def list_secrets(self) -> list[SecretRecord]:
        return parse(list[SecretRecord], self._json("GET", "/secrets"))

    def delete_secret(self, name: str) -> None:
        check_secret_name(name)
        self._send("DELETE", f"/secrets/{_path(name)}")
