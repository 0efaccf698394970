"""The database layer: engine settings, UTC timestamps, constraints, migrations, counters."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from hms_app.db import engine as db_engine
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.migrate import alembic_config, upgrade
from hms_app.db.models import Counter, DoctorProfile, Notification, User
from hms_app.db.types import UTCDateTime, utcnow
from hms_app.services.core import counters

pytestmark = pytest.mark.db


def _sqlite_only(engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")


def _add_user(engine, email="someone@hms.example") -> int:
    with session_scope(engine=engine) as s:
        user = User(email=email, full_name="Some One", role=Role.LAB, password_hash="x")
        s.add(user)
        s.commit()
        return user.id


def test_utcnow_is_aware_utc():
    now = utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_timestamps_come_back_in_utc_whatever_zone_went_in(engine):
    user_id = _add_user(engine)
    plus_five = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    with session_scope(engine=engine) as s:
        s.add(Notification(user_id=user_id, title="t", created_at=plus_five))
        s.commit()
    with session_scope(write=False, engine=engine) as s:
        stored = s.execute(sa.select(Notification.created_at)).scalar_one()
    assert stored == plus_five
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == datetime(2026, 3, 1, 7, 30, 15, 123456, tzinfo=UTC)


def test_a_naive_timestamp_is_refused(engine):
    user_id = _add_user(engine)
    with session_scope(engine=engine) as s:
        s.add(Notification(user_id=user_id, title="t", created_at=datetime(2026, 3, 1, 12, 0)))
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            s.flush()


def test_utc_column_type_handles_none():
    column_type = UTCDateTime()
    dialect = sa.create_engine("sqlite://").dialect
    assert column_type.process_bind_param(None, dialect) is None
    assert column_type.process_result_value(None, dialect) is None


def test_comparisons_against_utc_columns_use_the_instant(engine):
    # A filter given in another zone must find the same rows as one given in UTC.
    user_id = _add_user(engine)
    moment = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    with session_scope(engine=engine) as s:
        s.add(Notification(user_id=user_id, title="t", created_at=moment))
        s.commit()
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))  # already the next day there
    with session_scope(write=False, engine=engine) as s:
        count = s.execute(sa.select(sa.func.count()).select_from(Notification)
                          .where(Notification.created_at >= tokyo)).scalar_one()
        later = s.execute(sa.select(sa.func.count()).select_from(Notification)
                          .where(Notification.created_at > tokyo)).scalar_one()
    assert (count, later) == (1, 0)


def test_foreign_keys_are_enforced(engine):
    user_id = _add_user(engine)
    with session_scope(engine=engine) as s:
        s.add(DoctorProfile(user_id=user_id, department_id=424242))
        with pytest.raises(sa.exc.IntegrityError):
            s.flush()


def test_emails_are_unique_in_the_database_too(engine):
    _add_user(engine, "twin@hms.example")
    with pytest.raises(sa.exc.IntegrityError):
        _add_user(engine, "twin@hms.example")


def test_sqlite_runs_with_wal_busy_timeout_foreign_keys_and_full_sync(engine):
    _sqlite_only(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15_000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2, "FULL: a commit survives a power cut"


def test_a_sqlite_writer_takes_the_write_lock_at_the_start(engine):
    _sqlite_only(engine)
    path = engine.url.database

    def other_writer_can_begin() -> bool:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()

    with session_scope(engine=engine) as s:
        s.execute(sa.select(User.id)).all()  # only a read so far...
        assert not other_writer_can_begin()  # ...yet the write lock is held
    assert other_writer_can_begin()
    with session_scope(write=False, engine=engine) as s:
        s.execute(sa.select(User.id)).all()
        assert other_writer_can_begin()  # a reader does not block writers


def test_session_scope_uses_the_process_wide_engine(engine):
    assert db_engine.get_engine() is engine
    _add_user(engine)
    with session_scope(write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() == 1


def test_session_scope_rolls_back_when_the_block_raises(engine):
    with pytest.raises(RuntimeError), session_scope(engine=engine) as s:  # noqa: PT012
        s.add(User(email="ghost@hms.example", full_name="Ghost", role=Role.LAB, password_hash="x"))
        s.flush()
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() == 0


def test_the_migrations_match_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrations_downgrade_to_nothing_and_back(database_url):
    eng = db_engine.create_engine(database_url)
    try:
        command.downgrade(alembic_config(database_url), "base")
        with eng.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        upgrade(database_url)
        with eng.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"user", "auth_session", "audit_event", "role_permission", "counter"} <= tables
    finally:
        eng.dispose()


def test_counters_are_gap_free_and_independent(engine):
    with session_scope(engine=engine) as s:
        assert [counters.next_value(s, "a") for _ in range(3)] == [1, 2, 3]
        assert counters.next_value(s, "b") == 1
        s.commit()
    with session_scope(engine=engine) as s:
        assert counters.next_mrn(s) == "MRN-000001"
        s.rollback()
    with session_scope(engine=engine) as s:
        assert counters.next_mrn(s) == "MRN-000001"  # a rolled-back number is given out again
        assert counters.next_value(s, "a") == 4
        s.commit()
    with engine.connect() as conn:
        assert dict(conn.execute(sa.select(Counter.name, Counter.value)).all()) == {"a": 4, "b": 1, "mrn": 1}
