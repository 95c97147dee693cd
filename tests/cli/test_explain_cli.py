"""``modelyard explain`` and ``modelyard models compare`` on a real embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from modelyard.client.yard import connect
from tests.cli.test_cli import invoke
from tests.serving.models import cancer


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("explain-cli") / "home"
    yard = connect(home=home)
    features, target = cancer()
    models = (
        GradientBoostingClassifier(n_estimators=20, random_state=0).fit(features, target),
        LogisticRegression(max_iter=5000).fit(features, target),
    )
    try:
        for model in models:
            with yard.start_run("cli-explain") as run:
                run.log_dataset(features.assign(target=target), name="cli-data", role="training")
                run.log_model(model, name="cli", input_example=features.head())
        yard.models.set_alias("cli", "champion", 1)
        yard.endpoints.create("cli-api", routes=["cli/1=100"], shadows=["cli/2"])
    finally:
        yard.close()  # waits for the importances computed in the background
    features.head(2).to_csv(home.parent / "rows.csv", index=False)
    return home


def test_explain_rows_by_a_version_and_by_an_endpoint(home: Path) -> None:
    rows = str(home.parent / "rows.csv")
    code, out, err = invoke(home, "explain", "cli@champion", rows, "--top", "2")
    assert code == 0, err
    assert "rows explained by cli/1 with the tree explainer" in out
    assert "row 0: log-odds of class '1' is" in out
    code, out, err = invoke(
        home, "explain", "cli-api", rows, "--endpoint", "--version", "2", "--json"
    )
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["version"], answer["method"], answer["endpoint"]) == (2, "linear", "cli-api")
    assert len(answer["rows"]) == 2 and len(answer["rows"][0]["top"]) == 5


def test_bad_input_is_one_line_and_exit_code_2(home: Path) -> None:
    for args, message in (
        (("explain", "cli/1", "nothere.csv"), "no file 'nothere.csv'"),
        (("explain", "cli/1"), "give a ROWS file"),
        (("explain", "cli-api", "--id", "nope"), "endpoint 'cli-api' logged no prediction 'nope'"),
        (("models", "compare", "cli", "1", "5"), "version 5"),
    ):
        code, _, err = invoke(home, *args)
        assert (code, err.count("\n")) == (2, 1), err
        assert message in err


def test_models_compare_shows_two_versions_side_by_side(home: Path) -> None:
    code, out, err = invoke(home, "models", "compare", "cli", "1", "2")
    assert code == 0, err
    for needle in ("metrics", "signature changes", "feature importance", "training data"):
        assert needle in out
    code, out, err = invoke(home, "models", "compare", "cli", "1", "2", "--json")
    compared = json.loads(out)
    assert [v["flavor"] for v in compared["versions"]] == ["sklearn", "sklearn"]
    assert compared["data"]["same"] is True and len(compared["importance"]) == 30
