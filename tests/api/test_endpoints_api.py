"""The serving control plane over HTTP: deploy rights, endpoint keys, audited reads."""

from __future__ import annotations

import httpx
import pytest

from modelyard.client.yard import connect
from tests.conftest import ServerProcess
from tests.serving.models import cancer, classifier


@pytest.fixture
def deployed(server: ServerProcess, unique: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    yard = connect(server.url, api_key=server.admin_key, home=tmp_path_factory.mktemp("c"))
    yard.models.register(classifier(), name=unique, input_example=cancer()[0].head())
    yard.endpoints.create(unique, routes=[f"{unique}/1=100"])
    yard.close()
    return unique


def key_for(api: httpx.Client, user: str, role: str, **extra: object) -> str:
    api.post("/api/v1/users", json={"name": user, "role": role})
    answer = api.post(f"/api/v1/users/{user}/keys", json={"name": "test", **extra})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_reading_predictions_is_audited_like_a_write(
    api: httpx.Client, server: ServerProcess, deployed: str
) -> None:
    answer = api.get(f"/api/v1/endpoints/{deployed}/predictions", params={"limit": 5})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
    events = api.get(
        "/api/v1/audit", params={"action": "GET /api/v1/endpoints/{name}/predictions"}
    ).json()
    mine = [e for e in events if e["resource"] == f"/api/v1/endpoints/{deployed}/predictions"]
    assert mine and mine[-1]["summary"]["query"] == {"limit": "5"}


def test_only_maintainers_deploy_and_endpoint_keys_reach_no_control_plane_route(
    api: httpx.Client, server: ServerProcess, deployed: str, unique: str
) -> None:
    contributor = key_for(api, f"{unique}-c", "contributor")
    maintainer = key_for(api, f"{unique}-m", "maintainer")
    scoped = key_for(api, f"{unique}-m", "maintainer", endpoint=deployed)
    change = {"routes": [{"model": deployed, "version": 1, "weight": 100}], "comment": "x"}
    body = {**change, "description": "touched"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        as_contributor = {"Authorization": f"Bearer {contributor}"}
        refused = http.patch(f"/api/v1/endpoints/{deployed}", json=body, headers=as_contributor)
        assert refused.status_code == 403
        as_maintainer = {"Authorization": f"Bearer {maintainer}"}
        done = http.patch(f"/api/v1/endpoints/{deployed}", json=body, headers=as_maintainer)
        assert done.status_code == 200 and done.json()["revision"] == 2
        assert done.json()["description"] == "touched"
        as_scoped = {"Authorization": f"Bearer {scoped}"}
        for path in ("/api/v1/models", f"/api/v1/endpoints/{deployed}", "/api/v1/whoami"):
            assert http.get(path, headers=as_scoped).status_code == 403


def test_an_endpoint_key_needs_a_user_who_may_predict(
    api: httpx.Client, deployed: str, unique: str
) -> None:
    api.post("/api/v1/users", json={"name": f"{unique}-v", "role": "viewer"})
    answer = api.post(f"/api/v1/users/{unique}-v/keys", json={"name": "x", "endpoint": deployed})
    assert answer.status_code == 422
    assert "may not predict" in answer.json()["error"]["message"]
