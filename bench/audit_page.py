"""The admin's audit page on a trail of scale 1's size: keyset pages against the count and OFFSET of before.

A migrated database of each kind given gets ``--rows`` audit rows (default 3,000,000, the scale-1
trail) written by one INSERT … SELECT: times a second apart, 500 actors, four actions, 100,000
patients. Only ``audit_event`` is filled, so this takes a minute where ``hms seed --scale 1``
takes ten; the rows' hashes are placeholders (the page never reads the chain). Then, alternately,
``--runs`` times each after a warm-up, medians of:

- ``before``: what the page did until issue 18, by hand-written SQL: count the filtered trail,
  then the page by ``ORDER BY id DESC LIMIT 25 OFFSET …``;
- the newest page by hand-written SQL, keyset style (the page and one row more, no count);
- the service (``audit_trail.search_audit``) as the page now calls it, with the permission
  check, the rows shown in the hospital's time and the trail's labelled size: the newest page,
  then the next older page (by the oldest id shown), and the newest page of one actor.

    .venv/bin/python -m bench.audit_page --databases sqlite,postgresql --runs 15
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from bench.harness import machine_note, postgres_database, table
from hms_app.db import engine as db_engine
from hms_app.db.enums import Permission, Role
from hms_app.db.migrate import upgrade
from hms_app.operations import demo
from hms_app.services.administration import audit_trail
from hms_app.services.core.actor import Actor

_FILL = {
    "postgresql": """
        INSERT INTO audit_event (occurred_at, actor_id, actor_email, action, entity_type, entity_id, patient_id,
                                 ip_address, outcome, detail, prev_hash, row_hash, lane)
        SELECT now() - (:rows - g) * interval '1 second', 1000 + g % 500, 'staff' || (g % 500) || '@hms.example',
               (ARRAY['login.success', 'chart.view', 'appointment.book', 'lab.result'])[1 + g % 4], 'record',
               g::text, 100000 + g % 100000, '10.20.0.1', 'success', '', repeat('0', 64),
               md5(g::text) || md5((-g)::text), 0
        FROM generate_series(1, :rows) AS g""",
    "sqlite": """
        WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < :rows)
        INSERT INTO audit_event (occurred_at, actor_id, actor_email, action, entity_type, entity_id, patient_id,
                                 ip_address, outcome, detail, prev_hash, row_hash, lane)
        SELECT datetime('now', '-' || (:rows - g) || ' seconds'), 1000 + g % 500, 'staff' || (g % 500) || '@hms.example',
               CASE g % 4 WHEN 0 THEN 'login.success' WHEN 1 THEN 'chart.view' WHEN 2 THEN 'appointment.book'
                          ELSE 'lab.result' END, 'record',
               CAST(g AS TEXT), 100000 + g % 100000, '10.20.0.1', 'success', '', printf('%064d', 0),
               printf('%064d', g), 0
        FROM n""",
}


@contextlib.contextmanager
def trail_database(kind: str, rows: int) -> Iterator[sa.Engine]:
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='hms-bench-audit-')) / 'hms.db'}"
        else:
            url = stack.enter_context(postgres_database())
        upgrade(url)
        engine = db_engine.create_engine(url)
        stack.callback(engine.dispose)
        with db_engine.session_scope(engine=engine) as session:
            demo.seed_demo(session, billing_history=False, work_in_progress=False)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(_FILL[kind]), {"rows": rows})
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE audit_event")
        print(f"# {kind}: {rows:,} audit rows in {time.perf_counter() - t0:.0f} s", flush=True)
        yield engine


def _admin(engine: sa.Engine) -> Actor:
    """The admin as the page's state has it once its session is resolved: the search is what is
    timed, on both sides, not the session."""
    with engine.connect() as conn:
        user_id = conn.execute(sa.text("SELECT id FROM \"user\" WHERE email = 'admin@hms.example'")).scalar_one()
    return Actor(user_id, Role.ADMIN, "admin@hms.example", "Admin", frozenset({Permission.AUDIT_VIEW.value}))


def _before(engine: sa.Engine, where: str = "", offset: int = 0) -> Callable[[], object]:
    def read():
        with engine.connect() as conn:
            total = conn.execute(sa.text(f"SELECT count(*) FROM audit_event {where}")).scalar_one()  # noqa: S608
            rows = conn.execute(sa.text(
                f"SELECT * FROM audit_event {where} ORDER BY id DESC LIMIT 25 OFFSET {offset}")).all()  # noqa: S608
        return total, rows
    return read


def _keyset_sql(engine: sa.Engine) -> Callable[[], object]:
    def read():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT * FROM audit_event ORDER BY id DESC LIMIT 26")).all()
    return read


def _service(engine: sa.Engine, admin: Actor, filters: audit_trail.AuditFilter, older: bool = False):
    def read():
        with db_engine.session_scope(engine=engine, write=False) as session:
            page = audit_trail.search_audit(session=session, actor=admin, filters=filters, page_size=25)
        if older:
            with db_engine.session_scope(engine=engine, write=False) as session:
                page = audit_trail.search_audit(session=session, actor=admin, filters=filters,
                                                older_than=page.rows[-1].id, page_size=25)
        return page
    return read


def _median_ms(reads: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in reads}
    for read in reads.values():
        read()  # warm-up
    for _ in range(runs):
        for name, read in reads.items():
            t0 = time.perf_counter()
            read()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    lines = []
    for kind in args.databases.split(","):
        with trail_database(kind, args.rows) as engine:
            admin = _admin(engine)
            one_actor = audit_trail.AuditFilter(user="1007")
            medians = _median_ms({
                "before: count + newest page": _before(engine),
                "before: count + 2nd page (OFFSET 25)": _before(engine, offset=25),
                "before: one actor, count + newest page": _before(engine, "WHERE actor_id = 1007"),
                "keyset by hand-written SQL: newest page": _keyset_sql(engine),
                "keyset: newest page": _service(engine, admin, audit_trail.AuditFilter()),
                "keyset: newest then older page": _service(engine, admin, audit_trail.AuditFilter(), older=True),
                "keyset: one actor, newest page": _service(engine, admin, one_actor),
            }, args.runs)
            lines += [[kind, name, f"{ms:.1f}"] for name, ms in medians.items()]
            print(f"# {kind} done", flush=True)
    print(table(["database", "read", "median ms"], lines))
    print(f"\n{args.rows:,} audit rows; {args.runs} runs each. {machine_note()}")


if __name__ == "__main__":
    main()
