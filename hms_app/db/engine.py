"""The engine and the session factory.

SQLite runs with WAL, a busy timeout, foreign keys on and ``synchronous=FULL``. A session opened for writing
takes SQLite's write lock at the start of its transaction (``BEGIN IMMEDIATE``), so
concurrent writers queue on the busy timeout instead of failing half-way when a read
lock cannot be upgraded. PostgreSQL is selected with ``HMS_DATABASE_URL``; there the
process-wide engine's pool is sized so that every worker's pool fits under the server's
``max_connections`` (``hms_app/db/postgres.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db import postgres, storage

log = logging.getLogger(__name__)
_engine: sa.Engine | None = None
_WRITE_OPTION = "hms_write"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database at ``url``; None for PostgreSQL or memory."""
    return _sqlite_path(sa.make_url(url))


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_engine(url: str, *, pool_size: int | None = None) -> sa.Engine:
    """Build an engine for ``url`` with the project's connection settings.

    Args:
        url: the SQLAlchemy URL.
        pool_size: connections kept open on a server database, and as many again in a
            burst; ``settings.DB_POOL_SIZE`` unless given.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            storage.private_file(path)  # before SQLite opens it: its -wal and -shm take its mode
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": settings.SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _configure_sqlite(engine)
        return engine
    pool_size = pool_size or settings.DB_POOL_SIZE
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Leave transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={settings.SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL syncs the write-ahead log at every commit, so a write the app acknowledged survives
        # a power cut or an OS crash too; NORMAL survives only a crash of the app (the last commits
        # before a power cut could be lost). One fsync per write transaction, about 5 ms here.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def begin_write(session: Session) -> None:
    """Start the session's next transaction holding the write lock (SQLite: ``BEGIN IMMEDIATE``).

    For work that began as a read and must now write, such as recording a refusal: on SQLite a
    transaction that began by reading cannot write once another connection has committed since
    (it fails at once, "database is locked"), while one that takes the lock first waits its turn
    on the busy timeout. Call it with no transaction open, after a commit or a rollback.
    """
    session.connection(execution_options={_WRITE_OPTION: True})


def get_engine() -> sa.Engine:
    """The process-wide engine for ``settings.DATABASE_URL``.

    Raises:
        postgres.ConnectionBudgetExceeded: the workers cannot all have a pool on PostgreSQL.
    """
    global _engine
    if _engine is None:
        pool_size = worker_pool_plan().pool_size if postgres.is_postgres(settings.DATABASE_URL) else None
        _engine = create_engine(settings.DATABASE_URL, pool_size=pool_size)
        for line in storage.wide_permissions(sqlite_file(settings.DATABASE_URL)):
            log.warning("data folder: %s", line)
    return _engine


def worker_pool_plan() -> postgres.PoolPlan:
    """This worker's pool on PostgreSQL: ``settings.DB_POOL_SIZE``, shrunk if the server's
    ``max_connections`` cannot hold that many for ``settings.WORKERS`` workers and the headroom."""
    plan = postgres.plan_pool(limits=postgres.server_limits(settings.DATABASE_URL), workers=settings.WORKERS,
                              pool_size=settings.DB_POOL_SIZE, headroom=settings.DB_HEADROOM)
    if plan.shrunk:
        log.warning("database pool shrunk from %d to %d per worker to fit: %s",
                    plan.requested_pool_size, plan.pool_size, plan.describe())
    return plan


def use_engine(engine: sa.Engine | None) -> None:
    """Replace the process-wide engine (tests and commands that target another database)."""
    global _engine
    if _engine is not None and _engine is not engine:
        _engine.dispose()
    _engine = engine


@contextmanager
def session_scope(*, write: bool = True, engine: sa.Engine | None = None) -> Iterator[Session]:
    """A session for one unit of work; rolled back if the block raises.

    Args:
        write: take the database's write lock at the start (SQLite) because the work writes.
        engine: another engine than the process-wide one.
    """
    bind = engine or get_engine()
    if write:
        bind = bind.execution_options(**{_WRITE_OPTION: True})
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
