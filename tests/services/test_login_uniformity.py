"""Every failed login looks and costs the same: one answer, one bcrypt check at the accounts' cost.

An attacker who can tell an unknown email from a wrong password — by the message or by how long
the answer takes — learns which accounts exist. Timing is checked structurally rather than by
the clock (which a loaded CI machine makes noisy): every kind of login, failed or not, runs
exactly one bcrypt check, against a hash of the same cost as a real account's, so the slow part
of the work is the same whatever went wrong.
"""

from __future__ import annotations

import re
from datetime import timedelta

import bcrypt
import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.models import User
from hms_app.db.types import utcnow
from hms_app.operations import demo
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed
from tests.services.appointment_helpers import call

pytestmark = pytest.mark.db

EMAIL = "wei.zhang@patients.example"
WRONG = "Not-the-password-1"


def _set(engine: sa.Engine, email: str, **values: object) -> None:
    with session_scope(engine=engine) as s:
        s.execute(sa.update(User).where(User.email == email).values(**values))
        s.commit()


def _cost(hash_: bytes) -> int:
    return int(re.match(rb"\$2[aby]\$(\d\d)\$", hash_).group(1))


CASES = {
    "unknown email": lambda e: ("nobody.here@patients.example", demo.DEMO_PASSWORD),
    "wrong password": lambda e: (EMAIL, WRONG),
    "disabled account": lambda e: (_set(e, EMAIL, is_active=False), (EMAIL, demo.DEMO_PASSWORD))[1],
    "locked account": lambda e: (_set(e, EMAIL, locked_until=utcnow() + timedelta(minutes=10)),
                                 (EMAIL, demo.DEMO_PASSWORD))[1],
    "email the database cannot hold": lambda e: ("wei.zhang\x00@patients.example", demo.DEMO_PASSWORD),
    "empty form": lambda e: ("", ""),
}


@pytest.fixture
def bcrypt_checks(monkeypatch) -> list[bytes]:
    """The stored hash of every bcrypt check the login makes."""
    checks: list[bytes] = []
    real = bcrypt.checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    return checks


def _account_cost(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return _cost(conn.execute(sa.select(User.password_hash).where(User.email == EMAIL)).scalar_one().encode())


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failed_login_spends_one_bcrypt_check_at_the_accounts_cost_and_says_the_same(seeded, bcrypt_checks,
                                                                                        case):
    cost = _account_cost(seeded)
    email, password = CASES[case](seeded)
    with pytest.raises(LoginFailed) as failed:
        call(seeded, auth.login, visitor=Anonymous("203.0.113.9"), email=email, password=password)
    assert failed.value.message == auth.LOGIN_FAILED_MESSAGE
    assert type(failed.value) is LoginFailed
    assert [_cost(h) for h in bcrypt_checks] == [cost], f"{case}: {len(bcrypt_checks)} bcrypt checks"


def test_a_successful_login_spends_the_same_one_check(seeded, bcrypt_checks):
    cost = _account_cost(seeded)
    call(seeded, auth.login, visitor=Anonymous("203.0.113.9"), email=EMAIL, password=demo.DEMO_PASSWORD)
    assert [_cost(h) for h in bcrypt_checks] == [cost]


def test_the_unknown_account_hash_follows_the_configured_cost(seeded, bcrypt_checks, monkeypatch):
    """At another cost the stand-in hash for an unknown email follows it (production runs at 12)."""
    from hms_app import settings

    monkeypatch.setattr(settings, "BCRYPT_ROUNDS", 5)
    with pytest.raises(LoginFailed):
        call(seeded, auth.login, visitor=Anonymous("203.0.113.9"), email="nobody@patients.example", password=WRONG)
    assert [_cost(h) for h in bcrypt_checks] == [5]
