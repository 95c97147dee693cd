"""``yard.secrets``: store the tokens and passwords alert channels use; never read them back."""

from __future__ import annotations

from modelyard.client.backend import Backend
from modelyard.domain.secrets import SecretRecord


class SecretsAPI:
    """Encrypted secrets, referred to by name from alert channel specs.

    >>> yard.secrets.set("pager-token", os.environ["PAGER_TOKEN"])
    >>> [s.name for s in yard.secrets.list()]
    ['pager-token']
    >>> # {"type": "webhook", "url": "https://...", "token_secret": "pager-token"}

    A value can be replaced or deleted but is never returned: only alert channels
    read it, inside the process that delivers alerts.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def set(self, name: str, value: str) -> SecretRecord:
        """Create or replace ``name`` (letters, digits, '-', '_', '.'; up to 128)."""
        return self._backend.set_secret(name, value)

    def list(self) -> list[SecretRecord]:
        """Every secret's name and who set it when; no values."""
        return self._backend.list_secrets()

    def delete(self, name: str) -> None:
        self._backend.delete_secret(name)
