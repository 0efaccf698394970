"""The demo hospital: what it loads, and that loading it twice changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app import cli
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuditEvent, Department, DoctorProfile, PatientProfile, User
from hms_app.operations import demo
from hms_app.services.core import audit
from tests.services.helpers import login_token, resolve, snapshot, table_count

pytestmark = pytest.mark.db


def _rows(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).all()


def test_seed_loads_the_demo_hospital(empty_hospital):
    with session_scope(engine=empty_hospital) as s:
        assert demo.seed_demo(s) is True
    assert sorted(name for (name,) in _rows(empty_hospital, sa.select(Department.name))) == sorted(demo.DEPARTMENTS)
    assert len(demo.DEPARTMENTS) == 5
    roles = dict(_rows(empty_hospital, sa.select(User.role, sa.func.count()).group_by(User.role)))
    assert roles == {"admin": 1, "accounts": 1, "lab": 1, "pharmacy": 1, "doctor": 10, "patient": 20}

    per_department = dict(_rows(empty_hospital, sa.select(Department.name, sa.func.count())
                                .join(DoctorProfile, DoctorProfile.department_id == Department.id)
                                .group_by(Department.name)))
    assert per_department == dict.fromkeys(demo.DEPARTMENTS, 2)
    doctors_without_profile = _rows(empty_hospital, sa.select(User.id).outerjoin(
        DoctorProfile, DoctorProfile.user_id == User.id).where(User.role == "doctor", DoctorProfile.user_id.is_(None)))
    assert doctors_without_profile == []

    mrns = sorted(m for (m,) in _rows(empty_hospital, sa.select(PatientProfile.mrn)))
    assert mrns == [f"MRN-{n:06d}" for n in range(1, 21)]
    patients_without_profile = _rows(empty_hospital, sa.select(User.id).outerjoin(
        PatientProfile, PatientProfile.user_id == User.id).where(User.role == "patient", PatientProfile.user_id.is_(None)))
    assert patients_without_profile == []

    accounts = {(role, email, name) for role, email, name in demo.demo_accounts()}
    assert accounts == {(r, e, n) for r, e, n in _rows(empty_hospital, sa.select(User.role, User.email, User.full_name))}
    assert all(not must for (must,) in _rows(empty_hospital, sa.select(User.must_change_password)))

    [event] = _rows(empty_hospital, sa.select(AuditEvent.action, AuditEvent.detail))
    assert event == ("demo.seed", "34 accounts, 5 departments")


def test_every_demo_account_logs_in_with_the_demo_password(seeded):
    for role, email, _name in demo.demo_accounts():
        actor = resolve(seeded, login_token(seeded, email.upper()))
        assert actor.role is Role(role)
        assert actor.email == email


def test_a_second_seed_changes_nothing(seeded):
    before = snapshot(seeded)
    audit_rows = table_count(seeded, AuditEvent)
    with session_scope(engine=seeded) as s:
        assert demo.seed_demo(s) is False
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_rows
    with session_scope(write=False, engine=seeded) as s:
        assert audit.verify_chain(s).ok


def test_seed_refuses_a_database_that_holds_any_user(empty_hospital):
    with session_scope(engine=empty_hospital) as s:
        s.add(User(email="first@hms.example", full_name="First", role=Role.ADMIN, password_hash="x"))
        s.commit()
    before = snapshot(empty_hospital)
    with session_scope(engine=empty_hospital) as s:
        assert demo.seed_demo(s) is False
    assert snapshot(empty_hospital) == before


def test_hms_seed_command(engine, capsys):
    assert cli.main(["seed"]) == 0
    assert demo.DEMO_PASSWORD in capsys.readouterr().out
    assert table_count(engine, User) == 34
    assert cli.main(["seed"]) == 1
    assert "already holds users" in capsys.readouterr().err
    assert cli.main(["seed", "--if-empty"]) == 0
    assert table_count(engine, User) == 34
