"""The PostgreSQL server around the database: create the database, and size each worker's pool.

PostgreSQL refuses a connection once ``max_connections`` are open, counted over the whole
server, and keeps ``superuser_reserved_connections`` (and, from version 16,
``reserved_connections``) of them for privileged roles. Every backend worker has its own
SQLAlchemy pool: ``pool_size`` connections kept open plus as many again (``max_overflow``)
in a burst. So the workers together may open ``workers × 2 × pool_size`` connections, and
the rule is::

    workers × (pool_size + max_overflow) + headroom ≤ max_connections − reserved

where ``headroom`` (``HMS_DB_HEADROOM``) is left for migrations, ``hms`` commands, psql,
backups and tests. Each worker therefore takes

    pool_size = min(HMS_DB_POOL_SIZE, ⌊(max_connections − reserved − headroom) / (2 × workers)⌋)

and the app refuses to start when that is below 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

_LIMIT_SETTINGS = ("max_connections", "superuser_reserved_connections", "reserved_connections")


class ConnectionBudgetExceeded(RuntimeError):
    """The workers cannot each have even one pooled connection under the server's limit."""


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int
    reserved: int
    """Connections only privileged roles may open (superuser and, on 16+, reserved ones)."""

    @property
    def usable(self) -> int:
        return self.max_connections - self.reserved


@dataclass(frozen=True)
class PoolPlan:
    """The pool each worker gets, and the sum that stays under the server's limit."""

    workers: int
    pool_size: int
    requested_pool_size: int
    headroom: int
    limits: ServerLimits

    @property
    def max_overflow(self) -> int:
        return self.pool_size

    @property
    def per_worker(self) -> int:
        return self.pool_size + self.max_overflow

    @property
    def total(self) -> int:
        """Connections the workers may hold at most, plus the headroom."""
        return self.workers * self.per_worker + self.headroom

    @property
    def shrunk(self) -> bool:
        return self.pool_size < self.requested_pool_size

    def describe(self) -> str:
        return (
            f"{self.workers} worker(s) × ({self.pool_size} pooled + {self.max_overflow} overflow) "
            f"+ {self.headroom} headroom = {self.total} of the {self.limits.usable} connections PostgreSQL allows "
            f"(max_connections {self.limits.max_connections} − {self.limits.reserved} reserved)"
        )


def plan_pool(*, limits: ServerLimits, workers: int, pool_size: int, headroom: int) -> PoolPlan:
    """The largest pool up to ``pool_size`` that lets ``workers`` pools and the headroom fit.

    Raises:
        ConnectionBudgetExceeded: not even a pool of one (plus one overflow) per worker fits.
        ValueError: a count below 1 (workers, pool size) or a negative headroom.
    """
    if workers < 1 or pool_size < 1 or headroom < 0:
        raise ValueError("workers and pool size must be at least 1, headroom at least 0")
    fits = (limits.usable - headroom) // (2 * workers)
    if fits < 1:
        raise ConnectionBudgetExceeded(
            f"{workers} worker(s) need at least {2 * workers} PostgreSQL connections (a pool of 1 and 1 overflow "
            f"each) plus {headroom} headroom, but the server allows {limits.usable} "
            f"(max_connections {limits.max_connections} − {limits.reserved} reserved). "
            "Lower HMS_WORKERS or HMS_DB_HEADROOM, or raise max_connections in postgresql.conf."
        )
    return PoolPlan(workers=workers, pool_size=min(pool_size, fits), requested_pool_size=pool_size,
                    headroom=headroom, limits=limits)


def is_postgres(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "postgresql"


def server_limits(url: str) -> ServerLimits:
    """Ask the server at ``url`` for its connection limit, on one short-lived connection."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(
                sa.text("SELECT name, setting FROM pg_settings WHERE name = ANY(:names)"),
                {"names": list(_LIMIT_SETTINGS)},
            ).all())
    finally:
        engine.dispose()
    return ServerLimits(
        max_connections=int(rows["max_connections"]),
        reserved=int(rows.get("superuser_reserved_connections", 0)) + int(rows.get("reserved_connections", 0)),
    )


def create_database(url: str, *, maintenance_database: str = "postgres") -> bool:
    """Create the database named in ``url`` if the server does not have it; True if created.

    Connects to ``maintenance_database`` on the same server with the same credentials.
    """
    target = sa.make_url(url)
    name = target.database
    if not name:
        raise ValueError("the database URL names no database")
    engine = sa.create_engine(target.set(database=maintenance_database), poolclass=sa.pool.NullPool,
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first():
                return False
            conn.exec_driver_sql(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote_identifier(name)}")
            return True
    finally:
        engine.dispose()
