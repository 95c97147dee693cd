"""The data plane checks a caller's role in the workspace of the endpoint it calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from tests.conftest import prepare_store
from tests.serving.models import cancer, classifier
from tests.serving.process import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fraud_serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str]]:
    home: Path = tmp_path_factory.mktemp("serve-ws") / "home"
    prepare_store(home)
    services = bootstrap(Settings.from_env(home), create_if_empty=False)
    services.workspaces.create("fraud")
    features, _ = cancer()
    fraud = Yard(LocalBackend(services, workspace="fraud"))
    fraud.models.register(classifier(1.0), name="scorer", input_example=features.head())
    fraud.endpoints.create("scoring", routes=["scorer/1=100"])
    serve = ServeProcess(home).start()
    try:
        yield services, serve.url
    finally:
        serve.stop()
        services.close()


def test_predicting_needs_a_role_in_the_endpoints_workspace(
    fraud_serving: tuple[Services, str],
) -> None:
    services, url = fraud_serving
    identity = services.identity
    identity.create_user("insider", "contributor", workspace="fraud")
    identity.create_user("outsider", "admin")  # admin of default, nothing in fraud
    tokens = {name: identity.create_key(name)[1] for name in ("insider", "outsider")}
    features, _ = cancer()
    body = {"records": features.head(2).to_dict(orient="records")}

    def predict(who: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        return httpx.post(
            f"{url}/endpoints/scoring/predict", json=body, headers=headers, timeout=30
        )

    answered = predict("insider")
    assert answered.status_code == 200 and len(answered.json()["predictions"]) == 2
    refused = predict("outsider")
    assert refused.status_code == 403 and "scoring" in refused.json()["error"]["message"]
    metadata = httpx.get(
        f"{url}/v2/models/scoring", headers={"Authorization": f"Bearer {tokens['outsider']}"}
    )
    assert metadata.status_code == 403
    assert "has no role in workspace 'fraud'" in metadata.json()["error"]  # V2's error shape

    listed = httpx.get(
        f"{url}/endpoints", headers={"Authorization": f"Bearer {tokens['outsider']}"}
    )
    assert listed.status_code == 200 and listed.json()["endpoints"] == []

    identity.set_role("outsider", "contributor", workspace="fraud")
    deadline = time.monotonic() + 10  # a principal is remembered for up to 2 s
    while predict("outsider").status_code != 200:
        assert time.monotonic() < deadline, "the new membership never took effect"
        time.sleep(0.2)
    listed = httpx.get(
        f"{url}/endpoints", headers={"Authorization": f"Bearer {tokens['outsider']}"}
    )
    assert [e["name"] for e in listed.json()["endpoints"]] == ["scoring"]
    denied = [e for e in services.audit.events() if e.actor == "outsider" and e.status == 403]
    assert denied and all(e.summary.get("plane") == "serving" for e in denied)
