"""The same operations, embedded and through a server, leave the same audit events.

Changes are recorded once, by the services, inside their own transactions; the
embedded backend and the API routes only pass calls through. So a sequence of SDK
calls made in-process (as the OS user) and through a real server (with a key of a
user of the same name) must yield identical events, apart from the key id and the
client address, and apart from the ids and digests each store generates (run ids,
upload folders, package digests), which are matched by order of first appearance.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.client.yard import Yard, connect
from modelyard.domain.actors import os_user
from modelyard.jsonable import plain
from tests.conftest import ServerProcess, modelyard_command
from tests.serving.models import cancer, classifier

pytestmark = pytest.mark.slow  # every test here starts a process

GENERATED = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b")


def operations(yard: Yard) -> None:
    """A day in the catalog, as one user would do it with the SDK."""
    features = cancer()[0]
    fitted = classifier()
    yard.models.create("parity", description="churn, by parity")
    yard.models.update("parity", description="churn model", tags={"team": "risk"})
    yard.models.register(fitted, name="parity", input_example=features.head())
    yard.models.register(fitted, name="parity", input_example=features.head())
    yard.models.set_alias("parity", "champion", 1)
    yard.models.set_alias("parity", "champion", 2)
    yard.models.delete_alias("parity", "champion")
    yard.models.transition("parity/1", "staging", comment="looks good")
    yard.models.transition("parity/2", "staging", comment="better", archive_others=True)
    yard.models.set_inventory("parity", risk_tier="high", business_owner="risk-team")
    yard.models.retire("parity/1", comment="superseded")


def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event without its key id, client, time and chain, generated ids numbered."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"<id{len(names)}>")

    kept = []
    for event in events:
        fields = {key: event[key] for key in ("actor", "action", "resource", "outcome", "status")}
        fields["summary"] = event["summary"]
        kept.append(json.loads(GENERATED.sub(rename, json.dumps(fields, sort_keys=True))))
    return kept


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A server whose first admin has the OS user's name (so both planes act as one user)."""
    home = tmp_path / "server"
    env = {"MODELYARD_HOME": str(home), "PATH": str(Path(modelyard_command()[0]).parent)}
    for args in (("db", "upgrade"), ("admin", "init", "--name", os_user())):
        done = subprocess.run(
            modelyard_command(*args), env=env, check=True, capture_output=True, text=True
        )
    key = done.stdout.strip().splitlines()[-1]
    running = ServerProcess(home).start()
    yield running, key
    running.stop()


def audit_of(yard: Yard, read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events ``operations(yard)`` leaves in the audit log that ``read`` reads."""
    known = {event["id"] for event in read()}
    operations(yard)
    return [event for event in read() if event["id"] not in known]


def test_embedded_and_server_write_the_same_events(
    own_server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, key = own_server
    embedded = connect(home=tmp_path / "embedded")
    remote = connect(server.url, api_key=key, home=tmp_path / "client")
    audit = embedded.backend.services.audit  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {key}"}
    try:
        inside = audit_of(embedded, lambda: [plain(e) for e in audit.events()])
        through = audit_of(
            remote,
            lambda: httpx.get(
                f"{server.url}/api/v1/audit", params={"limit": 0}, headers=headers, timeout=30
            ).json(),
        )
    finally:
        embedded.close()
        remote.close()
    assert len(inside) >= 11
    assert comparable(through) == comparable(inside)
    assert {event["client"] for event in inside} == {"embedded"}
    assert {event["client"] for event in through} == {"127.0.0.1"}
    assert {event["key_id"] for event in inside} == {None}
    assert all(event["key_id"] for event in through)
