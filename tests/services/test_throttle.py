"""Failed attempts are throttled per client address (``hms_app/services/core/throttle.py``).

Through the services: failed logins and codes, registrations, password changes and FHIR
tokens from one address block it, another address is unaffected, and a blocked address's
attempts touch no account. Through the store, on the test database (SQLite, or PostgreSQL with
``HMS_TEST_POSTGRES_URL``) and on Redis: the window, the block's end, and concurrent failures.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pyotp
import pytest
import redis
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuditEvent, Throttle, User
from hms_app.db.types import utcnow
from hms_app.fhir_routes import mount
from hms_app.services.administration import auth, second_factor
from hms_app.services.core import throttle
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed, TooManyAttempts, ValidationError
from hms_app.services.interop import api_clients
from tests.conftest import DEMO_EMAIL, login_as
from tests.services.helpers import STRONG_PASSWORD, audit_events, last_audit_id

pytestmark = pytest.mark.db

PATIENT = DEMO_EMAIL[Role.PATIENT]
PASSWORD = "Demo-Hospital-2026"
ATTACKER = "198.51.100.66"
WARD = "203.0.113.40"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _login(email: str, password: str, ip: str) -> auth.LoginResult:
    with session_scope() as s:
        return auth.login(session=s, visitor=Anonymous(ip), email=email, password=password)


def _user(engine, email: str) -> User:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(User).where(User.email == email)).scalar_one()


def _blocks(engine) -> list[AuditEvent]:
    return audit_events(engine, action="throttle.block")


def _fail_logins(count: int, ip: str = ATTACKER) -> None:
    """``count`` failed logins from ``ip``, each against an email no account has."""
    for n in range(count):
        with pytest.raises(LoginFailed):
            _login(f"nobody{n}@patients.example", "Wrong-password-123", ip)


# --- logins and codes ---------------------------------------------------------------------------


def test_failed_logins_from_one_address_block_it_and_another_address_logs_in(seeded):
    limit = settings.THROTTLE_LOGIN.failures
    assert (limit, settings.THROTTLE_LOGIN.block_seconds) == (30, 900)  # the documented default
    _fail_logins(limit)
    [block] = _blocks(seeded)
    assert (block.ip_address, block.entity_id, str(block.outcome)) == (ATTACKER, "login", "denied")
    last = last_audit_id(seeded)
    # The right password from the blocked address: refused unchecked, with a plain message, unaudited.
    for _ in range(5):
        with pytest.raises(TooManyAttempts, match=r"Too many failed logins from your network\. Wait 15 minutes") as refused:
            _login(PATIENT, PASSWORD, ATTACKER)
        assert 890 <= refused.value.retry_after <= 900
    assert last_audit_id(seeded) == last
    assert _login(PATIENT, PASSWORD, WARD).token


def test_a_blocked_address_neither_counts_toward_nor_extends_an_accounts_lockout(seeded):
    limit = settings.THROTTLE_LOGIN.failures
    wrong = settings.LOCKOUT_THRESHOLD - 1
    _fail_logins(limit - wrong)
    for _ in range(wrong):
        with pytest.raises(LoginFailed):
            _login(PATIENT, "Not-her-password-1", ATTACKER)
    assert len(_blocks(seeded)) == 1
    assert (_user(seeded, PATIENT).failed_logins, _user(seeded, PATIENT).locked_until) == (wrong, None)
    for _ in range(3 * settings.LOCKOUT_THRESHOLD):
        with pytest.raises(TooManyAttempts):
            _login(PATIENT, "Not-her-password-1", ATTACKER)
    assert (_user(seeded, PATIENT).failed_logins, _user(seeded, PATIENT).locked_until) == (wrong, None)
    # The patient, on the ward's network, still logs in.
    assert _login(PATIENT, PASSWORD, WARD).token


def test_an_accounts_lockout_is_not_extended_by_attempts_from_a_blocked_address(seeded):
    _fail_logins(settings.THROTTLE_LOGIN.failures - settings.LOCKOUT_THRESHOLD)
    for _ in range(settings.LOCKOUT_THRESHOLD):
        with pytest.raises(LoginFailed):
            _login(PATIENT, "Not-her-password-1", ATTACKER)
    locked_until = _user(seeded, PATIENT).locked_until
    assert locked_until is not None
    with pytest.raises(TooManyAttempts):
        _login(PATIENT, "Not-her-password-1", ATTACKER)
    assert _user(seeded, PATIENT).locked_until == locked_until
    assert len(audit_events(seeded, action="login.lockout")) == 1


def test_wrong_second_factor_codes_count_with_wrong_passwords(seeded, actors, monkeypatch):
    monkeypatch.setattr(settings, "THROTTLE_LOGIN", settings.ThrottleLimit(4, 900, 900))
    doctor = DEMO_EMAIL[Role.DOCTOR]
    with session_scope() as s:
        second_factor.set_second_factor_requirement(session=s, actor=actors[Role.ADMIN], role=Role.DOCTOR.value,
                                                    required=True)
    first = _login(doctor, PASSWORD, ATTACKER)
    visitor = Anonymous(ATTACKER)
    with session_scope() as s:
        secret = auth.start_enrolment(session=s, visitor=visitor, challenge=first.challenge).secret
    _fail_logins(2)
    with session_scope() as s, pytest.raises(LoginFailed):
        auth.confirm_enrolment(session=s, visitor=visitor, challenge=first.challenge, code="000000")
    with session_scope() as s, pytest.raises(LoginFailed):
        auth.confirm_enrolment(session=s, visitor=visitor, challenge=first.challenge, code="000001")
    # The fourth failure blocked the address: the right code is refused before it is checked.
    with session_scope() as s, pytest.raises(TooManyAttempts):
        auth.confirm_enrolment(session=s, visitor=visitor, challenge=first.challenge, code=pyotp.TOTP(secret).now())
    assert _user(seeded, doctor).failed_logins == 2


# --- registrations and password changes -----------------------------------------------------------


def _register(ip: str, email: str, birth_date: str = "1990-05-01") -> int:
    form = auth.Registration(full_name="Ana Silva", email=email, password=STRONG_PASSWORD, birth_date=birth_date,
                             phone="+44 20 7946 0000")
    with session_scope() as s:
        return auth.register_patient(session=s, visitor=Anonymous(ip), form=form)


def test_every_registration_attempt_counts_and_a_blocked_address_registers_nobody(seeded):
    limit = settings.THROTTLE_REGISTER.failures
    _register(ATTACKER, "first@patients.example")
    for n in range(limit - 1):
        with pytest.raises(ValidationError):
            _register(ATTACKER, f"typo{n}@patients.example", birth_date="not a date")
    with pytest.raises(TooManyAttempts, match="Too many registrations from your network"):
        _register(ATTACKER, "second@patients.example")
    with session_scope(write=False) as s:
        assert s.execute(sa.select(User.id).where(User.email == "second@patients.example")).first() is None
    assert _register(WARD, "second@patients.example")
    assert len(_blocks(seeded)) == 1


def test_wrong_current_passwords_block_password_changes_from_that_address(seeded):
    victim = login_as(seeded, PATIENT, ip=ATTACKER)
    for _ in range(settings.THROTTLE_PASSWORD.failures):
        with session_scope() as s, pytest.raises(ValidationError, match="current password"):
            auth.change_password(session=s, actor=victim, current_password="Guess-number-1",
                                 new_password=STRONG_PASSWORD)
    with session_scope() as s, pytest.raises(TooManyAttempts, match="Too many wrong current passwords"):
        auth.change_password(session=s, actor=victim, current_password=PASSWORD, new_password=STRONG_PASSWORD)
    own = login_as(seeded, PATIENT, ip=WARD)
    with session_scope() as s:
        auth.change_password(session=s, actor=own, current_password=PASSWORD, new_password=STRONG_PASSWORD)


# --- the FHIR API ---------------------------------------------------------------------------------


def _token(engine, admin) -> str:
    with session_scope(engine=engine) as s:
        return api_clients.issue_api_client(session=s, actor=admin, name="Regional exchange", scope="all").token


def test_bad_tokens_from_one_address_get_429_with_retry_after_and_are_audited_once(seeded, actors):
    token = _token(seeded, actors[Role.ADMIN])
    limit = settings.THROTTLE_API.failures
    app = Starlette(routes=[mount])
    with TestClient(app, client=(ATTACKER, 40000)) as attacker, TestClient(app, client=(WARD, 40000)) as other:
        for n in range(limit):
            assert attacker.get("/fhir/Patient", headers={"Authorization": f"Bearer hms_wrong{n}"}).status_code == 401
        last = last_audit_id(seeded)
        for _ in range(50):
            answer = attacker.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 429
        assert 295 <= int(answer.headers["Retry-After"]) <= 300
        body = answer.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "throttled"
        assert "Too many failed authentications" in body["issue"][0]["diagnostics"]
        assert last_audit_id(seeded) == last
        assert other.get("/fhir/metadata").status_code == 200
        assert other.get(f"/fhir/Patient/{actors[Role.PATIENT].user_id}",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
    refusals = audit_events(seeded, action="fhir.authenticate")
    assert len(refusals) == limit
    assert {e.ip_address for e in refusals} == {ATTACKER}
    [block] = _blocks(seeded)
    assert (block.ip_address, block.entity_id) == (ATTACKER, "api")


def test_a_forged_forwarded_address_does_not_escape_the_block(seeded, monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_HOPS", 0)
    app = Starlette(routes=[mount])
    with TestClient(app, client=(ATTACKER, 40000)) as attacker:
        for n in range(settings.THROTTLE_API.failures + 5):
            answer = attacker.get("/fhir/Patient", headers={"Authorization": "Bearer hms_x",
                                                             "X-Forwarded-For": f"192.0.2.{n}"})
        assert answer.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_counted(seeded, monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_HOPS", 1)
    proxy = "10.0.0.2"
    app = Starlette(routes=[mount])
    with TestClient(app, client=(proxy, 40000)) as through_proxy:
        for _ in range(settings.THROTTLE_API.failures):
            through_proxy.get("/fhir/Patient", headers={"Authorization": "Bearer hms_x", "X-Forwarded-For": ATTACKER})
        blocked = through_proxy.get("/fhir/Patient", headers={"X-Forwarded-For": f"192.0.2.1, {ATTACKER}"})
        other = through_proxy.get("/fhir/Patient", headers={"X-Forwarded-For": WARD})
    assert (blocked.status_code, other.status_code) == (429, 401)
    assert {e.ip_address for e in audit_events(seeded, action="fhir.authenticate")} == {ATTACKER, WARD}


# --- the stores: the database and Redis ----------------------------------------------------------


@pytest.fixture(params=["database", "redis"])
def store(request, engine):
    """The throttle's store: the test's database, or Redis under a prefix of this test's own."""
    if request.param == "database":
        throttle.use_store(throttle.DatabaseStore())
        yield throttle.store()
        throttle.use_store(None)
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    prefix = f"hms-test-throttle-{uuid.uuid4().hex}:"
    throttle.use_store(throttle.RedisStore(client, prefix))
    yield throttle.store()
    throttle.use_store(None)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


LIMIT = settings.ThrottleLimit(5, 600, 300)


@pytest.fixture
def five_in_ten_minutes(monkeypatch):
    monkeypatch.setattr(settings, "THROTTLE_LOGIN", LIMIT)


def _failed(ip: str, at) -> throttle.Counted:
    with session_scope() as s:
        counted = throttle.failed(s, throttle.Kind.LOGIN, ip, now=at)
        s.commit()
        return counted


def _refused(ip: str, at) -> int | None:
    """The seconds to wait if ``ip`` is refused at ``at``, else None."""
    with session_scope(write=False) as s:
        try:
            throttle.check(s, throttle.Kind.LOGIN, ip, now=at)
        except TooManyAttempts as error:
            return error.retry_after
    return None


def test_the_limit_blocks_that_address_only_until_the_block_ends(store, five_in_ten_minutes):
    start = utcnow().replace(microsecond=0)
    for n in range(LIMIT.failures - 1):
        assert not _failed(ATTACKER, start + timedelta(seconds=n)).block_started
    assert _refused(ATTACKER, start + timedelta(seconds=10)) is None
    reached = start + timedelta(seconds=10)
    assert _failed(ATTACKER, reached).block_started
    assert not _failed(ATTACKER, reached).block_started  # a failure already under way when the block began
    assert _refused(ATTACKER, reached + timedelta(seconds=1)) == LIMIT.block_seconds - 1
    assert _refused(WARD, reached) is None
    ended = reached + timedelta(seconds=LIMIT.block_seconds)
    assert _refused(ATTACKER, ended) is None
    assert _failed(ATTACKER, ended).failures == 1  # after a block the count starts again


def test_failures_outside_the_window_start_a_new_count(store, five_in_ten_minutes):
    start = utcnow().replace(microsecond=0)
    for n in range(LIMIT.failures - 1):
        _failed(ATTACKER, start + timedelta(seconds=n))
    later = start + timedelta(seconds=LIMIT.window_seconds)
    counted = _failed(ATTACKER, later)
    assert (counted.failures, counted.block_started) == (1, False)
    assert _refused(ATTACKER, later) is None


def test_an_ipv6_network_counts_as_one_address(store, five_in_ten_minutes):
    start = utcnow().replace(microsecond=0)
    for n in range(LIMIT.failures):
        _failed(f"2001:db8:1:2::{n + 1:x}", start)
    assert _refused("2001:db8:1:2:ffff::1", start) is not None
    assert _refused("2001:db8:1:3::1", start) is None
    assert throttle.address_key(throttle.Kind.LOGIN, "::ffff:198.51.100.66") == f"login|{ATTACKER}"


def test_concurrent_failures_all_count_and_start_one_block(store, monkeypatch):
    threads, each = 8, 10
    monkeypatch.setattr(settings, "THROTTLE_LOGIN", settings.ThrottleLimit(threads * each // 2, 600, 300))
    start = utcnow().replace(microsecond=0)
    barrier = threading.Barrier(threads)
    results: list[throttle.Counted] = []
    errors: list[BaseException] = []

    def fail_many() -> None:
        try:
            barrier.wait()
            results.extend(_failed(ATTACKER, start) for _ in range(each))
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=fail_many) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert sorted(r.failures for r in results) == list(range(1, threads * each + 1))
    assert sum(r.block_started for r in results) == 1


def test_the_database_store_keeps_one_row_per_kind_and_address(engine, monkeypatch):
    throttle.use_store(throttle.DatabaseStore())
    try:
        start = utcnow()
        for _ in range(3):
            _failed(ATTACKER, start)
        with session_scope(write=False) as s:
            rows = s.execute(sa.select(Throttle)).scalars().all()
        assert [(r.key, r.failures, r.blocked_until) for r in rows] == [(f"login|{ATTACKER}", 3, None)]
    finally:
        throttle.use_store(None)
