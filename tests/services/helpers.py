"""Helpers shared by the service tests: tokens, audit rows and "nothing changed" checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.models import AuditEvent
from hms_app.operations import demo
from hms_app.services.administration import auth
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import PermissionDenied

IP = "203.0.113.9"
STRONG_PASSWORD = "Correct-Horse-Battery-9"
THROTTLE_SETTINGS = ("THROTTLE_LOGIN", "THROTTLE_REGISTER", "THROTTLE_PASSWORD", "THROTTLE_API")


def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits per address no test of this kind reaches, for tests whose own traffic from one address
    is far beyond a person's (``tests/services/test_throttle.py`` tests the limits)."""
    for name in THROTTLE_SETTINGS:
        monkeypatch.setattr(settings, name, settings.ThrottleLimit(1_000_000, 3600, 1))


def login_token(engine: sa.Engine, email: str, password: str = demo.DEMO_PASSWORD, ip: str = IP) -> str:
    """Log in through the service and return the raw session token."""
    with session_scope(engine=engine) as s:
        return auth.login(session=s, visitor=Anonymous(ip), email=email, password=password).token


def resolve(engine: sa.Engine, token: str, ip: str = IP) -> Actor:
    with session_scope(engine=engine) as s:
        return auth.resolve_session(session=s, token=token, ip_address=ip)


def audit_events(engine: sa.Engine, *, action: str | None = None, outcome: str | None = None,
                 after_id: int = 0) -> list[AuditEvent]:
    query = sa.select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(query).scalars())


def last_audit_id(engine: sa.Engine) -> int:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one() or 0


_schemas: dict[tuple, sa.MetaData] = {}


def _schema_fingerprint(conn: sa.Connection) -> tuple:
    """What the reflection depends on, read in one query: every test's database is a copy of
    the same migrated template, so reflecting it once per schema (not per database) is enough."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all()
    else:
        rows = conn.exec_driver_sql(
            "SELECT c.table_name, c.column_name, c.data_type, c.ordinal_position, k.constraint_name "
            "FROM information_schema.columns c LEFT JOIN information_schema.key_column_usage k "
            "ON k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.column_name = c.column_name "
            "AND k.constraint_name IN (SELECT constraint_name FROM information_schema.table_constraints "
            "WHERE constraint_type = 'PRIMARY KEY' AND table_schema = current_schema()) "
            "WHERE c.table_schema = current_schema() ORDER BY 1, 4"
        ).all()
    return (conn.dialect.name, *(tuple(row) for row in rows))


def _reflected(conn: sa.Connection) -> sa.MetaData:
    """The tables the migrations made (not the models: these may run ahead of them)."""
    key = _schema_fingerprint(conn)
    if key not in _schemas:
        metadata = sa.MetaData()
        metadata.reflect(conn)
        _schemas[key] = metadata
    return _schemas[key]


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table in the database except the audit trail and the counts of failed
    attempts per address (``throttle``), which record a refusal as the trail does, in a stable order."""
    tables = {}
    with engine.connect() as conn:
        for table in _reflected(conn).sorted_tables:
            if table.name in {"audit_event", "alembic_version", "throttle"}:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(sa.select(table).order_by(*order)).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables


def table_count(engine: sa.Engine, table: type[SQLModel]) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def assert_refused(
    engine: sa.Engine,
    actor: Actor | None,
    action: str,
    call: Callable[..., Any],
    *,
    error: type[Exception] = PermissionDenied,
    outcome: str = "denied",
) -> Exception:
    """Run ``call(session)``: it must raise ``error``, change no table and leave one audit row."""
    before = snapshot(engine)
    after_id = last_audit_id(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        call(s)
    assert snapshot(engine) == before, "a refused call changed the database"
    new = audit_events(engine, after_id=after_id)
    assert [(e.action, str(e.outcome)) for e in new] == [(action, outcome)]
    assert new[0].actor_id == (actor.user_id if isinstance(actor, Actor) else None)
    return raised.value
