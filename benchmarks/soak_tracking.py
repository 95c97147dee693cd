"""Tracking soak: several clients log batches through ``modelyard server`` at once, then
every point is read back through the API.

1. A fresh store (SQLite by default; ``--db`` names a PostgreSQL server, on which a
   throwaway database is created for the run and dropped after it), an admin, and one
   user with its own API key per client.
2. ``modelyard server`` as a process on 127.0.0.1.
3. ``--clients`` client processes, each with its own SDK connection (``modelyard.connect``
   with its key), start a run and send ``--batches`` batches (``run.log_batch``) of
   ``--points`` metric points (5 keys, consecutive steps) and one param each, all at
   once; a batch whose request fails is counted, not retried.
4. Read back through the API as the admin: each key's metric history holds exactly the
   steps and values sent, once each, and each run holds every param sent.

Exits 1 when a check fails. Run it::

    .venv/bin/python benchmarks/soak_tracking.py                          # 10 clients
    .venv/bin/python benchmarks/soak_tracking.py --clients 2 --batches 10
    .venv/bin/python benchmarks/soak_tracking.py --db postgresql://postgres@127.0.0.1:5432/postgres

``SOAK_CLIENTS`` in the environment sets the default number of clients.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from processes import free_port, run_together, server, step  # benchmarks/ is on sys.path

import modelyard as my

KEYS = ("loss", "accuracy", "auc", "precision", "recall")
EXPERIMENT = "soak"
CLIENT_TIMEOUT = 1800.0  # seconds the clients may take, all together


@dataclass
class Client:
    number: int
    url: str
    key: str
    home: str
    batches: int
    points: int


@dataclass
class Logged:
    number: int
    run_id: str
    batches_failed: int
    errors: list[str]
    started: float  # wall-clock times of the first and the end of the last batch
    finished: float


def value_of(client: int, step: int) -> float:
    """A value no other client or step sends, so a misplaced point is seen."""
    return client * 1_000_000 + step + 0.25


def run_client(client: Client, start: Callable[[], None]) -> Logged:
    """Entry point of a client process: one run, ``batches`` batches, each its own request,
    sent once every client has started its run."""
    per_key = client.points // len(KEYS)
    failed, errors = 0, []
    with my.connect(client.url, api_key=client.key, home=client.home) as yard:
        run = yard.start_run(EXPERIMENT, name=f"client-{client.number}")
        start()
        started = time.time()
        for batch in range(client.batches):
            steps = range(batch * per_key, (batch + 1) * per_key)
            metrics = [(key, value_of(client.number, s), s) for key in KEYS for s in steps]
            try:
                run.log_batch(metrics, params={f"batch-{batch}": batch})
            except Exception as exc:  # counted and reported: the soak is about failures
                failed += 1
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
        finished = time.time()
        run.end()
    return Logged(client.number, run.id, failed, errors, started, finished)


def read_back(yard: my.Yard, logged: Logged, batches: int, points: int) -> Counter[str]:
    """Points stored, missing, duplicated or wrong for one client's run; params likewise."""
    per_key = points // len(KEYS)
    expected = {s: value_of(logged.number, s) for s in range(batches * per_key)}
    found: Counter[str] = Counter()
    for key in KEYS:
        history = yard.runs.history(logged.run_id, key)
        steps = Counter(point.step for point in history)
        found["stored"] += len(history)
        found["duplicates"] += sum(count - 1 for count in steps.values())
        found["missing"] += len(set(expected) - set(steps))
        found["wrong"] += sum(1 for p in history if expected.get(p.step) != p.value)
    params = yard.runs.get(logged.run_id).params
    found["params stored"] = len(params)
    found["params wrong"] = sum(1 for b in range(batches) if params.get(f"batch-{b}") != str(b))
    return found


@contextlib.contextmanager
def throwaway_database(server_url: str | None) -> Iterator[str | None]:
    """A new database on the PostgreSQL server ``server_url`` (None: SQLite in the home),
    dropped afterwards."""
    if server_url is None:
        yield None
        return
    from sqlalchemy import create_engine, make_url, text

    admin_url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"modelyard_soak_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(home: Path, db_url: str | None) -> str:
    """A new store (in ``home``, or the database ``db_url``) with an admin; its key."""
    from modelyard.bootstrap import bootstrap
    from modelyard.config import Settings

    settings = Settings.from_env(home)
    if db_url:
        settings = replace(settings, db_url=db_url)
    services = bootstrap(settings)  # creates the schema at its newest
    try:
        services.identity.create_user("soak-admin", "admin")
        return services.identity.create_key("soak-admin")[1]
    finally:
        services.close()


def main() -> None:
    for name in [name for name in os.environ if name.startswith("MODELYARD_")]:
        del os.environ[name]  # this soak's store only, for the SDK and the server alike
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", 10)))
    parser.add_argument("--batches", type=int, default=200, help="batches per client")
    parser.add_argument("--points", type=int, default=100, help="metric points per batch")
    parser.add_argument(
        "--db",
        default=None,
        help="a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/postgres): "
        "the run uses a throwaway database there; default SQLite in a temporary home",
    )
    args = parser.parse_args()
    if args.points % len(KEYS):
        parser.error(f"--points must be a multiple of {len(KEYS)} (the metric keys)")
    sys.exit(soak(args))


def soak(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="modelyard-soak-tracking-"))
    home = workdir / "home"
    try:
        with throwaway_database(args.db) as db_url:
            step(f"a store on {'SQLite' if db_url is None else 'PostgreSQL'}: migrating")
            admin_key = prepare(home, db_url)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            step("starting modelyard server")
            process = server(home, port, db_url)
            try:
                with my.connect(url, api_key=admin_key, home=workdir / "admin") as yard:
                    keys = []
                    for number in range(args.clients):
                        yard.admin.create_user(f"soak-client-{number}", "contributor")
                        keys.append(yard.admin.create_key(f"soak-client-{number}")[1])
                    step(f"{args.clients} clients logging")
                    logged, seconds = log_all(url, keys, workdir, args)
                    step("reading every point back")
                    found: Counter[str] = Counter()
                    for result in logged:
                        found += read_back(yard, result, args.batches, args.points)
                step("stopping the server")
            finally:
                process.terminate()
                process.wait(timeout=30)
            store = "SQLite" if db_url is None else "PostgreSQL"
            return report(args, store, logged, seconds, found)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def log_all(
    url: str, keys: list[str], workdir: Path, args: argparse.Namespace
) -> tuple[list[Logged], float]:
    """Every client at once, each in its own process; (results, seconds from the first
    batch sent to the last answered)."""
    clients = [
        Client(n, url, key, str(workdir / f"client-{n}"), args.batches, args.points)
        for n, key in enumerate(keys)
    ]
    logged: list[Logged] = run_together(run_client, clients, CLIENT_TIMEOUT)
    seconds = max(r.finished for r in logged) - min(r.started for r in logged)
    return logged, seconds


def report(
    args: argparse.Namespace,
    store: str,
    logged: list[Logged],
    seconds: float,
    found: Counter[str],
) -> int:
    sent = args.clients * args.batches * args.points
    failed = sum(result.batches_failed for result in logged)
    requests = args.clients * args.batches
    params = args.clients * args.batches
    print(
        f"\ntracking soak: {args.clients} clients x {args.batches} batches x {args.points} "
        f"points through modelyard server ({store})"
    )
    print(
        f"  throughput   {sent / seconds:,.0f} points/s, {requests / seconds:,.0f} batches/s "
        f"over {seconds:.1f} s"
    )
    rows = [
        ("failed batch requests", f"{failed} of {requests}", failed == 0),
        ("points stored = sent", f"{found['stored']} of {sent}", found["stored"] == sent),
        ("points missing", str(found["missing"]), found["missing"] == 0),
        ("points stored twice", str(found["duplicates"]), found["duplicates"] == 0),
        ("points with a wrong value", str(found["wrong"]), found["wrong"] == 0),
        (
            "params stored = sent",
            f"{found['params stored']} of {params}",
            found["params stored"] == params,
        ),
        ("params with a wrong value", str(found["params wrong"]), found["params wrong"] == 0),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"\n  {'check':<{width}}  {'result':<6}  figure")
    for name, figure, passed in rows:
        print(f"  {name:<{width}}  {'ok' if passed else 'FAIL':<6}  {figure}")
    for error in sorted({e for result in logged for e in result.errors})[:5]:
        print(f"  error: {error}")
    if all(passed for _, _, passed in rows):
        print("\ntracking soak passed")
        return 0
    print("\ntracking soak FAILED")
    return 1


if __name__ == "__main__":
    main()
