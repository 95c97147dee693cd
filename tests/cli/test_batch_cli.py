"""``modelyard score`` and ``modelyard batch``, on a real embedded store."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pyarrow.parquet as pq
from rich.progress import Progress

from modelyard.cli.batch import RowsPerSecond
from tests.batch.data import FEATURES, break_row, frame, model, write_parts
from tests.cli.test_cli import invoke
from tests.conftest import embedded_yard, free_port

NULL = "null value but the column is not nullable"


def registered(home: Path) -> None:
    yard = embedded_yard(home)
    try:
        yard.models.register(model(), name="churn", input_example=frame(5)[FEATURES])
        yard.models.set_alias("churn", "champion", 1)
    finally:
        yard.close()


def test_score_then_list_and_show(home: Path, tmp_path: Path) -> None:
    registered(home)
    folder = write_parts(tmp_path / "in", parts=2, rows=40)
    target = tmp_path / "scores.csv"
    code, out, err = invoke(
        home, "score", "churn@champion", str(folder), str(target), "--workers", "1",
        "--keep", "id,customer",
    )  # fmt: skip
    assert code == 0, err
    assert "succeeded, 80 rows of churn/1" in out and "rows/s" in err
    assert target.read_text().splitlines()[0] == '"id","customer","prediction","score_0","score_1"'
    code, out, _ = invoke(home, "batch", "list", "--json")
    jobs = json.loads(out)
    assert code == 0 and [(j["status"], j["rows_out"]) for j in jobs] == [("succeeded", 80)]
    assert (jobs[0]["engine"], jobs[0]["workers"]) == ("local", 1)
    code, out, _ = invoke(home, "batch", "show", jobs[0]["id"])
    assert code == 0 and "churn/1 (asked for churn@champion)" in out and "id, customer" in out
    assert re.search(r"engine\s+│\s+local", out), out
    code, out, _ = invoke(home, "score", "churn/1", str(folder), str(tmp_path / "o"),
                          "--workers", "1", "--format", "parquet", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["output_format"] == "parquet"
    assert pq.read_table(tmp_path / "o").num_rows == 80


def test_bad_input_exits_2_with_one_line(home: Path, tmp_path: Path) -> None:
    registered(home)
    folder = write_parts(tmp_path / "in", parts=3, rows=20)
    break_row(folder / "part-2.parquet", 11)
    out = str(tmp_path / "scores.parquet")
    cases = [
        (["churn/1", str(folder), out],
         f"error: '{folder / 'part-2.parquet'}', row 11: column 'b': " + NULL),
        (["churn/1", str(tmp_path / "nothing"), out], "does not exist"),
        (["nomodel/1", str(folder), out], "model 'nomodel' does not exist"),
        (["churn/1", str(folder), out, "--keep", "nocolumn"], "has no column 'nocolumn'"),
    ]  # fmt: skip
    for args, message in cases:
        code, _, err = invoke(home, "score", *args, "--workers", "1")
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, err)
        assert "Traceback" not in err
    assert not Path(out).exists()
    code, _, err = invoke(home, "batch", "show", "nojob")
    assert code == 2 and "batch job 'nojob' does not exist" in err


def test_an_unreachable_ray_address_is_refused_at_once(home: Path, tmp_path: Path) -> None:
    """A closed port on this machine: refused before any record, without starting Ray."""
    registered(home)
    folder = write_parts(tmp_path / "in", parts=1, rows=10)
    address = f"127.0.0.1:{free_port()}"  # bound, then released: nothing listens there
    for given in (address, f"ray://{address}"):
        code, _, err = invoke(home, "score", "churn/1", str(folder), str(tmp_path / "o.parquet"),
                              "--engine", "ray", "--ray-address", given)  # fmt: skip
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"error: cannot reach a Ray cluster at '{given}'"), err
    code, _, err = invoke(home, "score", "churn/1", str(folder), str(tmp_path / "o.parquet"),
                          "--engine", "ray", "--ray-address", "nowhere")  # fmt: skip
    assert code == 2 and "the Ray address 'nowhere' is not host:port" in err
    code, out, _ = invoke(home, "batch", "list", "--json")
    assert json.loads(out) == []  # nothing was recorded


def test_the_rate_shows_for_a_job_scored_in_one_step() -> None:
    """A small file scores in one progress update, which gives the bar no two samples to
    measure a rate between: the rate is then the rows over the job's time so far."""
    progress = Progress()
    task_id = progress.add_task("score", total=None)
    time.sleep(0.01)
    progress.update(task_id, advance=80)
    task = progress.tasks[0]
    assert task.speed is None  # what the bar's own rate gives here
    shown = RowsPerSecond().render(task).plain
    rate = float(shown.removesuffix(" rows/s").replace(",", ""))
    assert 0 < rate <= 80 / 0.01
    empty = Progress()
    empty.add_task("nothing yet", total=None)
    assert RowsPerSecond().render(empty.tasks[0]).plain == "-"
