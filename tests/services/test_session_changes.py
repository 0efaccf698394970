"""What ends or alters a session, or a role's permissions, says so once it has committed.

A tab keeps its resolved session for up to a minute (``hms_app/state/auth.py``); it drops it at
once on a ``sessions`` change of its user or a ``permissions`` change of its role, which these
services publish. A refused or rolled-back call publishes nothing. The lease itself ends no
later than the session row would expire or be due for its once-a-minute touch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuthSession
from hms_app.db.types import utcnow
from hms_app.services.administration import auth, permissions, users
from hms_app.services.core import events
from hms_app.services.core.errors import Conflict
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import IP, STRONG_PASSWORD, login_token, resolve

pytestmark = pytest.mark.db

PATIENT = DEMO_EMAIL[Role.PATIENT]
ADMIN = DEMO_EMAIL[Role.ADMIN]


@pytest.fixture
def published() -> Iterator[list[events.Change]]:
    """The changes delivered to listeners (after their commit) during the test."""
    seen: list[events.Change] = []
    events.subscribe(seen.append)
    yield seen
    events.unsubscribe(seen.append)


def _run(engine, service, **kwargs):
    with session_scope(engine=engine) as s:
        return service(session=s, **kwargs)


def _of(published: list[events.Change], topic: str) -> list[events.Change]:
    return [change for change in published if change.topic == topic]


def test_logout_says_the_users_sessions_changed(seeded, published):
    patient = resolve(seeded, login_token(seeded, PATIENT))
    _run(seeded, auth.logout, actor=patient)
    assert _of(published, events.SESSIONS) == [events.Change(events.SESSIONS, frozenset({patient.user_id}))]


@pytest.mark.parametrize("service", [users.deactivate_user, users.reset_password])
def test_an_admins_deactivation_or_password_reset_says_the_users_sessions_changed(seeded, published, service):
    patient = resolve(seeded, login_token(seeded, PATIENT))
    admin = resolve(seeded, login_token(seeded, ADMIN))
    _run(seeded, service, actor=admin, user_id=patient.user_id)
    assert _of(published, events.SESSIONS) == [events.Change(events.SESSIONS, frozenset({patient.user_id}))]


def test_changing_ones_password_says_the_users_sessions_changed(seeded, published):
    patient = resolve(seeded, login_token(seeded, PATIENT))
    _run(seeded, auth.change_password, actor=patient, current_password="Demo-Hospital-2026",
         new_password=STRONG_PASSWORD)
    assert _of(published, events.SESSIONS) == [events.Change(events.SESSIONS, frozenset({patient.user_id}))]


def test_a_refused_deactivation_says_nothing(seeded, published):
    admin = resolve(seeded, login_token(seeded, ADMIN))
    patient = resolve(seeded, login_token(seeded, PATIENT))
    _run(seeded, users.deactivate_user, actor=admin, user_id=patient.user_id)
    published.clear()
    with pytest.raises(Conflict):
        _run(seeded, users.deactivate_user, actor=admin, user_id=patient.user_id)
    assert _of(published, events.SESSIONS) == []


def test_granting_or_revoking_a_permission_says_the_roles_permissions_changed(seeded, published):
    admin = resolve(seeded, login_token(seeded, ADMIN))
    _run(seeded, permissions.revoke_permission, actor=admin, role="patient", permission="notifications.own")
    _run(seeded, permissions.grant_permission, actor=admin, role="patient", permission="notifications.own")
    assert _of(published, events.PERMISSIONS) == [events.Change(events.PERMISSIONS, roles=frozenset({"patient"}))] * 2
    with pytest.raises(Conflict):
        _run(seeded, permissions.grant_permission, actor=admin, role="patient", permission="notifications.own")
    assert len(_of(published, events.PERMISSIONS)) == 2


def _lease(engine, token):
    with session_scope(write=False, engine=engine) as s:
        return auth.lease_session(session=s, token=token, ip_address=IP)


def _move_session(engine, token, **values) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(AuthSession).where(AuthSession.token_hash == auth.hash_token(token)).values(**values))


def test_a_lease_ends_when_the_idle_clock_is_due_for_its_touch(seeded):
    token = login_token(seeded, PATIENT)
    seen = utcnow() - timedelta(seconds=20)
    _move_session(seeded, token, last_seen_at=seen)
    assert _lease(seeded, token).recheck_at == seen + timedelta(seconds=60)  # not touched: 40 s left
    _move_session(seeded, token, last_seen_at=utcnow() - timedelta(minutes=5))
    before = utcnow()
    lease = _lease(seeded, token)  # touched now: a minute from now
    assert before + timedelta(seconds=60) <= lease.recheck_at <= utcnow() + timedelta(seconds=60)


def test_a_lease_never_outlives_the_sessions_absolute_expiry(seeded):
    token = login_token(seeded, PATIENT)
    ends = utcnow() + timedelta(seconds=5)
    _move_session(seeded, token, expires_at=ends)
    assert _lease(seeded, token).recheck_at == ends
    assert settings.SESSION_CACHE_SECONDS <= 60
