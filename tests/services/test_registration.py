"""A patient registers themselves: medical record number, unique email, policy, validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role, Sex
from hms_app.db.models import AuditEvent, PatientProfile, User
from hms_app.db.types import utcnow
from hms_app.services.administration import auth
from hms_app.services.core import passwords
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed, ValidationError
from tests.services.helpers import (
    IP,
    STRONG_PASSWORD,
    audit_events,
    login_token,
    resolve,
    snapshot,
    table_count,
    unthrottled,
)

pytestmark = pytest.mark.db

FORM = auth.Registration(
    full_name="  Nadia   Rahman ",
    email="Nadia.Rahman@Example.org",
    password=STRONG_PASSWORD,
    birth_date="1991-06-15",
    phone="+44 20 7946 0999",
)


def register(engine, form: auth.Registration = FORM) -> int:
    with session_scope(engine=engine) as s:
        return auth.register_patient(session=s, visitor=Anonymous(IP), form=form)


def mrn_of(engine, user_id: int) -> str:
    with session_scope(write=False, engine=engine) as s:
        return s.get(PatientProfile, user_id).mrn


def _local_today() -> date:
    return utcnow().astimezone(settings.TIMEZONE).date()


def test_registration_creates_a_patient_with_the_next_mrn(seeded):
    user_id = register(seeded)
    with session_scope(write=False, engine=seeded) as s:
        user = s.get(User, user_id)
        profile = s.get(PatientProfile, user_id)
    assert user.email == "nadia.rahman@example.org"
    assert user.full_name == "Nadia Rahman"
    assert user.role == Role.PATIENT
    assert user.is_active
    assert not user.must_change_password
    assert user.password_hash.startswith("$2b$")
    assert STRONG_PASSWORD not in user.password_hash
    assert passwords.verify_password(STRONG_PASSWORD, user.password_hash)
    assert profile.mrn == "MRN-000021"  # after the 20 demo patients
    assert profile.birth_date == date(1991, 6, 15)
    assert profile.phone == "+44 20 7946 0999"
    assert profile.sex == Sex.UNKNOWN

    [event] = audit_events(seeded, action="patient.register")
    assert (event.actor_id, event.actor_email, event.patient_id, event.ip_address) == (
        None, "nadia.rahman@example.org", user_id, IP)

    actor = resolve(seeded, login_token(seeded, "NADIA.RAHMAN@example.org", STRONG_PASSWORD))
    assert actor.user_id == user_id
    assert actor.role is Role.PATIENT


def test_mrns_are_sequential_and_unique(seeded):
    first = register(seeded)
    second = register(seeded, replace(FORM, email="someone.else@example.org"))
    assert (mrn_of(seeded, first), mrn_of(seeded, second)) == ("MRN-000021", "MRN-000022")
    with seeded.connect() as conn:
        mrns = conn.execute(sa.select(PatientProfile.mrn)).scalars().all()
    assert len(mrns) == len(set(mrns)) == 22


def test_the_first_patient_of_an_empty_hospital_gets_mrn_1(empty_hospital):
    assert mrn_of(empty_hospital, register(empty_hospital)) == "MRN-000001"


TAKEN_OR_LOOKALIKE = [
    "maria.garcia@patients.example",
    "Maria.Garcia@Patients.EXAMPLE",
    "  MARIA.GARCIA@patients.example ",
    "maria.garcia@patients.example.",  # a final dot on the domain
    "\uff4daria.garcia@patients.example",  # a full-width m
    "m\u0430ria.garcia@patients.example",  # a Cyrillic a
    "maria.garc\u0456a@patients.example",  # a Cyrillic i
    "rnaria.garcia@patients.example",  # r and n for m
]


@pytest.mark.parametrize("email", TAKEN_OR_LOOKALIKE)
def test_a_taken_or_look_alike_email_makes_no_account_and_is_answered_like_a_new_one(seeded, email):
    before = snapshot(seeded)
    assert register(seeded, replace(FORM, email=email)) is None
    assert snapshot(seeded) == before
    [event] = audit_events(seeded, action="patient.register")
    assert event.outcome == "failed"
    assert event.entity_id == str(_user_id(seeded, "maria.garcia@patients.example"))
    # The one thing the visitor is told does not depend on what happened.
    assert auth.registration_answer() == auth.REGISTERED_MESSAGE
    # The owner's password still works; the visitor's does not open the account.
    resolve(seeded, login_token(seeded, "maria.garcia@patients.example"))
    with pytest.raises(LoginFailed):
        login_token(seeded, email, STRONG_PASSWORD)


def _user_id(engine, email: str) -> int:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(User.id).where(User.email == email)).scalar_one()


def test_a_taken_email_costs_a_password_hash_like_a_new_one(seeded, monkeypatch):
    hashed = []
    real = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password", lambda p: hashed.append(p) or real(p))
    register(seeded, replace(FORM, email="maria.garcia@patients.example"))
    register(seeded)
    assert hashed == [STRONG_PASSWORD, STRONG_PASSWORD]


def test_staff_emails_are_taken_too(seeded):
    before = snapshot(seeded)
    assert register(seeded, replace(FORM, email="Admin@HMS.example")) is None
    assert snapshot(seeded) == before


INVALID = [
    ("password", "Nine-char", "at least 10"),
    ("password", "x" * 73, "72 bytes"),
    ("password", "é" * 37, "72 bytes"),  # 37 characters but 74 bytes
    ("password", "nadia.rahman@example.org", "email"),
    ("password", "NADIA.RAHMAN", "email"),
    ("password", "", "at least 10"),
    ("email", "not-an-email", "valid email"),
    ("email", "two@@example.org", "valid email"),
    ("email", "<script>@example.org", "valid email"),
    ("email", "a" * 250 + "@example.org", "valid email"),
    ("email", "maria.garcia@patients.example\u200b", "invisible or text-direction"),  # zero-width space
    ("email", "maria.garcia@\u202eelpmaxe.stneitap", "invisible or text-direction"),  # right-to-left override
    ("email", "nadia\u200d.rahman@example.org", "invisible or text-direction"),  # zero-width joiner
    ("email", "\ufeffnadia.rahman@example.org", "invisible or text-direction"),  # byte order mark
    ("email", "nadia.rahman@example.org\u2066", "invisible or text-direction"),  # left-to-right isolate
    ("email", "nadia\u3164.rahman@example.org", "invisible or text-direction"),  # Hangul filler
    ("email", "nadia.rahman@example.org..", "valid email"),
    ("full_name", "   ", "full name"),
    ("full_name", "N" * 121, "at most 120"),
    ("birth_date", "15/06/1991", "like 1980-04-23"),
    ("birth_date", "", "like 1980-04-23"),
    ("birth_date", "1880-01-01", "130 years"),
    ("phone", "call me", "phone number"),
    ("phone", "12345", "phone number"),
    ("phone", "+44 20 7946 0000 <b>", "phone number"),
    ("phone", "", "phone number"),
]


def test_invalid_registrations_write_nothing(seeded, monkeypatch):
    unthrottled(monkeypatch)  # more attempts from one address than the limit lets a person make
    before = snapshot(seeded)
    audit_before = table_count(seeded, AuditEvent)
    for field, value, message in INVALID:
        with pytest.raises(ValidationError, match=message):
            register(seeded, replace(FORM, **{field: value}))
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_before
    # No medical record number was spent on a refused registration.
    assert mrn_of(seeded, register(seeded)) == "MRN-000021"


def test_birth_date_may_be_today_but_not_tomorrow(seeded):
    today = _local_today()
    with pytest.raises(ValidationError, match="future"):
        register(seeded, replace(FORM, birth_date=(today + timedelta(days=1)).isoformat()))
    user_id = register(seeded, replace(FORM, birth_date=today.isoformat()))
    with session_scope(write=False, engine=seeded) as s:
        assert s.get(PatientProfile, user_id).birth_date == today


@pytest.mark.parametrize("phone", ["+44 20 7946 0000", "020-7946-0000", "(020) 7946 0000", "123456"])
def test_phone_formats_accepted(empty_hospital, phone):
    user_id = register(empty_hospital, replace(FORM, phone=f"  {phone} "))
    with session_scope(write=False, engine=empty_hospital) as s:
        assert s.get(PatientProfile, user_id).phone == phone


def test_a_multibyte_password_of_72_bytes_works_end_to_end(empty_hospital):
    password = "Zürich-Ålesund-Øresund-" + "é" * 23  # 72 bytes
    assert len(password.encode()) == 72
    register(empty_hospital, replace(FORM, password=password))
    assert resolve(empty_hospital, login_token(empty_hospital, FORM.email, password)).email == FORM.email.lower()
