"""Login, lockout, sessions, logout, forced and voluntary password changes."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuthSession, User
from hms_app.db.types import utcnow
from hms_app.services.administration import auth, departments, users
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import (
    LoginFailed,
    PasswordChangeRequired,
    PermissionDenied,
    SessionExpired,
    ValidationError,
)
from hms_app.services.messaging import notifications
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import (
    IP,
    STRONG_PASSWORD,
    audit_events,
    last_audit_id,
    login_token,
    resolve,
    snapshot,
)

pytestmark = pytest.mark.db

PATIENT = DEMO_EMAIL[Role.PATIENT]
ADMIN = DEMO_EMAIL[Role.ADMIN]
DEMO_PASSWORD = "Demo-Hospital-2026"


def _try_login(engine, email, password) -> Exception | None:
    try:
        login_token(engine, email, password)
    except LoginFailed as failed:
        return failed
    return None


def _user(engine, email) -> User:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(User).where(User.email == email)).scalar_one()


def _update_user(engine, email, **values) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(User).where(User.email == email).values(**values))


def _session_row(engine, token) -> AuthSession:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(
            sa.select(AuthSession).where(AuthSession.token_hash == auth.hash_token(token))
        ).scalar_one()


def _move_session(engine, token, **values) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(AuthSession).where(AuthSession.token_hash == auth.hash_token(token)).values(**values)
        )


# --- login -------------------------------------------------------------------------------


def test_login_returns_an_actor_for_the_account(seeded):
    with session_scope(engine=seeded) as s:
        result = auth.login(session=s, visitor=Anonymous(IP), email="  Admin@HMS.example ",
                            password=DEMO_PASSWORD)
    assert result.actor.email == ADMIN
    assert result.actor.role is Role.ADMIN
    assert result.actor.ip_address == IP
    assert result.actor.can(auth.Permission.USERS_MANAGE)
    assert _user(seeded, ADMIN).last_login_at is not None
    [event] = audit_events(seeded, action="login.success")
    assert event.actor_id == result.actor.user_id
    assert event.entity_id == str(result.actor.session_id)
    assert event.ip_address == IP


def test_every_kind_of_login_failure_gives_the_same_message(seeded):
    unknown = _try_login(seeded, "nobody@hms.example", DEMO_PASSWORD)
    wrong = _try_login(seeded, PATIENT, "Not-the-password-1")

    _update_user(seeded, "james.smith@patients.example", is_active=False)
    disabled = _try_login(seeded, "james.smith@patients.example", DEMO_PASSWORD)

    _update_user(seeded, "aisha.khan@patients.example", locked_until=utcnow() + timedelta(minutes=5))
    locked = _try_login(seeded, "aisha.khan@patients.example", DEMO_PASSWORD)

    failures = [unknown, wrong, disabled, locked]
    assert all(isinstance(f, LoginFailed) for f in failures)
    assert {str(f) for f in failures} == {auth.LOGIN_FAILED_MESSAGE}
    assert {f.message for f in failures} == {auth.LOGIN_FAILED_MESSAGE}

    details = [(e.action, e.detail) for e in audit_events(seeded) if e.action.startswith("login.")]
    assert details == [
        ("login.failed", "unknown email"),
        ("login.failed", "wrong password (1 in a row)"),
        ("login.failed", "account disabled"),
        ("login.locked", "account locked"),
    ]
    assert all(str(e.outcome) == "failed" for e in audit_events(seeded) if e.action.startswith("login."))


def test_failed_login_records_the_typed_email_and_address(seeded):
    _try_login(seeded, "Nobody@Example.org", "whatever-password")
    [event] = audit_events(seeded, action="login.failed")
    assert event.actor_id is None
    assert event.actor_email == "nobody@example.org"
    assert event.ip_address == IP


def test_five_failures_in_a_row_lock_the_account_for_fifteen_minutes(seeded):
    for attempt in range(1, 5):
        assert _try_login(seeded, PATIENT, "Wrong-password-0") is not None
        assert _user(seeded, PATIENT).failed_logins == attempt
        assert _user(seeded, PATIENT).locked_until is None
    before = utcnow()
    assert _try_login(seeded, PATIENT, "Wrong-password-0") is not None
    user = _user(seeded, PATIENT)
    assert user.locked_until is not None
    lock = user.locked_until - before
    assert timedelta(minutes=15) - timedelta(seconds=5) <= lock <= timedelta(minutes=15) + timedelta(seconds=5)
    [lockout] = audit_events(seeded, action="login.lockout")
    assert lockout.entity_id == str(user.id)
    assert "15 minutes" in lockout.detail

    # The right password does not open a locked account.
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is not None
    [refused] = audit_events(seeded, action="login.locked")
    assert refused.actor_email == PATIENT
    assert _user(seeded, PATIENT).locked_until == user.locked_until

    # Fourteen minutes later it is still locked; after fifteen it opens.
    _update_user(seeded, PATIENT, locked_until=utcnow() + timedelta(minutes=1))
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is not None
    _update_user(seeded, PATIENT, locked_until=utcnow() - timedelta(seconds=1))
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is None
    user = _user(seeded, PATIENT)
    assert user.locked_until is None
    assert user.failed_logins == 0


def test_a_successful_login_resets_the_failure_count(seeded):
    for _ in range(4):
        _try_login(seeded, PATIENT, "Wrong-password-0")
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is None
    assert _user(seeded, PATIENT).failed_logins == 0
    for _ in range(4):
        _try_login(seeded, PATIENT, "Wrong-password-0")
    assert _user(seeded, PATIENT).locked_until is None
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is None
    assert audit_events(seeded, action="login.lockout") == []


def test_failures_on_one_account_do_not_lock_another(seeded):
    for _ in range(5):
        _try_login(seeded, PATIENT, "Wrong-password-0")
    assert _user(seeded, PATIENT).locked_until is not None
    assert _try_login(seeded, ADMIN, DEMO_PASSWORD) is None


def test_attempts_while_locked_do_not_extend_or_count(seeded):
    for _ in range(5):
        _try_login(seeded, PATIENT, "Wrong-password-0")
    locked_until = _user(seeded, PATIENT).locked_until
    for _ in range(3):
        _try_login(seeded, PATIENT, "Wrong-password-0")
    user = _user(seeded, PATIENT)
    assert user.locked_until == locked_until
    assert user.failed_logins == 0
    assert len(audit_events(seeded, action="login.locked")) == 3
    assert len(audit_events(seeded, action="login.lockout")) == 1


def test_a_disabled_account_cannot_log_in_even_with_the_right_password(seeded):
    _update_user(seeded, PATIENT, is_active=False)
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is not None
    assert _user(seeded, PATIENT).last_login_at is None


# --- sessions ------------------------------------------------------------------------------


def test_every_login_gets_a_new_random_token_and_only_its_sha256_is_stored(seeded):
    tokens = [login_token(seeded, PATIENT) for _ in range(3)]
    assert len(set(tokens)) == 3
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(AuthSession.__table__)).all()
    assert len(rows) == 3
    stored = " ".join(str(value) for row in rows for value in row)
    for token in tokens:
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored
    for token in tokens:
        assert resolve(seeded, token).email == PATIENT


def test_a_session_lasts_eight_hours_at_most(seeded):
    token = login_token(seeded, PATIENT)
    row = _session_row(seeded, token)
    assert row.expires_at - row.created_at == timedelta(hours=8)
    assert row.ip_address == IP

    _move_session(seeded, token, expires_at=utcnow() + timedelta(minutes=1))
    assert resolve(seeded, token).email == PATIENT
    _move_session(seeded, token, expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(SessionExpired, match="expired"):
        resolve(seeded, token)
    assert _session_row(seeded, token).revoked_at is not None
    [event] = audit_events(seeded, action="session.expired")
    assert event.actor_email == PATIENT
    # Moving the clock back does not revive a session that ended.
    _move_session(seeded, token, expires_at=utcnow() + timedelta(hours=1))
    with pytest.raises(SessionExpired):
        resolve(seeded, token)


def test_a_session_ends_after_thirty_idle_minutes(seeded):
    token = login_token(seeded, PATIENT)
    _move_session(seeded, token, last_seen_at=utcnow() - timedelta(minutes=29))
    assert resolve(seeded, token).email == PATIENT
    # That use refreshed the idle clock.
    assert utcnow() - _session_row(seeded, token).last_seen_at < timedelta(seconds=30)

    _move_session(seeded, token, last_seen_at=utcnow() - timedelta(minutes=30, seconds=1))
    with pytest.raises(SessionExpired):
        resolve(seeded, token)


def test_the_idle_clock_is_written_at_most_once_a_minute(seeded):
    token = login_token(seeded, PATIENT)
    seen = utcnow() - timedelta(seconds=20)
    _move_session(seeded, token, last_seen_at=seen)
    resolve(seeded, token)
    assert _session_row(seeded, token).last_seen_at == seen


def test_unknown_or_malformed_tokens_are_refused(seeded):
    login_token(seeded, PATIENT)
    for token in ["", "not-a-token", "x" * 500, None, 12345, auth.hash_token("not-a-token")]:
        with pytest.raises(SessionExpired):
            resolve(seeded, token)


def test_logout_revokes_the_session(seeded):
    token = login_token(seeded, PATIENT)
    other = login_token(seeded, PATIENT)
    actor = resolve(seeded, token)
    with session_scope(engine=seeded) as s:
        auth.logout(session=s, actor=actor)
    with pytest.raises(SessionExpired, match="logged out"):
        resolve(seeded, token)
    assert resolve(seeded, other).email == PATIENT  # only that session ended
    [event] = audit_events(seeded, action="logout")
    assert event.entity_id == str(actor.session_id)


def test_deactivating_a_user_ends_their_sessions_at_once(seeded):
    token = login_token(seeded, PATIENT)
    patient = resolve(seeded, token)
    admin = resolve(seeded, login_token(seeded, ADMIN))
    with session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id=patient.user_id)
    with pytest.raises(SessionExpired):
        resolve(seeded, token)


def test_an_inactive_account_is_refused_even_if_its_session_row_is_open(seeded):
    token = login_token(seeded, PATIENT)
    _update_user(seeded, PATIENT, is_active=False)
    assert _session_row(seeded, token).revoked_at is None
    with pytest.raises(SessionExpired, match="deactivated"):
        resolve(seeded, token)


# --- forced password change after a reset ---------------------------------------------


def test_reset_password_revokes_sessions_and_forces_a_change(seeded):
    patient_token = login_token(seeded, PATIENT)
    patient = resolve(seeded, patient_token)
    admin = resolve(seeded, login_token(seeded, ADMIN))
    with session_scope(engine=seeded) as s:
        temporary = users.reset_password(session=s, actor=admin, user_id=patient.user_id)

    with pytest.raises(SessionExpired):
        resolve(seeded, patient_token)
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is not None
    token = login_token(seeded, PATIENT, temporary)
    pending = resolve(seeded, token)
    assert pending.must_change_password

    # Everything but changing the password is refused, and each refusal is audited.
    refused = [
        ("department.list", lambda s: departments.list_departments(session=s, actor=pending)),
        ("notification.list", lambda s: notifications.list_notifications(session=s, actor=pending)),
        ("notification.read_all", lambda s: notifications.mark_all_read(session=s, actor=pending)),
    ]
    for action, call in refused:
        after = last_audit_id(seeded)
        with session_scope(engine=seeded) as s, pytest.raises(PasswordChangeRequired):
            call(s)
        [event] = audit_events(seeded, after_id=after)
        assert (event.action, str(event.outcome), event.detail) == (action, "denied", "password change pending")
    assert issubclass(PasswordChangeRequired, PermissionDenied)

    with session_scope(engine=seeded) as s:
        auth.change_password(session=s, actor=pending, current_password=temporary, new_password=STRONG_PASSWORD)
    changed = resolve(seeded, token)
    assert not changed.must_change_password
    with session_scope(engine=seeded) as s:
        assert departments.list_departments(session=s, actor=changed)
    assert _user(seeded, PATIENT).must_change_password is False


def test_an_admin_who_resets_their_own_password_must_change_it_before_admin_work(seeded):
    admin_token = login_token(seeded, ADMIN)
    admin = resolve(seeded, admin_token)
    other_id = _user(seeded, DEMO_EMAIL[Role.ACCOUNTS]).id
    with session_scope(engine=seeded) as s:
        temporary = users.reset_password(session=s, actor=admin, user_id=admin.user_id)
    with pytest.raises(SessionExpired):
        resolve(seeded, admin_token)
    pending = resolve(seeded, login_token(seeded, ADMIN, temporary))
    before = snapshot(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(PasswordChangeRequired):
        users.deactivate_user(session=s, actor=pending, user_id=other_id)
    assert snapshot(seeded) == before


# --- changing one's own password -----------------------------------------------------------


def test_change_password_keeps_this_session_and_ends_the_others(seeded):
    current = login_token(seeded, PATIENT)
    other = login_token(seeded, PATIENT)
    actor = resolve(seeded, current)
    with session_scope(engine=seeded) as s:
        auth.change_password(session=s, actor=actor, current_password=DEMO_PASSWORD, new_password=STRONG_PASSWORD)
    assert resolve(seeded, current).email == PATIENT
    with pytest.raises(SessionExpired):
        resolve(seeded, other)
    assert _try_login(seeded, PATIENT, DEMO_PASSWORD) is not None
    assert _try_login(seeded, PATIENT, STRONG_PASSWORD) is None
    [event] = audit_events(seeded, action="password.change")
    assert (event.actor_id, str(event.outcome)) == (actor.user_id, "success")


def test_change_password_refuses_a_wrong_current_password_and_audits_it(seeded):
    other = login_token(seeded, PATIENT)
    actor = resolve(seeded, login_token(seeded, PATIENT))
    before = snapshot(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(ValidationError, match="current password"):
        auth.change_password(session=s, actor=actor, current_password="Not-my-password-1",
                             new_password=STRONG_PASSWORD)
    assert snapshot(seeded) == before
    assert resolve(seeded, other).email == PATIENT
    [event] = audit_events(seeded, action="password.change")
    assert (event.actor_id, str(event.outcome)) == (actor.user_id, "denied")


def test_change_password_applies_the_policy(seeded):
    other = login_token(seeded, PATIENT)
    actor = resolve(seeded, login_token(seeded, PATIENT))
    before = snapshot(seeded)
    for new_password in ["short-one", "é" * 37, PATIENT, PATIENT.upper(), "maria.garcia", DEMO_PASSWORD, None]:
        with session_scope(engine=seeded) as s, pytest.raises(ValidationError):
            auth.change_password(session=s, actor=actor, current_password=DEMO_PASSWORD,
                                 new_password=new_password)
    assert snapshot(seeded) == before
    assert resolve(seeded, other).email == PATIENT


def test_change_password_needs_a_session(seeded):
    after = last_audit_id(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(SessionExpired):
        auth.change_password(session=s, actor=None, current_password=DEMO_PASSWORD, new_password=STRONG_PASSWORD)
    [event] = audit_events(seeded, after_id=after)
    assert (event.action, str(event.outcome), event.actor_id) == ("password.change", "denied", None)


def test_lockout_settings_match_the_design():
    assert settings.LOCKOUT_THRESHOLD == 5
    assert settings.LOCKOUT_SECONDS == 15 * 60
    assert settings.SESSION_ABSOLUTE_SECONDS == 8 * 3600
    assert settings.SESSION_IDLE_SECONDS == 30 * 60
