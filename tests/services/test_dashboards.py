"""The admin dashboard's figures, aggregated in SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Department, User
from hms_app.db.types import utcnow
from hms_app.services.administration import dashboards, users
from hms_app.services.core import localtime, passwords
from hms_app.services.core.errors import LoginFailed, SessionExpired
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import STRONG_PASSWORD, assert_refused, login_token, resolve

pytestmark = pytest.mark.db

NON_ADMIN = [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS]


def _figures(engine, actor) -> dashboards.AdminFigures:
    with session_scope(write=False, engine=engine) as s:
        return dashboards.admin_figures(session=s, actor=actor)


def _fail_login(engine, email, times=1) -> None:
    for _ in range(times):
        with pytest.raises(LoginFailed):
            login_token(engine, email, "Wrong-password-1")


def test_counts_per_role(actors, seeded):
    figures = _figures(seeded, actors[Role.ADMIN])
    by_role = {row.role: (row.active, row.inactive) for row in figures.users_by_role}
    assert by_role == {"admin": (1, 0), "accounts": (1, 0), "doctor": (10, 0), "lab": (1, 0),
                       "pharmacy": (1, 0), "patient": (20, 0)}
    assert [row.label for row in figures.users_by_role] == [r.label for r in Role]
    assert figures.total_users == 34
    assert figures.active_departments == 5


def test_deactivations_move_accounts_to_inactive(actors, seeded):
    admin = actors[Role.ADMIN]
    with session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id=actors[Role.DOCTOR].user_id)
    with seeded.begin() as conn:
        conn.execute(sa.update(Department).where(Department.name == "Dermatology").values(is_active=False))
    figures = _figures(seeded, admin)
    doctor = next(row for row in figures.users_by_role if row.role == "doctor")
    assert (doctor.active, doctor.inactive) == (9, 1)
    assert figures.total_users == 34
    assert figures.active_departments == 4


def test_logins_and_failures_today(actors, seeded):
    admin = actors[Role.ADMIN]
    assert _figures(seeded, admin).logins_today == len(actors)  # the fixture logged each role in once
    login_token(seeded, DEMO_EMAIL[Role.LAB])
    _fail_login(seeded, "nobody@example.org")
    _fail_login(seeded, DEMO_EMAIL[Role.PATIENT], times=5)  # the fifth locks the account
    _fail_login(seeded, DEMO_EMAIL[Role.PATIENT])  # refused while locked
    figures = _figures(seeded, admin)
    assert figures.logins_today == len(actors) + 1
    assert figures.failed_logins_today == 1 + 5 + 1
    assert figures.lockouts_today == 1


def test_yesterdays_logins_do_not_count(actors, seeded, monkeypatch):
    # The trail cannot be edited, so yesterday is made by moving "today" forward a day.
    admin = actors[Role.ADMIN]
    _fail_login(seeded, "nobody@example.org")
    monkeypatch.setattr(localtime, "utcnow", lambda: utcnow() + timedelta(days=1))
    figures = _figures(seeded, admin)
    assert (figures.logins_today, figures.failed_logins_today) == (0, 0)


def test_a_new_hospital_with_one_admin(empty_hospital):
    with session_scope(engine=empty_hospital) as s:
        s.add(User(email="root@hms.example", full_name="Root", role=Role.ADMIN,
                   password_hash=passwords.hash_password(STRONG_PASSWORD)))
        s.commit()
    admin = resolve(empty_hospital, login_token(empty_hospital, "root@hms.example", STRONG_PASSWORD))
    figures = _figures(empty_hospital, admin)
    assert figures.total_users == 1
    assert (figures.logins_today, figures.failed_logins_today, figures.lockouts_today) == (1, 0, 0)
    assert figures.active_departments == 0


def _dashboard_refused(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "dashboard.admin", lambda s: dashboards.admin_figures(session=s, actor=actor))


def test_only_admin_sees_the_figures(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _dashboard_refused(seeded, actors, role)
    assert_refused(seeded, None, "dashboard.admin", lambda s: dashboards.admin_figures(session=s, actor=None),
                   error=SessionExpired)
