"""The audit append under concurrent writers, on PostgreSQL: one global chain against lanes.

Each writer is a thread with a session of its own per transaction, as a handler's worker thread
has. A transaction is a small audited write, as most of the hospital's are: it inserts a
notification for a demo user, appends its audit row with ``audit.record`` and commits. The
writers run for a fixed time; the figures are transactions per second over all of them and the
95th percentile of one transaction's time.

Two modes run in the same run, interleaved per thread count so drift in the machine's load
weighs on both alike:

- ``global``: ``settings.AUDIT_LANES = 1``, one hash chain behind one advisory lock, which is
  the audit append as it was before issue 18 (every audited write in the hospital one at a time);
- ``lanes``: ``settings.AUDIT_LANES`` chains (``HMS_AUDIT_LANES``, default 16), each behind
  its own lock, a transaction taking a free one.

After each run the whole trail is verified (``audit.verify_chain``).

    .venv/bin/python -m bench.audit_append --threads 1,4,16,32 --seconds 5
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from bench.harness import machine_note, percentile, postgres_database, table
from hms_app import settings
from hms_app.db import engine as db_engine
from hms_app.db.migrate import upgrade
from hms_app.db.models import Notification, User
from hms_app.operations import demo
from hms_app.services.core import audit

MODES = ("global", "lanes")


@dataclass
class Run:
    mode: str
    threads: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    chain_ok: bool = False

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def _audited_write(engine: sa.Engine, user_id: int, n: int) -> None:
    with db_engine.session_scope(engine=engine) as session:
        note = Notification(user_id=user_id, title=f"Bench note {n}", body="A result is ready.", link="/lab")
        session.add(note)
        session.flush()
        audit.record(session, None, "bench.notify", entity_type="notification", entity_id=note.id,
                     actor_email="bench@hospital.example", detail="bench")
        session.commit()


def run(engine: sa.Engine, mode: str, threads: int, seconds: float, lanes: int, user_ids: list[int]) -> Run:
    settings.AUDIT_LANES = 1 if mode == "global" else lanes
    result = Run(mode, threads)
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()

    def writer(index: int) -> None:
        mine: list[float] = []
        barrier.wait()
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            _audited_write(engine, user_ids[index % len(user_ids)], n)
            mine.append(time.perf_counter() - t0)
            n += 1
        with lock:
            result.latencies.extend(mine)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    result.seconds = time.perf_counter() - t0
    with db_engine.session_scope(engine=engine, write=False) as session:
        result.chain_ok = audit.verify_chain(session).ok
    return result


def report(runs: list[Run]) -> str:
    by = {(r.mode, r.threads): r for r in runs}
    rows = []
    for threads in sorted({r.threads for r in runs}):
        old, new = by.get(("global", threads)), by.get(("lanes", threads))
        cells: list[object] = [threads]
        for r in (old, new):
            cells += ["–", "–"] if r is None else [f"{r.per_second:.0f}", f"{percentile(r.latencies, 0.95) * 1000:.1f}"]
        cells.append(f"{new.per_second / old.per_second:.2f}" if old and new and old.per_second else "–")
        cells.append("yes" if all(r.chain_ok for r in (old, new) if r) else "NO")
        rows.append(cells)
    return table(["writers", "global: tx/s", "global: p95 ms", "lanes: tx/s", "lanes: p95 ms", "lanes / global",
                  "chain verifies"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,4,16,32", help="writer counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each run writes")
    parser.add_argument("--lanes", type=int, default=settings.AUDIT_LANES, help="chains in the lanes mode")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",") if t.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    runs = []
    with postgres_database() as url:
        upgrade(url)
        engine = db_engine.create_engine(url, pool_size=max(counts) + 2)
        try:
            with db_engine.session_scope(engine=engine) as session:
                demo.seed_demo(session, billing_history=False, work_in_progress=False)
            with engine.connect() as conn:
                user_ids = list(conn.execute(sa.select(User.id).order_by(User.id)).scalars())
            for threads in counts:
                for mode in modes:
                    runs.append(run(engine, mode, threads, args.seconds, args.lanes, user_ids))
                    r = runs[-1]
                    print(f"# {mode}, {threads} writers: {r.per_second:.0f} tx/s, "
                          f"p95 {percentile(r.latencies, 0.95) * 1000:.1f} ms, chain ok: {r.chain_ok}", flush=True)
        finally:
            engine.dispose()
    print(report(runs))
    print(f"\nPostgreSQL; lanes mode: {args.lanes} lanes. {machine_note()}")
    if not all(r.chain_ok for r in runs):
        raise SystemExit("the audit chain did not verify after a run: see above")


if __name__ == "__main__":
    main()
