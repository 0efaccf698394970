"""The patients and staff CSV kinds: each column's rules, repeated imports, and who may import them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import LineOutcome, Role
from hms_app.db.models import Counter, DoctorProfile, PatientProfile, SourceRecord, User
from hms_app.services.core import counters, passwords
from hms_app.services.core.errors import Conflict, HMSError, PermissionDenied, ValidationError
from hms_app.services.golive import csv_import
from hms_app.services.golive.kinds import csv_kinds
from hms_app.services.golive.people_kinds import NO_EMAIL_DOMAIN

pytestmark = pytest.mark.db


def _row(engine, actor, kind, **row):
    with session_scope(engine=engine) as s:
        result = csv_kinds()[kind].import_row(session=s, actor=actor, row=row, job_id=None)
        s.commit()
        return result


def _patient(engine, mrn) -> tuple[User, PatientProfile]:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                         .where(PatientProfile.mrn == mrn)).one()


def test_a_patient_without_email_gets_a_placeholder_address_and_no_usable_password(seeded, actors):
    result = _row(seeded, actors[Role.ADMIN], "patients", mrn="mrn-930001", given_name="Amina", family_name="Yusuf",
                  birth_date="1980-04-23", sex="F", phone="+44 20 7946 0000", insurer="NHM", policy_number="P1")
    assert result.outcome is LineOutcome.CREATED
    assert result.record == "MRN-930001"
    user, profile = _patient(seeded, "MRN-930001")
    assert user.email == f"mrn-930001@{NO_EMAIL_DOMAIN}"
    assert user.full_name == "Amina Yusuf"
    assert user.must_change_password
    assert not passwords.verify_password("", user.password_hash)
    assert (str(profile.sex), profile.insurer, profile.policy_number) == ("female", "NHM", "P1")


def test_a_patient_by_source_id_gets_a_new_record_number_and_is_found_again(seeded, actors):
    admin = actors[Role.ADMIN]
    first = _row(seeded, admin, "patients", source_id="OLD-1", full_name="Lena Park", birth_date="1990-01-01",
                 email="lena.park@example.org")
    assert first.outcome is LineOutcome.CREATED
    assert first.record.startswith("MRN-")
    again = _row(seeded, admin, "patients", source_id="OLD-1", full_name="Lena Park", birth_date="1990-01-01",
                 email="lena.park@example.org")
    assert (again.outcome, again.record) == (LineOutcome.UNCHANGED, first.record)
    moved = _row(seeded, admin, "patients", source_id="OLD-1", full_name="Lena Park", birth_date="1990-01-02")
    assert moved.outcome is LineOutcome.UPDATED
    with session_scope(write=False, engine=seeded) as s:
        link = s.get(SourceRecord, ("csv:patients", "Patient", "OLD-1"))
    assert link.entity_type == "patient"
    assert link.entity_id == _patient(seeded, first.record)[0].id


def test_an_imported_number_of_our_own_form_moves_the_counter_past_it(seeded, actors):
    _row(seeded, actors[Role.ADMIN], "patients", mrn="MRN-990000", full_name="A B", birth_date="1990-01-01")
    with session_scope(engine=seeded) as s:
        assert counters.next_mrn(s) == "MRN-990001"
        assert s.get(Counter, "mrn").value == 990001


@pytest.mark.parametrize(("row", "message"), [
    ({"full_name": "A B", "birth_date": "1990-01-01"}, "record number"),
    ({"mrn": "X1", "birth_date": "1990-01-01"}, "name"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "01/02/1990"}, "1980-04-23"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "2990-01-01"}, "future"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "1990-01-01", "sex": "dragon"}, "female"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "1990-01-01", "phone": "call me"}, "phone"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "1990-01-01", "email": "not-an-address"}, "valid email"),
    ({"mrn": "X1", "full_name": "A B", "birth_date": "1990-01-01", "email": "ADMIN@hms.example"}, "already exists"),
    ({"mrn": "X" * 21, "full_name": "A B", "birth_date": "1990-01-01"}, "at most 20"),
    ({"mrn": "X1", "full_name": "A\x00B", "birth_date": "1990-01-01"}, "control"),
])
def test_a_bad_patient_line_is_refused_with_a_message(seeded, actors, row, message):
    with pytest.raises((ValidationError, Conflict), match=message):
        _row(seeded, actors[Role.ADMIN], "patients", **row)


def test_an_mrn_and_source_id_of_two_patients_conflict(seeded, actors):
    admin = actors[Role.ADMIN]
    _row(seeded, admin, "patients", mrn="MRN-930010", full_name="A B", birth_date="1990-01-01")
    _row(seeded, admin, "patients", source_id="S-2", full_name="C D", birth_date="1990-01-01")
    with pytest.raises(Conflict):
        _row(seeded, admin, "patients", mrn="MRN-930010", source_id="S-2", full_name="A B", birth_date="1990-01-01")


STAFF = {"email": "r.osei@hospital.example", "full_name": "Dr Rita Osei", "role": "doctor", "department": "cardiology",
             "specialty": "Heart failure", "consultation_fee": "120.50", "slot_minutes": "30"}


def test_a_doctor_is_created_in_an_existing_department_and_updated_by_email(seeded, actors):
    admin = actors[Role.ADMIN]
    assert _row(seeded, admin, "staff", **STAFF).outcome is LineOutcome.CREATED
    assert _row(seeded, admin, "staff", **STAFF).outcome is LineOutcome.UNCHANGED
    assert _row(seeded, admin, "staff", **{**STAFF, "consultation_fee": "130"}).outcome is LineOutcome.UPDATED
    with session_scope(write=False, engine=seeded) as s:
        user = s.execute(sa.select(User).where(User.email == STAFF["email"])).scalar_one()
        doctor = s.get(DoctorProfile, user.id)
    assert user.role == Role.DOCTOR
    assert user.must_change_password
    assert user.email_confirmed_at is not None
    assert (doctor.consultation_fee_cents, doctor.slot_minutes, doctor.specialty) == (13000, 30, "Heart failure")


@pytest.mark.parametrize(("row", "message"), [
    ({**STAFF, "role": "admin"}, "Administrator accounts are not imported"),
    ({**STAFF, "role": "patient"}, "Enter the role"),
    ({**STAFF, "department": "Astrology"}, "no active department named Astrology"),
    ({**STAFF, "department": ""}, "needs a department"),
    ({**STAFF, "consultation_fee": "lots"}, "amount"),
    ({**STAFF, "slot_minutes": "2"}, "between 5 and 240"),
    ({**STAFF, "email": "lab@hms.example", "role": "pharmacy"}, "does not change roles"),
    ({**STAFF, "email": "maria.garcia@patients.example"}, "does not change roles"),
])
def test_a_bad_staff_line_is_refused_with_a_message(seeded, actors, row, message):
    with pytest.raises(HMSError, match=message):
        _row(seeded, actors[Role.ADMIN], "staff", **row)


def test_other_staff_roles_need_no_department(seeded, actors):
    result = _row(seeded, actors[Role.ADMIN], "staff", email="new.lab@hospital.example", full_name="N L", role="Lab")
    assert result.outcome is LineOutcome.CREATED


@pytest.mark.parametrize("kind", ["patients", "staff"])
@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT])
def test_no_other_role_may_import_people(seeded, actors, kind, role):
    data = csv_import.template_csv(csv_kinds()[kind]).encode()
    with pytest.raises(PermissionDenied), session_scope(engine=seeded) as s:
        csv_import.run_csv(session=s, actor=actors[role], kind=csv_kinds()[kind], data=data)
