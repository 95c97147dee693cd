"""``segments.duckdb_connection``: cursors of one database per process, each on its own."""

from __future__ import annotations

import multiprocessing
import threading

import pyarrow as pa
import pytest

from modelyard.serving.segments import duckdb_connection


def test_each_connection_sees_only_its_own_tables_and_views() -> None:
    first, second = duckdb_connection(), duckdb_connection()
    first.register("rows_in", pa.table({"v": [1, 2, 3]}))
    first.execute("CREATE TEMP VIEW predictions AS SELECT v * 2 AS w FROM rows_in")
    second.register("rows_in", pa.table({"v": [10]}))
    second.execute("CREATE TEMP VIEW predictions AS SELECT v AS w FROM rows_in")
    assert first.execute("SELECT sum(w) FROM predictions").fetchall() == [(12,)]
    assert second.execute("SELECT sum(w) FROM predictions").fetchall() == [(10,)]
    first.close()
    with pytest.raises(Exception, match="predictions"):  # gone with its connection
        duckdb_connection().execute("SELECT * FROM predictions").fetchall()
    assert second.execute("SELECT sum(w) FROM predictions").fetchall() == [(10,)]


def test_threads_query_their_own_connections_at_once() -> None:
    answers: dict[int, int] = {}

    def query(n: int) -> None:
        con = duckdb_connection()
        con.register("numbers", pa.table({"v": list(range(n))}))
        con.execute("CREATE TEMP VIEW predictions AS SELECT v FROM numbers")
        for _ in range(20):
            answers[n] = con.execute("SELECT sum(v) FROM predictions").fetchall()[0][0]

    threads = [threading.Thread(target=query, args=(n,)) for n in (100, 1000, 5000, 20000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == {n: n * (n - 1) // 2 for n in (100, 1000, 5000, 20000)}


def _in_child(queue: multiprocessing.Queue[object]) -> None:
    con = duckdb_connection()
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    total = con.execute("SELECT count(*) FROM range(5000000) t(v) WHERE v % 7 >= 0").fetchall()
    queue.put((tables, total[0][0]))


def test_a_forked_process_opens_a_database_of_its_own() -> None:
    parent = duckdb_connection()
    parent.execute("CREATE TABLE IF NOT EXISTS opened_before_the_fork (v INTEGER)")
    try:
        context = multiprocessing.get_context("fork")
        queue: multiprocessing.Queue[object] = context.Queue()
        child = context.Process(target=_in_child, args=(queue,))
        child.start()
        try:
            assert queue.get(timeout=60) == ([], 5000000)  # not the parent's database
        finally:
            child.join(timeout=60)
        assert child.exitcode == 0
    finally:
        parent.execute("DROP TABLE opened_before_the_fork")
