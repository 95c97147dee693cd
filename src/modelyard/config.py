"""Where modelyard keeps its data, read from the environment.

``MODELYARD_HOME`` (default ``./.modelyard``) holds the SQLite database and the
artifact folder in embedded mode; ``MODELYARD_DB_URL`` points the metadata store at
PostgreSQL; ``MODELYARD_ARTIFACTS`` at another artifact root (a folder or an
fsspec URL); ``MODELYARD_URL`` and ``MODELYARD_API_KEY`` make the SDK and CLI talk
to a server; ``MODELYARD_PREDICTIONS`` moves the prediction log out of the home
(a folder), or into the metadata database (``database``);
``MODELYARD_SECRET_KEY`` is the Fernet key that encrypts stored secrets (required
by ``modelyard server``; embedded mode falls back to ``HOME/secret.key``);
``MODELYARD_WORKSPACE`` names the workspace the SDK and CLI act in;
``MODELYARD_REQUIRE_SIGNED_PACKAGES=1`` refuses unsigned versions before production
and before they take traffic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8700


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    artifact_root: str
    server_url: str | None = None
    api_key: str | None = None
    prediction_root: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    workspace: str | None = None
    require_signed_packages: bool = False

    @property
    def prediction_log_in_database(self) -> bool:
        """``MODELYARD_PREDICTIONS=database``: the log lives in the metadata database."""
        return self.prediction_root == "database"

    @property
    def predictions_root(self) -> Path:
        """Where the prediction log lives (``MODELYARD_PREDICTIONS``, default HOME/predictions)."""
        return Path(self.prediction_root) if self.prediction_root else self.home / "predictions"

    @property
    def package_cache(self) -> Path:
        """Where packages from a remote artifact store are copied to load, one folder per digest."""
        return self.home / "cache" / "packages"

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        root = Path(home or os.environ.get("MODELYARD_HOME") or ".modelyard").absolute()
        db_url = os.environ.get("MODELYARD_DB_URL") or f"sqlite:///{root / 'modelyard.db'}"
        artifacts = os.environ.get("MODELYARD_ARTIFACTS") or str(root / "artifacts")
        return cls(
            home=root,
            db_url=db_url,
            artifact_root=artifacts,
            server_url=os.environ.get("MODELYARD_URL") or None,
            api_key=os.environ.get("MODELYARD_API_KEY") or None,
            prediction_root=os.environ.get("MODELYARD_PREDICTIONS") or None,
            secret_key=os.environ.get("MODELYARD_SECRET_KEY") or None,
            workspace=os.environ.get("MODELYARD_WORKSPACE") or None,
            require_signed_packages=_flag(os.environ.get("MODELYARD_REQUIRE_SIGNED_PACKAGES")),
        )


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def client_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Where an SDK talking to a server keeps its cache (downloaded packages): ``home``
    or ``MODELYARD_HOME`` when given, else the user's cache folder, so a remote yard never
    makes a ``./.modelyard`` store folder in the working directory."""
    chosen = home or os.environ.get("MODELYARD_HOME")
    if chosen:
        return Path(chosen).absolute()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelyard"
