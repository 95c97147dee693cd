"""What every command shares: how to reach the yard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the client (and pandas) load only for commands that use a yard
    from modelyard.client.yard import Yard


@dataclass
class CliContext:
    home: Path | None
    url: str | None
    api_key: str | None
    workspace: str | None = None
    _yard: Yard | None = field(default=None, repr=False)

    def yard(self) -> Yard:
        if self._yard is None:
            from modelyard.client.yard import connect

            self._yard = connect(
                self.url, api_key=self.api_key, home=self.home, workspace=self.workspace
            )
        return self._yard

    def close(self) -> None:
        if self._yard is not None:
            self._yard.close()


pass_context = click.make_pass_decorator(CliContext)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
