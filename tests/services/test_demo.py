"""The demo hospital: what it loads, and that loading it twice changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import cli
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    Appointment,
    AuditEvent,
    Department,
    DoctorProfile,
    Invoice,
    LabOrder,
    LabResult,
    LabTest,
    PatientProfile,
    Prescription,
    User,
)
from hms_app.db.types import utcnow
from hms_app.operations import demo, demo_day
from hms_app.services.booking import appointments
from hms_app.services.core import audit
from hms_app.services.core.localtime import day_span_utc, local_today
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy
from tests.services.helpers import login_token, resolve, snapshot, table_count

pytestmark = pytest.mark.db


def _rows(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).all()


def test_seed_loads_the_demo_hospital(empty_hospital):
    with session_scope(engine=empty_hospital) as s:
        assert demo.seed_demo(s, work_in_progress=False) is True
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


def _day_under_way(engine) -> dict:
    with session_scope(engine=engine) as s:
        assert demo.seed_demo(s, billing_history=False) is True
    sofia = _rows(engine, sa.select(User.id).where(User.full_name == demo_day.FIRST_PATIENT))[0][0]
    hart = _rows(engine, sa.select(User.id).where(User.email == demo_day.CLINIC_DOCTOR))[0][0]
    now, today = utcnow(), local_today()
    sofias = _rows(engine, sa.select(Appointment.starts_at, Appointment.status).where(Appointment.patient_id == sofia))
    results = _rows(engine, sa.select(LabTest.code, LabOrder.status, LabResult.flag,
                                      LabResult.released_at.is_not(None)).select_from(LabOrder)
                    .join(LabTest, LabTest.id == LabOrder.test_id)
                    .outerjoin(LabResult, LabResult.order_id == LabOrder.id).where(LabOrder.patient_id == sofia)
                    .order_by(LabTest.code))
    todays = _rows(engine, sa.select(Appointment.starts_at, Appointment.status).where(
        Appointment.doctor_id == hart, Appointment.starts_at >= day_span_utc(today)[0],
        Appointment.starts_at < day_span_utc(today)[1]))
    return {"sofia": sofia, "hart": hart, "now": now, "appointments": sofias, "results": results, "today": todays}


def test_the_demo_day_is_under_way_for_every_role(empty_hospital):
    day = _day_under_way(empty_hospital)
    # The first patient: a visit behind her and one ahead; results, one of them high; a
    # prescription being dispensed; an invoice partly paid.
    assert [(starts < day["now"], status) for starts, status in sorted(day["appointments"])] == [
        (True, "completed"), (False, "confirmed"), (False, "confirmed")]
    # The high troponin waits for Dr. Hart's review; the normal cholesterol reached Sofia at once.
    assert day["results"] == [("CHOL", "completed", "normal", True), ("HBA1C", "in_progress", None, False),
                              ("TROP", "completed", "high", False)]
    assert _rows(empty_hospital, sa.select(Prescription.status).where(Prescription.patient_id == day["sofia"])) == [
        ("partly_dispensed",)]
    [(status, total, paid)] = _rows(empty_hospital, sa.select(Invoice.status, Invoice.total_cents, Invoice.paid_cents)
                                    .where(Invoice.patient_id == day["sofia"]))
    assert status == "partly_paid"
    assert 0 < paid < total

    # The lab, the pharmacy and the doctor start on work: a stat order first, a prescription to
    # verify, today's clinic of five, a request to answer.
    lab_actor, pharmacist, doctor = (resolve(empty_hospital, login_token(empty_hospital, email))
                                     for email in ("lab@hms.example", "pharmacy@hms.example", demo_day.CLINIC_DOCTOR))
    with session_scope(engine=empty_hospital) as s:
        worklist = lab.worklist(session=s, actor=lab_actor)
        queue = pharmacy.prescription_queue(session=s, actor=pharmacist)
        requests = appointments.pending_requests(session=s, actor=doctor)
        to_review = lab.results_to_review_count(session=s, actor=doctor)
    assert [row.priority for row in worklist.rows][:2] == ["stat", "stat"]
    assert worklist.total == 3
    assert sorted(row.status for row in queue.rows) == ["issued", "partly dispensed"]
    assert len(day["today"]) == len(demo_day.TODAYS_CLINIC)
    assert all(status == "completed" for starts, status in day["today"] if starts + timedelta(minutes=20) <= day["now"])
    assert all(status == "confirmed" for starts, status in day["today"] if starts > day["now"])
    assert requests.total >= 1
    assert to_review == 1
    with session_scope(write=False, engine=empty_hospital) as s:
        assert audit.verify_chain(s).ok


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
