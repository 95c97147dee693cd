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
from cryptography.fernet import Fernet

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


def tracking_operations(yard: Yard) -> None:
    """A training session, its data's classes and an alert channel's secret, with the SDK."""
    features, target = cancer()
    yard.experiments.create("parity-exp", description="tracking, by parity")
    with yard.start_run("parity-exp", name="first", params={"C": 0.5}, tags={"by": "me"}) as run:
        run.log_batch({"loss": [0.9, 0.7, 0.5], "auc": [0.8, 0.85, 0.9]})
        run.log_params({"penalty": "l2"})
        run.set_tags({"stage": "tuning"})
        run.log_dict({"C": 0.5}, "config/params.json")
        run.log_dataset(features.assign(target=target), name="parity-train", role="training")
        run.log_dataset(features.head(20), name="parity-sample", role="evaluation", store=False)
    yard.start_run("parity-implicit", name="second", capture_env=False).end("FAILED", "boom")
    yard.datasets.classify("parity-train", ["pii", "confidential"])
    yard.datasets.classify("parity-train", [])
    yard.secrets.set("parity-token", "parity-secret-value")
    yard.secrets.set("parity-token", "parity-secret-value-2")
    yard.secrets.delete("parity-token")


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
    """A server whose first admin has the OS user's name (so both planes act as one user),
    with a key for secrets."""
    home = tmp_path / "server"
    env = {"MODELYARD_HOME": str(home), "PATH": str(Path(modelyard_command()[0]).parent)}
    for args in (("db", "upgrade"), ("admin", "init", "--name", os_user())):
        done = subprocess.run(
            modelyard_command(*args), env=env, check=True, capture_output=True, text=True
        )
    key = done.stdout.strip().splitlines()[-1]
    running = ServerProcess(home, env={"MODELYARD_SECRET_KEY": Fernet.generate_key().decode()})
    running.start()
    yield running, key
    running.stop()


Operations = Callable[[Yard], None]
Events = list[dict[str, Any]]


def audit_of(yard: Yard, operations: Operations, read: Callable[[], Events]) -> Events:
    """The events ``operations(yard)`` leaves in the audit log that ``read`` reads."""
    known = {event["id"] for event in read()}
    operations(yard)
    return [event for event in read() if event["id"] not in known]


def both_planes(
    own_server: tuple[ServerProcess, str], home: Path, operations: Operations
) -> tuple[Events, Events]:
    """The events of ``operations`` done embedded, then through the server."""
    server, key = own_server
    embedded = connect(home=home / "embedded")
    remote = connect(server.url, api_key=key, home=home / "client")
    audit = embedded.backend.services.audit  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {key}"}
    try:
        inside = audit_of(embedded, operations, lambda: [plain(e) for e in audit.events()])
        through = audit_of(
            remote,
            operations,
            lambda: httpx.get(
                f"{server.url}/api/v1/audit", params={"limit": 0}, headers=headers, timeout=30
            ).json(),
        )
    finally:
        embedded.close()
        remote.close()
    return inside, through


def test_embedded_and_server_write_the_same_events(
    own_server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    inside, through = both_planes(own_server, tmp_path, operations)
    assert len(inside) >= 11
    assert comparable(through) == comparable(inside)
    assert {event["client"] for event in inside} == {"embedded"}
    assert {event["client"] for event in through} == {"127.0.0.1"}
    assert {event["key_id"] for event in inside} == {None}
    assert all(event["key_id"] for event in through)


def test_tracking_datasets_and_secrets_write_the_same_events_on_both_planes(
    own_server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    inside, through = both_planes(own_server, tmp_path, tracking_operations)
    assert comparable(through) == comparable(inside)
    assert [(e["action"], e["resource"].split("/")[0]) for e in inside] == [
        ("create experiment", "experiments"),
        ("create run", "runs"),
        ("log batch", "runs"),
        ("log batch", "runs"),
        ("log batch", "runs"),
        ("log artifact", "runs"),
        ("log dataset", "runs"),
        ("log dataset", "runs"),
        ("finish run", "runs"),
        ("create experiment", "experiments"),
        ("create run", "runs"),
        ("finish run", "runs"),
        ("classify dataset", "datasets"),
        ("classify dataset", "datasets"),
        ("set secret", "secrets"),
        ("set secret", "secrets"),
        ("delete secret", "secrets"),
    ]
    assert {event["client"] for event in through} == {"127.0.0.1"}
    assert all(event["key_id"] for event in through)
    assert "parity-secret-value" not in json.dumps(inside + through)
