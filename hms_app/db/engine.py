"""The engine and the session factory.

SQLite runs with WAL, a busy timeout and foreign keys on. A session opened for writing
takes SQLite's write lock at the start of its transaction (``BEGIN IMMEDIATE``), so
concurrent writers queue on the busy timeout instead of failing half-way when a read
lock cannot be upgraded. PostgreSQL is selected with ``HMS_DATABASE_URL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings

_engine: sa.Engine | None = None
_WRITE_OPTION = "hms_write"


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_engine(url: str) -> sa.Engine:
    """Build an engine for ``url`` with the project's connection settings."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": settings.SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        parsed,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_POOL_SIZE,
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
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def get_engine() -> sa.Engine:
    """The process-wide engine for ``settings.DATABASE_URL``."""
    global _engine
    if _engine is None:
        _engine = create_engine(settings.DATABASE_URL)
    return _engine


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
