"""Embedded mode audits catalog, deployment, monitor and label changes as the OS user."""

from __future__ import annotations

from pathlib import Path

from modelyard.tracking.environment import current_user
from tests.conftest import embedded_yard
from tests.serving.models import cancer, classifier


def test_embedded_changes_are_audited_with_before_and_after(home: Path) -> None:
    yard = embedded_yard(home)
    features = cancer()[0]
    first = yard.models.register(classifier(), name="audited", input_example=features.head())
    second = yard.models.register(classifier(0.1), name="audited", input_example=features.head())
    yard.models.set_alias("audited", "champion", 1)
    yard.models.set_alias("audited", "champion", 2)
    yard.models.transition("audited/2", "staging", comment="looks good")
    yard.endpoints.create("audited", routes=["audited@champion=100"])
    yard.endpoints.update("audited", routes=["audited/1=100"], comment="back")
    yard.endpoints.rollback("audited")
    yard.endpoints.label("audited", {"no-such-id": 1})
    audit = yard.backend.services.audit  # type: ignore[attr-defined]
    events = audit.events()
    assert {e.actor for e in events} == {current_user()}
    assert {e.client for e in events} == {"embedded"}
    by_action = [(e.action, e.resource) for e in events]
    assert by_action == [
        ("register version", "models/audited/1"),
        ("register version", "models/audited/2"),
        ("set alias", "models/audited@champion"),
        ("set alias", "models/audited@champion"),
        ("transition stage", "models/audited/2"),
        ("create endpoint", "endpoints/audited"),
        ("create monitor", "monitors/audited"),  # its default monitor, as its creator
        ("change endpoint", "endpoints/audited"),
        ("rollback endpoint", "endpoints/audited"),
        ("post labels", "endpoints/audited/labels"),
    ]
    assert events[0].summary["after"]["digest"] == first.package_digest
    assert events[1].summary["after"]["digest"] == second.package_digest
    assert events[3].summary["before"] == {"version": 1}
    assert events[3].summary["after"] == {"version": 2}
    assert events[4].summary["before"] == {"stage": "candidate"}
    assert events[4].summary["after"]["stage"] == "staging"
    assert events[5].summary["after"]["routes"] == {"audited/2 (via @champion)": 100}
    assert events[6].summary["after"]["spec"]["endpoint"] == "audited"
    changed = events[7].summary
    assert changed["before"]["revision"] == 1 and changed["after"]["revision"] == 2
    assert changed["after"]["changes"]["routes"]["after"] == {"audited/1": 100}
    assert changed["after"]["comment"] == "back"
    rolled = events[8].summary["after"]
    assert (rolled["revision"], rolled["changes"]["rollback_to"]) == (3, 1)
    assert events[9].summary["after"] == {"recorded": 0, "unknown": 1}
    assert {e.summary["workspace"] for e in events} == {"default"}
    assert audit.verify() == len(events)
    yard.close()


def test_lineage_exports_as_openlineage_run_events(home: Path) -> None:
    import json

    from modelyard.governance.openlineage import SCHEMA_URL, to_openlineage
    from tests.cli.test_cli import invoke

    yard = embedded_yard(home)
    features, target = cancer()
    with yard.start_run("ol", name="train-ol") as run:
        data = run.log_dataset(features.assign(target=target), name="ol-train", role="training")
        version = run.log_model(classifier(), name="ol", input_example=features.head())
    yard.endpoints.create("ol", routes=["ol/1=100"])
    events = to_openlineage(yard.lineage("dataset:ol-train"))
    yard.close()
    by_job = {e["job"]["name"]: e for e in events}
    assert set(by_job) == {"train-ol", "endpoint/ol"}
    trained = by_job["train-ol"]
    assert trained["eventType"] == "COMPLETE" and trained["schemaURL"] == SCHEMA_URL
    assert trained["run"]["runId"].replace("-", "") == run.id
    assert trained["inputs"] == [
        {
            "namespace": "modelyard",
            "name": "datasets/ol-train",
            "facets": {"version": trained["inputs"][0]["facets"]["version"]},
        }
    ]
    assert trained["inputs"][0]["facets"]["version"]["datasetVersion"] == data.fingerprint
    model = trained["outputs"][0]["facets"]["modelyard_model"]
    assert (model["model"], model["version"]) == ("ol", 1)
    assert model["packageDigest"] == version.package_digest
    assert by_job["endpoint/ol"]["inputs"][0]["name"] == "models/ol/1"
    code, out, err = invoke(home, "lineage", "version:ol/1", "--openlineage")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {line["job"]["name"] for line in lines} == {"train-ol", "endpoint/ol"}


def test_classifying_a_dataset_is_audited_and_the_cli_checks_its_input(home: Path) -> None:
    from tests.cli.test_cli import invoke

    yard = embedded_yard(home)
    with yard.start_run("classes") as run:
        run.log_dataset(cancer()[0], name="patients", role="training")
    yard.close()
    code, out, err = invoke(home, "dataset", "classify", "patients", "pii")
    assert code == 0 and "patients: pii" in out, err
    code, _, err = invoke(home, "dataset", "classify", "patients")
    assert code == 2 and err.strip() == "error: give one or more classes (e.g. pii), or --clear"
    code, _, err = invoke(home, "dataset", "classify", "patients", "pii", "--clear")
    assert code == 2 and "not both" in err
    code, out, _ = invoke(home, "dataset", "classify", "patients", "--clear")
    assert code == 0 and "no sensitivity classes" in out
    yard = embedded_yard(home)
    events = [e for e in yard.backend.services.audit.events() if e.action == "classify dataset"]  # type: ignore[attr-defined]
    yard.close()
    assert [(e.summary["before"], e.summary["after"]) for e in events] == [
        ({"classes": []}, {"classes": ["pii"]}),
        ({"classes": ["pii"]}, {"classes": []}),
    ]


def test_inventory_from_the_cli_is_audited_and_lists_overdue_validations(home: Path) -> None:
    import json

    from tests.cli.test_cli import invoke

    yard = embedded_yard(home)
    yard.models.register(classifier(), name="risky", input_example=cancer()[0].head())
    yard.close()
    code, out, err = invoke(
        home,
        "models",
        "inventory",
        "risky",
        "--risk-tier",
        "high",
        "--next-validation",
        "2026-01-31",
    )
    assert code == 0 and "high" in out, err
    code, out, err = invoke(home, "models", "overdue", "--on", "2026-02-01", "--json")
    assert code == 0, err
    assert [i["model"] for i in json.loads(out)] == ["risky"]
    code, _, err = invoke(home, "models", "inventory", "risky", "--next-validation", "soon")
    assert code == 2 and err.startswith("error: next_validation must be a date")
    yard = embedded_yard(home)
    events = [e for e in yard.backend.services.audit.events() if e.action == "update inventory"]  # type: ignore[attr-defined]
    yard.close()
    assert events[0].summary["before"] == {"risk_tier": None, "next_validation": None}
    assert events[0].summary["after"] == {"risk_tier": "high", "next_validation": "2026-01-31"}


def test_embedded_tracking_writes_are_audited_by_key_never_by_value(home: Path) -> None:
    yard = embedded_yard(home)
    features, target = cancer()
    with yard.start_run("audited-tracking", params={"secret_sauce": 0.123456}) as run:
        for step in range(3):
            run.log_metric("loss", 9.87654 - step, step=step)
        run.log_dict({"payload": "classified-value"}, "notes/config.json")
        run.log_dataset(features.assign(target=target), name="audited-data", role="training")
    audit = yard.backend.services.audit  # type: ignore[attr-defined]
    events = [e for e in audit.events() if e.resource.startswith("runs/")]
    actions = [e.action for e in events]
    assert actions[0] == "create run" and actions[-1] == "finish run"
    assert {"log batch", "log artifact", "log dataset"} <= set(actions)
    created = events[0].summary["after"]
    assert created["params"] == ["secret_sauce"] and created["experiment"] == "audited-tracking"
    batches = [e.summary["after"] for e in events if e.action == "log batch"]
    assert sum(b["points"] for b in batches) == 3
    assert all(b.get("metrics") == ["loss"] for b in batches if b["points"])
    artifact = next(e for e in events if e.action == "log artifact")
    assert artifact.resource.endswith("/artifacts/notes/config.json")
    dataset = next(e for e in events if e.action == "log dataset").summary["after"]
    assert (dataset["role"], dataset["row_count"], dataset["stored"]) == (
        "training",
        len(features),
        True,
    )
    assert dataset["columns"] == features.shape[1] + 1 and dataset["name"] == "audited-data"
    assert events[-1].summary["before"] == {"status": "RUNNING"}
    assert events[-1].summary["after"] == {"status": "FINISHED"}
    assert {e.summary["workspace"] for e in events} == {"default"}
    created_experiment = audit.events(action="create experiment")
    assert [e.resource for e in created_experiment] == ["experiments/audited-tracking"]
    text = repr([e.summary for e in events])
    for value in ("0.123456", "9.87654", "classified-value"):
        assert value not in text
    assert audit.verify() == len(audit.events())
