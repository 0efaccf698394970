"""What the benchmarks share: the two deployments they start, the server's processes, percentiles.

The two deployments are the two ways HMS runs (README, "Running" and "Scaling out"):

- ``one``: one backend worker, SQLite, Reflex's state in memory (``make run``);
- ``two``: two backend workers on PostgreSQL, Reflex's state and the live hub in Redis
  (``make run-scaled HMS_WORKERS=2``), on a PostgreSQL database created for the run and
  dropped afterwards.

Each is the real app started by ``tests.e2e.server.start_app`` on a free port with its own
data folder and the demo hospital loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.e2e.server import AppServer, start_app

POSTGRES_SERVER_URL = os.environ.get("HMS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LOG_DIR = Path(tempfile.gettempdir()) / "hms-bench-logs"
DEMO_PASSWORD = "Demo-Hospital-2026"  # noqa: S105  (published in the README on purpose)


@dataclass(frozen=True)
class Setup:
    """One way of running the app."""

    key: str
    label: str
    workers: int
    postgres: bool
    redis: bool


SETUPS = {
    "one": Setup("one", "one worker, SQLite, state in memory", 1, postgres=False, redis=False),
    "two": Setup("two", "two workers, PostgreSQL, state in Redis", 2, postgres=True, redis=True),
}


def setups_of(keys: str) -> list[Setup]:
    """``"one,two"`` → the setups, in that order."""
    return [SETUPS[k.strip()] for k in keys.split(",") if k.strip()]


@contextlib.contextmanager
def postgres_database(server_url: str = POSTGRES_SERVER_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run; dropped afterwards, whatever happens."""
    name = f"hms_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextlib.contextmanager
def running_app(setup: Setup, extra_env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """The real app in ``setup``, with the demo hospital; stopped and its folder removed afterwards."""
    with contextlib.ExitStack() as stack:
        env = {"HMS_WORKERS": str(setup.workers)}
        if setup.postgres:
            env["HMS_DATABASE_URL"] = stack.enter_context(postgres_database())
        if setup.redis:
            env["REFLEX_REDIS_URL"] = REDIS_URL
        data_dir = Path(tempfile.mkdtemp(prefix="hms-bench-"))
        LOG_DIR.mkdir(exist_ok=True)
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        server = start_app(data_dir, extra_env={**env, **(extra_env or {})})
        # The server's log outlives its folder, for a look at any errors the figures counted.
        stack.callback(shutil.copyfile, server.log_path, LOG_DIR / f"{setup.key}-{os.getpid()}.log")
        stack.callback(server.stop)
        try:
            yield server
        except BaseException:
            print(f"--- the end of the server's log ({server.log_path}):\n{server.log_path.read_text()[-6000:]}",
                  file=sys.stderr)
            raise


def demo_sqlite(prefix: str, *, billing_history: bool) -> sa.Engine:
    """A new SQLite database in a temporary folder of its own, migrated and holding the demo
    hospital, made the app's engine: for benchmarks that call the services in their own process."""
    from hms_app.db import engine as db_engine
    from hms_app.db.migrate import upgrade
    from hms_app.operations import demo

    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix=prefix)) / 'hms.db'}"
    upgrade(url)
    engine = db_engine.create_engine(url)
    db_engine.use_engine(engine)
    with db_engine.session_scope() as session:
        demo.seed_demo(session, billing_history=billing_history)
    return engine


# --- the server's processes, from /proc ----------------------------------------------------


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def worker_pids(server: AppServer) -> list[int]:
    """The backend worker processes: the processes under ``reflex run`` that have no children.

    ``reflex run --env prod`` serves both the compiled front end and the backend from granian,
    whose workers are child processes of the ``reflex run`` process (one per ``HMS_WORKERS``).
    """
    assert server.process is not None
    children = _children()
    return [p for p in process_tree(server.process.pid) if p != server.process.pid and not children.get(p)]


def rss_mb(pids: Sequence[int]) -> float:
    """Resident memory of ``pids`` together, in MB (VmRSS from /proc/<pid>/status)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time that ``pids`` have used so far, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest rank, as bench/live_delay.py takes p95."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_note() -> str:
    """The machine's CPUs and load, printed under each benchmark's table: the figures are only
    comparable with others taken under a similar load."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs; load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) at the end"
