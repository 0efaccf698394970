"""Resolving a session in a read-only transaction while other users write.

Page loaders resolve the tab's session in a read-only session (``session_scope(write=False)``)
and refresh its idle clock once a minute. On SQLite a read transaction cannot turn into a write
one once another connection has committed since it began: the refresh failed at once with
"database is locked", and the user saw an error instead of the page. The refresh now runs in a
transaction of its own. These tests make that interleaving certain; they assert outcomes, never
how long anything took.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuthSession, Department
from hms_app.db.types import utcnow
from hms_app.services.administration import auth
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import IP, login_token

pytestmark = pytest.mark.db


def _set_last_seen(engine: sa.Engine, token: str, seconds_ago: int):
    seen = utcnow() - timedelta(seconds=seconds_ago)
    with engine.begin() as conn:
        conn.execute(sa.update(AuthSession).where(AuthSession.token_hash == auth.hash_token(token))
                     .values(last_seen_at=seen))
    return seen


def _last_seen(engine: sa.Engine, token: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(AuthSession.last_seen_at)
                            .where(AuthSession.token_hash == auth.hash_token(token))).scalar_one()


def test_a_due_idle_clock_is_refreshed_though_another_writer_committed_during_the_read(seeded):
    token = login_token(seeded, DEMO_EMAIL[Role.PATIENT])
    seen = _set_last_seen(seeded, token, seconds_ago=120)
    with session_scope(write=False) as session:
        session.execute(sa.select(Department.id)).all()  # the read transaction has begun
        with seeded.begin() as other:  # another user's write commits meanwhile
            other.execute(sa.update(Department).where(Department.id == 1).values(name=Department.name))

        actor = auth.resolve_session(session=session, token=token, ip_address=IP)

    assert actor.role == Role.PATIENT
    assert _last_seen(seeded, token) > seen


def test_a_clock_refreshed_less_than_a_minute_ago_is_left_alone_in_a_read(seeded):
    token = login_token(seeded, DEMO_EMAIL[Role.PATIENT])
    seen = _set_last_seen(seeded, token, seconds_ago=20)
    with session_scope(write=False) as session:
        auth.resolve_session(session=session, token=token, ip_address=IP)
    assert _last_seen(seeded, token) == seen
