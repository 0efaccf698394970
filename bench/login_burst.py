"""A burst of logins on SQLite, and what it does to everybody else's writes.

In this process, on a SQLite database with the demo hospital: threads log in (bcrypt at the
production cost, 12) a few at a time, as many tabs do when a shift starts, while another thread
makes a short write every 20 ms, as the rest of the hospital does. Prints how long the logins
took and how many failed, and how long the other writes waited. SQLite has one writer at a
time, so a login that held its transaction open over the password check would hold every other
write for that long.

    .venv/bin/python -m bench.login_burst --logins 24 --at-once 8
"""

from __future__ import annotations

import os
import tempfile

# Before the app's settings are read: a data folder of the run's own.
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from bench.harness import DEMO_PASSWORD, demo_sqlite, machine_note, percentile, table
from hms_app import settings
from hms_app.db import engine as db_engine
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous


def measure(logins: int, at_once: int) -> dict[str, float]:
    engine = demo_sqlite("hms-bench-logins-", billing_history=False)
    with engine.connect() as conn:
        emails = list(conn.execute(sa.text("SELECT email FROM \"user\" WHERE role = 'patient' ORDER BY id")).scalars())
    stop = threading.Event()
    waits: list[float] = []
    failed = {"logins": 0, "writes": 0}

    def other_writes() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                with db_engine.session_scope() as session:
                    session.execute(sa.text("UPDATE department SET name = name WHERE id = 1"))
                    session.commit()
                waits.append(time.perf_counter() - started)
            except sa.exc.OperationalError:
                failed["writes"] += 1
            time.sleep(0.02)

    def log_in(i: int) -> None:
        try:
            with db_engine.session_scope() as session:
                auth.login(session=session, visitor=Anonymous("198.51.100.10"), email=emails[i % len(emails)],
                           password=DEMO_PASSWORD)
        except sa.exc.OperationalError:
            failed["logins"] += 1

    writer = threading.Thread(target=other_writes, daemon=True)
    writer.start()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(at_once) as pool:
            list(pool.map(log_in, range(logins)))
    finally:
        stop.set()
    seconds = time.perf_counter() - started
    writer.join()
    engine.dispose()
    return {"seconds": seconds, "failed logins": failed["logins"], "writes": len(waits),
            "p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95), "max": max(waits, default=float("nan")),
            "failed writes": failed["writes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=24)
    parser.add_argument("--at-once", type=int, default=8)
    args = parser.parse_args()
    r = measure(args.logins, args.at_once)
    print(table(("logins", "at once", "bcrypt cost", "seconds", "failed logins", "other writes", "their wait p50 / p95 / max ms",
                 "failed writes"),
                [(args.logins, args.at_once, settings.BCRYPT_ROUNDS, f"{r['seconds']:.1f}", r["failed logins"], r["writes"],
                  f"{1000 * r['p50']:.0f} / {1000 * r['p95']:.0f} / {1000 * r['max']:.0f}", r["failed writes"])]))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
