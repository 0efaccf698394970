"""Two-factor login: the requirement per role, enrolment, codes, recovery codes, lockout, reset.

Codes are computed with ``pyotp`` from the secret the enrolment hands out, as an
authenticator app would; the clock is moved by passing explicit steps where it matters.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import AuditOutcome, Role
from hms_app.db.migrate import upgrade
from hms_app.db.models import (
    AuthSession,
    LoginChallenge,
    RecoveryCode,
    RoleLoginPolicy,
    SecondFactor,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.administration import auth, second_factor
from hms_app.services.administration.second_factor import STEP_SECONDS
from hms_app.services.core import events
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import Conflict, LoginFailed, PermissionDenied, ValidationError
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import IP, audit_events, resolve

DOCTOR = DEMO_EMAIL[Role.DOCTOR]
ADMIN = DEMO_EMAIL[Role.ADMIN]
PASSWORD = "Demo-Hospital-2026"
VISITOR = Anonymous(IP)


def _run(engine, service, **kwargs):
    with session_scope(engine=engine) as s:
        return service(session=s, **kwargs)


def _login(engine, email=DOCTOR, password=PASSWORD) -> auth.LoginResult:
    return _run(engine, auth.login, visitor=VISITOR, email=email, password=password)


def _require(engine, actors, role: Role, required: bool = True) -> None:
    _run(engine, second_factor.set_second_factor_requirement, actor=actors[Role.ADMIN], role=role.value,
         required=required)


def _code(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(utcnow() + timedelta(seconds=STEP_SECONDS * steps_ahead))


def _next_code(engine, secret: str, email=DOCTOR, after: int = 1) -> str:
    """The code of the step ``after`` steps past the last one accepted (still inside the window)."""
    return pyotp.TOTP(secret).generate_otp(_factor(engine, email).last_used_step + after)


def _enrol(engine, email=DOCTOR) -> tuple[str, list[str], str]:
    """Log in, enrol a new authenticator; return its secret, the recovery codes and the session token."""
    first = _login(engine, email)
    assert first.token == ""
    assert first.must_enrol
    enrolment = _run(engine, auth.start_enrolment, visitor=VISITOR, challenge=first.challenge)
    done = _run(engine, auth.confirm_enrolment, visitor=VISITOR, challenge=first.challenge,
                code=_code(enrolment.secret))
    return enrolment.secret, done.recovery_codes, done.result.token


def _user(engine, email) -> User:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(User).where(User.email == email)).scalar_one()


def _factor(engine, email) -> SecondFactor | None:
    with session_scope(write=False, engine=engine) as s:
        user_id = s.execute(sa.select(User.id).where(User.email == email)).scalar_one()
        return s.get(SecondFactor, user_id)


def _sessions(engine, email) -> int:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(sa.func.count()).select_from(AuthSession).join(User)
                         .where(User.email == email)).scalar_one()


def test_the_migration_requires_a_second_factor_of_admin_accounts_and_doctor(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        required = dict(conn.execute(sa.select(RoleLoginPolicy.role, RoleLoginPolicy.second_factor_required)).all())
    engine.dispose()
    assert required == {"admin": True, "accounts": True, "doctor": True,
                        "lab": False, "pharmacy": False, "patient": False}


def test_a_role_without_the_requirement_logs_in_with_the_password_alone(seeded):
    result = _login(seeded)
    assert result.token
    assert result.actor is not None
    assert result.challenge == ""


def test_a_required_role_must_enrol_and_no_session_exists_before_the_code(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    before = _sessions(seeded, DOCTOR)
    first = _login(seeded)
    assert first.token == ""
    assert first.actor is None
    assert first.must_enrol
    assert first.challenge
    assert _sessions(seeded, DOCTOR) == before
    enrolment = _run(seeded, auth.start_enrolment, visitor=VISITOR, challenge=first.challenge)
    assert enrolment.qr_data_uri.startswith("data:image/svg+xml")
    assert enrolment.uri.startswith("otpauth://totp/")
    assert enrolment.secret in enrolment.uri
    with pytest.raises(LoginFailed):
        _run(seeded, auth.confirm_enrolment, visitor=VISITOR, challenge=first.challenge, code="000000"
             if _code(enrolment.secret) != "000000" else "111111")
    assert _sessions(seeded, DOCTOR) == before
    done = _run(seeded, auth.confirm_enrolment, visitor=VISITOR, challenge=first.challenge,
                code=_code(enrolment.secret))
    assert resolve(seeded, done.result.token).email == DOCTOR
    assert len(done.recovery_codes) == 10
    assert len(set(done.recovery_codes)) == 10
    assert [e.outcome for e in audit_events(seeded, action="second_factor.enrol")] == [
        AuditOutcome.FAILED, AuditOutcome.SUCCESS]


def test_the_secret_is_encrypted_at_rest_and_recovery_codes_are_kept_hashed(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    secret, codes, _ = _enrol(seeded)
    with seeded.connect() as conn:
        stored = conn.execute(sa.text("SELECT secret FROM second_factor")).scalar_one()
        hashes = conn.execute(sa.text("SELECT code_hash FROM recovery_code")).scalars().all()
    assert secret not in stored
    assert stored.startswith("gAAAA")
    assert len(hashes) == 10
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)


def test_an_enrolled_user_logs_in_with_a_code_and_the_same_code_is_refused_again(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    secret, _, _ = _enrol(seeded)
    # The enrolment used this step's code: the next login needs the next one.
    first = _login(seeded)
    assert first.challenge
    assert not first.must_enrol
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge,
             code=_next_code(seeded, secret, after=0))
    code = _next_code(seeded, secret)
    result = _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=code)
    assert resolve(seeded, result.token).email == DOCTOR
    # Within the same window the code that just opened a session opens no other.
    again = _login(seeded)
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=again.challenge, code=code)


def test_an_enrolled_user_needs_the_code_even_when_the_role_no_longer_requires_it(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    _enrol(seeded)
    _require(seeded, actors, Role.DOCTOR, required=False)
    assert _login(seeded).challenge


def test_a_challenge_is_used_once_and_expires(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    secret, _, _ = _enrol(seeded)
    first = _login(seeded)
    _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=_next_code(seeded, secret))
    with pytest.raises(LoginFailed, match="timed out"):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=_next_code(seeded, secret))
    late = _login(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(LoginChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(LoginFailed, match="timed out"):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=late.challenge, code=_next_code(seeded, secret))
    for forged in ("", "x" * 500, None, 12):
        with pytest.raises(LoginFailed, match="timed out"):
            _run(seeded, auth.complete_login, visitor=VISITOR, challenge=forged, code="123456")


def test_a_recovery_code_opens_one_session_only(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    _, codes, _ = _enrol(seeded)
    first = _login(seeded)
    result = _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=codes[3].lower())
    assert resolve(seeded, result.token).email == DOCTOR
    again = _login(seeded)
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=again.challenge, code=codes[3])
    result = _run(seeded, auth.complete_login, visitor=VISITOR, challenge=again.challenge, code=codes[4])
    assert result.token
    with session_scope(write=False, engine=seeded) as s:
        left = s.execute(sa.select(sa.func.count()).select_from(RecoveryCode)
                         .where(RecoveryCode.used_at.is_(None))).scalar_one()
    assert left == 8


def test_wrong_codes_count_toward_the_lockout_with_wrong_passwords(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    secret, _, _ = _enrol(seeded)
    with pytest.raises(LoginFailed):
        _login(seeded, password="Not-the-password-1")
    first = _login(seeded)
    # A right password does not wipe the count: only a whole login does.
    assert _user(seeded, DOCTOR).failed_logins == 1
    for attempt in range(3):
        with pytest.raises(LoginFailed):
            _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=f"99999{attempt}")
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code="999990")
    user = _user(seeded, DOCTOR)
    assert user.locked_until is not None
    assert user.locked_until > utcnow() + timedelta(minutes=14)
    assert [e.detail for e in audit_events(seeded, action="login.lockout")][-1].endswith("failures, the last a wrong code")
    # Locked: neither the right code on the old challenge nor the password gets in.
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=_next_code(seeded, secret))
    with pytest.raises(LoginFailed, match="could not log you in"):
        _login(seeded)


def test_a_whole_login_resets_the_failure_count(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    secret, _, _ = _enrol(seeded)
    first = _login(seeded)
    with pytest.raises(LoginFailed):
        _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code="not a code")
    assert _user(seeded, DOCTOR).failed_logins == 1
    _run(seeded, auth.complete_login, visitor=VISITOR, challenge=first.challenge, code=_next_code(seeded, secret))
    assert _user(seeded, DOCTOR).failed_logins == 0


def test_admin_resets_a_users_second_factor_and_it_is_audited(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    _, _, token = _enrol(seeded)
    doctor_id = _user(seeded, DOCTOR).id
    _run(seeded, second_factor.reset_second_factor, actor=actors[Role.ADMIN], user_id=doctor_id)
    assert _factor(seeded, DOCTOR) is None
    with session_scope(write=False, engine=seeded) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(RecoveryCode)).scalar_one() == 0
    with pytest.raises(Exception, match="log in again"):
        resolve(seeded, token)
    events = audit_events(seeded, action="user.reset_second_factor")
    assert [(e.actor_id, e.entity_id) for e in events] == [(actors[Role.ADMIN].user_id, str(doctor_id))]
    assert _login(seeded).must_enrol
    with pytest.raises(Conflict):
        _run(seeded, second_factor.reset_second_factor, actor=actors[Role.ADMIN], user_id=doctor_id)


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ACCOUNTS, Role.LAB, Role.PHARMACY, Role.PATIENT])
def test_only_admin_resets_a_second_factor_or_switches_a_requirement(seeded, actors, role):
    doctor_id = _user(seeded, DOCTOR).id
    with pytest.raises(PermissionDenied):
        _run(seeded, second_factor.reset_second_factor, actor=actors[role], user_id=doctor_id)
    with pytest.raises(PermissionDenied):
        _run(seeded, second_factor.set_second_factor_requirement, actor=actors[role], role="lab", required=True)
    with pytest.raises(PermissionDenied):
        _run(seeded, second_factor.list_second_factor_requirements, actor=actors[role])


def test_admin_switches_a_roles_requirement_on_and_off_and_it_is_audited(seeded, actors):
    admin = actors[Role.ADMIN]
    _require(seeded, actors, Role.LAB)
    rows = {r.role: r.required for r in _run(seeded, second_factor.list_second_factor_requirements, actor=admin)}
    assert rows["lab"] is True
    assert rows["pharmacy"] is False
    assert _login(seeded, DEMO_EMAIL[Role.LAB]).must_enrol
    _require(seeded, actors, Role.LAB, required=False)
    assert _login(seeded, DEMO_EMAIL[Role.LAB]).token
    assert [e.detail for e in audit_events(seeded, action="second_factor.require")] == ["required", "not required"]
    with pytest.raises(Conflict):
        _require(seeded, actors, Role.LAB, required=False)
    for role, required in (("superuser", True), ("lab", "yes")):
        with pytest.raises(ValidationError, match=r"Choose a role|Say whether"):
            _run(seeded, second_factor.set_second_factor_requirement, actor=admin, role=role, required=required)


def test_a_wrong_password_never_reveals_whether_a_second_factor_is_owed(seeded, actors):
    _require(seeded, actors, Role.DOCTOR)
    with pytest.raises(LoginFailed) as wrong:
        _login(seeded, password="Not-the-password-1")
    assert wrong.value.message == auth.LOGIN_FAILED_MESSAGE



def test_resetting_a_second_factor_says_the_users_sessions_changed(seeded, actors):
    """The tabs that keep a resolved session of the user drop it (``hms_app/state/auth.py``)."""
    _require(seeded, actors, Role.DOCTOR)
    _enrol(seeded)
    doctor_id = _user(seeded, DOCTOR).id
    seen: list[events.Change] = []
    events.subscribe(seen.append)
    try:
        _run(seeded, second_factor.reset_second_factor, actor=actors[Role.ADMIN], user_id=doctor_id)
    finally:
        events.unsubscribe(seen.append)
    assert [c for c in seen if c.topic == events.SESSIONS] == [events.Change(events.SESSIONS, frozenset({doctor_id}))]
