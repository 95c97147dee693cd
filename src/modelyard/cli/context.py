"""What every command shares: how to reach the yard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelyard.config import Settings
from modelyard.errors import InvalidInput

if TYPE_CHECKING:  # the client (and pandas) load only for commands that use a yard
    from modelyard.client.yard import Yard


@dataclass
class CliContext:
    home: Path | None
    url: str | None
    api_key: str | None
    workspace: str | None = None
    url_from_env: bool = False
    _yard: Yard | None = field(default=None, repr=False)

    def yard(self) -> Yard:
        if self._yard is None:
            from modelyard.client.yard import connect

            self._yard = connect(
                self.url, api_key=self.api_key, home=self.home, workspace=self.workspace
            )
        return self._yard

    def store(self) -> Settings:
        """The store's own settings, for a command that works on the store itself (there
        is no key yet, or it runs the server or a worker over it); refused with a server
        URL, so it never acts on a ``./.modelyard`` the user did not mean."""
        if self.url:
            command = click.get_current_context().command_path
            how = "unset MODELYARD_URL" if self.url_from_env else "drop --url"
            raise InvalidInput(
                f"`{command}` works on the store itself (MODELYARD_HOME or MODELYARD_DB_URL), "
                f"not through a server: {how}"
            )
        return Settings.from_env(self.home)

    def close(self) -> None:
        if self._yard is not None:
            self._yard.close()


pass_context = click.make_pass_decorator(CliContext)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
