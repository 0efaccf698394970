"""Races: many patients registering at once, and "only one may win" rules."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.models import AuditEvent, Department, PatientProfile, User
from hms_app.services.administration import auth, departments, permissions
from hms_app.services.core import audit
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import Conflict
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import STRONG_PASSWORD, login_token, resolve

pytestmark = pytest.mark.db

THREADS = 20
FORM = auth.Registration(full_name="Racing Patient", email="", password=STRONG_PASSWORD,
                         birth_date="1990-01-01", phone="+44 20 7946 0000")


def _all_at_once(count: int, work):
    """Run ``work(i)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait(timeout=30)
        try:
            return work(i)
        except Exception as error:  # collected and checked by the caller
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _register(index: int) -> int:
    with session_scope() as s:
        return auth.register_patient(session=s, visitor=Anonymous("198.51.100.7"),
                                     form=replace(FORM, email=f"racer{index}@example.org"))


def _mrns(engine, user_ids) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(PatientProfile.mrn).where(PatientProfile.user_id.in_(user_ids))).scalars().all()


def _chain_ok(engine) -> bool:
    with session_scope(write=False, engine=engine) as s:
        return audit.verify_chain(s).ok


def test_twenty_simultaneous_registrations_get_distinct_mrns(seeded):
    results = _all_at_once(THREADS, _register)
    assert all(isinstance(r, int) for r in results), results
    mrns = _mrns(seeded, results)
    assert sorted(mrns) == [f"MRN-{n:06d}" for n in range(21, 21 + THREADS)]
    assert _chain_ok(seeded)


def test_simultaneous_first_registrations_in_an_empty_hospital(empty_hospital):
    # The MRN counter row does not exist yet: the racers must not trip over creating it.
    results = _all_at_once(THREADS, _register)
    assert all(isinstance(r, int) for r in results), results
    assert sorted(_mrns(empty_hospital, results)) == [f"MRN-{n:06d}" for n in range(1, 1 + THREADS)]
    assert _chain_ok(empty_hospital)


def test_one_email_registered_at_once_by_many_has_one_winner(empty_hospital):
    results = _all_at_once(10, lambda _: _register(0))
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    # The others made no account, and are answered as the winner is (registration_answer).
    assert all(r is None for r in results if not isinstance(r, int)), results
    with empty_hospital.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(PatientProfile)).scalar_one() == 1
    assert _chain_ok(empty_hospital)


def test_logins_and_writes_at_once_keep_the_audit_chain_intact(seeded):
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL["admin"]))

    def work(i):
        if i % 2:
            return login_token(seeded, DEMO_EMAIL["patient"])
        with session_scope() as s:
            return departments.create_department(session=s, actor=admin, name=f"Ward {i}")

    results = _all_at_once(12, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    with session_scope(write=False, engine=seeded) as s:
        report = audit.verify_chain(s)
    assert report.ok, report


def test_thirty_two_audited_writes_at_once_leave_every_lane_intact(seeded):
    # On PostgreSQL the appends spread over the audit lanes, each behind its own lock; on SQLite
    # they queue on the write lock. Either way every row is chained and the trail verifies.
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL["admin"]))

    def work(i):
        with session_scope() as s:
            return departments.create_department(session=s, actor=admin, name=f"Racing Ward {i}")

    results = _all_at_once(32, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    with seeded.connect() as conn:
        created = conn.execute(sa.select(sa.func.count()).select_from(AuditEvent)
                               .where(AuditEvent.action == "department.create")).scalar_one()
    assert created == 32
    with session_scope(write=False, engine=seeded) as s:
        report = audit.verify_chain(s)
    assert report.ok, report


def test_one_department_name_created_at_once_by_many_has_one_winner(seeded):
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL["admin"]))
    names = ["Oncology", "oncology", "ONCOLOGY", "Oncology", " Oncology "] * 2

    def create(i):
        with session_scope() as s:
            return departments.create_department(session=s, actor=admin, name=names[i])

    results = _all_at_once(len(names), create)
    assert len([r for r in results if isinstance(r, int)]) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int)), results
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Department)
                            .where(sa.func.lower(Department.name) == "oncology")).scalar_one() == 1


def test_one_permission_granted_at_once_by_many_has_one_winner(seeded):
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL["admin"]))

    def grant(_):
        with session_scope() as s:
            permissions.grant_permission(session=s, actor=admin, role="lab", permission="reports.view")
        return True

    results = _all_at_once(8, grant)
    assert results.count(True) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r is not True), results
    assert _chain_ok(seeded)


def test_one_permission_revoked_at_once_by_many_has_one_winner(seeded):
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL["admin"]))

    def revoke(_):
        with session_scope() as s:
            permissions.revoke_permission(session=s, actor=admin, role="accounts", permission="reports.view")
        return True

    results = _all_at_once(8, revoke)
    assert results.count(True) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r is not True), results
    assert _chain_ok(seeded)
