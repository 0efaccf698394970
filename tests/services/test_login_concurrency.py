"""A login checks its password outside any database transaction.

bcrypt at cost 12 takes about a quarter of a second. A session opened for writing takes
SQLite's write lock at its first statement (``BEGIN IMMEDIATE``), so a login that hashed inside
its transaction held every other writer of the hospital for that long, and a burst of logins
queued them past the busy timeout ("database is locked"). These tests write from another
connection while the password is being checked; they assert what can be written, never how
long anything took.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuthSession, User
from hms_app.services.administration import auth
from hms_app.services.core import passwords
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import IP

pytestmark = pytest.mark.db

DEMO_PASSWORD = "Demo-Hospital-2026"


@pytest.fixture
def write_during_the_check(seeded, monkeypatch):
    """While the login checks the password, another connection writes to the user table at once
    (no busy wait): that fails if the login's transaction holds the write lock."""
    real_verify = passwords.verify_password
    writes: list[str] = []

    sqlite = seeded.dialect.name == "sqlite"
    other = sa.create_engine(seeded.url, poolclass=sa.pool.NullPool, connect_args={"timeout": 0} if sqlite else {})

    def verify_while_another_writes(password, password_hash):
        with other.connect() as conn:
            if not sqlite:
                conn.exec_driver_sql("SET lock_timeout = '1ms'")
            conn.execute(sa.update(User).where(User.email == DEMO_EMAIL[Role.ADMIN]).values(failed_logins=0))
            conn.commit()
        writes.append("written")
        return real_verify(password, password_hash)

    monkeypatch.setattr(passwords, "verify_password", verify_while_another_writes)
    yield writes
    other.dispose()


def _login(email: str, password: str) -> auth.LoginResult:
    with session_scope() as session:
        return auth.login(session=session, visitor=Anonymous(IP), email=email, password=password)


def test_another_writer_is_not_held_up_while_a_login_checks_the_password(seeded, write_during_the_check):
    result = _login(DEMO_EMAIL[Role.PATIENT], DEMO_PASSWORD)

    assert write_during_the_check == ["written"]
    with session_scope(write=False) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(AuthSession)
                               .where(AuthSession.user_id == result.actor.user_id)).scalar_one() == 1


def test_a_wrong_password_is_counted_after_a_check_that_held_no_lock(seeded, write_during_the_check):
    with pytest.raises(LoginFailed):
        _login(DEMO_EMAIL[Role.PATIENT], "not-the-password")

    assert write_during_the_check == ["written"]
    with session_scope(write=False) as session:
        assert session.execute(sa.select(User.failed_logins).where(User.email == DEMO_EMAIL[Role.PATIENT])
                               ).scalar_one() == 1
