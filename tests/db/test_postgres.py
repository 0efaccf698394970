"""Pool sizing: every worker's pool plus the headroom stays under PostgreSQL's connection limit."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db import engine as db_engine
from hms_app.db import postgres
from hms_app.db.postgres import ConnectionBudgetExceeded, ServerLimits, plan_pool

DEFAULT_SERVER = ServerLimits(max_connections=100, reserved=3)


def test_four_workers_keep_the_configured_pool_on_a_default_server():
    plan = plan_pool(limits=DEFAULT_SERVER, workers=4, pool_size=5, headroom=10)

    assert (plan.pool_size, plan.max_overflow, plan.shrunk) == (5, 5, False)
    assert plan.total == 4 * (5 + 5) + 10 == 50
    assert "= 50 of the 97 connections" in plan.describe()


def test_the_pool_shrinks_until_every_worker_fits():
    plan = plan_pool(limits=DEFAULT_SERVER, workers=9, pool_size=5, headroom=10)

    # (100 - 3 - 10) // (2 * 9) = 4 per worker: 9 * 8 + 10 = 82 of 97.
    assert (plan.pool_size, plan.requested_pool_size, plan.shrunk) == (4, 5, True)
    assert plan.total == 82


def test_refuses_when_not_even_one_connection_each_fits():
    with pytest.raises(ConnectionBudgetExceeded) as refused:
        plan_pool(limits=DEFAULT_SERVER, workers=44, pool_size=5, headroom=10)

    assert "Lower HMS_WORKERS" in str(refused.value)
    assert "max_connections 100" in str(refused.value)
    # 43 workers still fit: 43 * 2 + 10 = 96 of 97.
    assert plan_pool(limits=DEFAULT_SERVER, workers=43, pool_size=5, headroom=10).total == 96


@pytest.mark.parametrize(("workers", "pool_size", "headroom"), [(0, 5, 10), (2, 0, 10), (2, 5, -1)])
def test_rejects_counts_that_make_no_sense(workers, pool_size, headroom):
    with pytest.raises(ValueError):
        plan_pool(limits=DEFAULT_SERVER, workers=workers, pool_size=pool_size, headroom=headroom)


def test_the_rule_holds_for_every_combination():
    for max_connections, reserved, workers, pool_size, headroom in itertools.product(
        (20, 100, 500), (0, 3, 6), range(1, 17), (1, 3, 5, 20), (0, 10, 25)
    ):
        limits = ServerLimits(max_connections=max_connections, reserved=reserved)
        try:
            plan = plan_pool(limits=limits, workers=workers, pool_size=pool_size, headroom=headroom)
        except ConnectionBudgetExceeded:
            assert workers * 2 + headroom > max_connections - reserved
            continue
        assert workers * (plan.pool_size + plan.max_overflow) + headroom <= max_connections - reserved
        assert 1 <= plan.pool_size <= pool_size
        # As large as fits: one more each would break the limit, or was not asked for.
        assert plan.pool_size == pool_size or workers * 2 * (plan.pool_size + 1) + headroom > limits.usable


@pytest.mark.db
def test_the_process_engine_takes_the_planned_pool_on_postgres(database_url, monkeypatch):
    if not postgres.is_postgres(database_url):
        pytest.skip("PostgreSQL only (make test-postgres)")
    limits = postgres.server_limits(database_url)
    assert limits.max_connections > limits.reserved >= 0
    workers = (limits.usable - settings.DB_HEADROOM) // 6  # room for a pool of 3 each, not 5
    monkeypatch.setattr(settings, "DATABASE_URL", database_url)
    monkeypatch.setattr(settings, "WORKERS", workers)
    db_engine.use_engine(None)
    try:
        engine = db_engine.get_engine()
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 3)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        db_engine.use_engine(None)


@pytest.mark.db
def test_createdb_creates_a_missing_database_once(database_url):
    if not postgres.is_postgres(database_url):
        pytest.skip("PostgreSQL only (make test-postgres)")
    url = sa.make_url(database_url)
    fresh = url.set(database=f"{url.database}_created")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        assert postgres.create_database(fresh.render_as_string(hide_password=False)) is True
        assert postgres.create_database(fresh.render_as_string(hide_password=False)) is False
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{fresh.database}" WITH (FORCE)')
        admin.dispose()
