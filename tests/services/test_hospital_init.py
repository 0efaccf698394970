"""``hms init``'s service: an empty, migrated database becomes a real hospital with one admin, and
nothing else; anything else is refused with nothing written. The hospital's row becomes the source
of the settings, and the admin's getting-started checklist counts what is set up."""

from __future__ import annotations

import dataclasses
from datetime import date, time
from zoneinfo import ZoneInfo

import pyotp
import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    AuditEvent,
    Department,
    DoctorAvailability,
    DoctorProfile,
    Hospital,
    LabTest,
    Medicine,
    PatientProfile,
    RolePermission,
    StockBatch,
    User,
)
from hms_app.services.administration import auth, hospital, second_factor
from hms_app.services.core import audit, passwords
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import (
    Conflict,
    LoginFailed,
    PasswordChangeRequired,
    ValidationError,
)
from hms_app.services.core.localtime import format_date
from hms_app.services.core.numbers import format_money
from hms_app.services.reference.formulary import MEDICINES
from hms_app.services.reference.lab_catalog import LAB_TESTS
from tests.conftest import login_as
from tests.services.helpers import STRONG_PASSWORD, assert_refused, snapshot, table_count
from tests.services.test_concurrency import _all_at_once

pytestmark = pytest.mark.db

VISITOR = Anonymous("203.0.113.50")
FORM = hospital.HospitalForm(name="St Brigid's Hospital", timezone="Asia/Kolkata", locale="en-IN",
                             currency="INR", admin_email="  Chief.Admin@StBrigid.example ", admin_name="Nora Quinn")


@pytest.fixture
def hospital_settings(monkeypatch):
    """The settings a test's loading of a hospital changes, put back after it."""
    for name in ("HOSPITAL_NAME", "TIMEZONE", "LOCALE", "CURRENCY"):
        monkeypatch.setattr(settings, name, getattr(settings, name))


def _init(engine, form=FORM, **kwargs) -> hospital.InitialisedHospital:
    with session_scope(engine=engine) as s:
        return hospital.initialise_hospital(session=s, form=form, **kwargs)


def _refused(engine, form, error, match: str) -> None:
    before = snapshot(engine)
    audit_rows = table_count(engine, AuditEvent)
    with pytest.raises(error, match=match):
        _init(engine, form)
    assert snapshot(engine) == before
    assert table_count(engine, AuditEvent) == audit_rows


def _counts(engine) -> dict[str, int]:
    return {model.__tablename__: table_count(engine, model)
            for model in (User, Hospital, Department, DoctorProfile, PatientProfile, Medicine, LabTest, StockBatch)}


def test_an_empty_database_becomes_a_hospital_with_one_admin_and_nothing_else(engine):
    made = _init(engine)
    assert made.admin_email == "chief.admin@stbrigid.example"
    assert made.profile.name == "St Brigid's Hospital"
    assert (made.profile.timezone, made.profile.locale, made.profile.currency) == ("Asia/Kolkata", "en-IN", "INR")
    assert made.starter_catalog is None
    assert _counts(engine) == {"user": 1, "hospital": 1, "department": 0, "doctor_profile": 0,
                               "patient_profile": 0, "medicine": 0, "lab_test": 0, "stock_batch": 0}
    with session_scope(write=False, engine=engine) as s:
        admin = s.execute(sa.select(User)).scalar_one()
        assert (admin.role, admin.full_name, admin.is_active, admin.must_change_password) == (
            Role.ADMIN, "Nora Quinn", True, True)
        assert admin.email_confirmed_at is not None
        assert passwords.verify_password(made.one_time_password, admin.password_hash)
        assert made.one_time_password not in admin.password_hash
        assert second_factor.required_for_role(s, Role.ADMIN)
        granted = set(s.execute(sa.select(RolePermission.role, RolePermission.permission)).all())
        assert ("admin", "users.manage") in granted
        assert ("admin", "data.import") in granted
        events = s.execute(sa.select(AuditEvent)).scalars().all()
        assert [(e.action, e.actor_email, e.entity_type) for e in events] == [
            ("hospital.initialise", "hms init", "hospital")]
        assert "admin account" in events[0].detail
        assert audit.verify_chain(s).ok


def test_the_one_time_password_is_random_and_readable():
    made = {passwords.temporary_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        groups = password.split("-")
        assert [len(g) for g in groups] == [6, 6, 6], password
        assert not set("".join(groups)) & set("0O1lI"), password


def test_the_starter_catalog_is_loaded_only_when_asked(engine):
    made = _init(engine, starter_catalog=True)
    assert made.starter_catalog == {"medicines": len(MEDICINES), "lab_tests": len(LAB_TESTS)}
    assert table_count(engine, Medicine) == len(MEDICINES)
    assert table_count(engine, LabTest) == len(LAB_TESTS)
    assert table_count(engine, StockBatch) == 0
    with session_scope(write=False, engine=engine) as s:
        assert "starter catalog" in s.execute(sa.select(AuditEvent.detail)).scalar_one()


def test_the_admin_must_change_the_password_and_enrol_an_authenticator(engine):
    made = _init(engine)
    with pytest.raises(LoginFailed), session_scope(engine=engine) as s:
        auth.login(session=s, visitor=VISITOR, email=made.admin_email, password="Wrong-password-1")
    with session_scope(engine=engine) as s:
        first = auth.login(session=s, visitor=VISITOR, email=made.admin_email, password=made.one_time_password)
    assert first.token == ""
    assert first.challenge
    assert first.must_enrol
    with session_scope(engine=engine) as s:
        enrolment = auth.start_enrolment(session=s, visitor=VISITOR, challenge=first.challenge)
    with session_scope(engine=engine) as s:
        done = auth.confirm_enrolment(session=s, visitor=VISITOR, challenge=first.challenge,
                                      code=pyotp.TOTP(enrolment.secret).now())
    assert len(done.recovery_codes) == 10
    actor = done.result.actor
    assert actor.role is Role.ADMIN
    assert actor.must_change_password
    # Until the password is changed, the admin can do nothing else.
    with session_scope(write=False, engine=engine) as s, pytest.raises(PasswordChangeRequired):
        hospital.setup_overview(session=s, actor=actor)
    with session_scope(engine=engine) as s:
        auth.change_password(session=s, actor=actor, current_password=made.one_time_password,
                             new_password=STRONG_PASSWORD)
    with session_scope(engine=engine) as s:
        assert s.execute(sa.select(User.must_change_password)).scalar_one() is False


@pytest.mark.parametrize(("field", "value", "match"), [
    ("name", "", "Enter the hospital's name"),
    ("name", "x" * 121, "at most 120"),
    ("name", "St\x00Mary", "control or invalid"),
    ("timezone", "Mars/Olympus_Mons", "not a time zone"),
    ("timezone", "../../etc/passwd", "not a time zone"),
    ("timezone", "", "not a time zone"),
    ("locale", "xx-QQ", "not a locale"),
    ("locale", "", "not a locale"),
    ("currency", "XYZ", "not a currency"),
    ("currency", "pounds", "not a currency"),
    ("admin_email", "not-an-address", "valid email"),
    ("admin_email", "ad\u200bmin@example.org", "invisible"),
    ("admin_name", "", "administrator's name"),
])
def test_bad_settings_are_refused_and_nothing_is_written(engine, field, value, match):
    _refused(engine, dataclasses.replace(FORM, **{field: value}), ValidationError, match)


def test_settings_are_written_in_their_one_form(engine):
    made = _init(engine, dataclasses.replace(FORM, name="  St   Brigid's ", locale="de_DE", currency=" eur "))
    assert (made.profile.name, made.profile.locale, made.profile.currency) == ("St Brigid's", "de-DE", "EUR")


def test_a_database_with_any_account_is_refused(seeded):
    _refused(seeded, FORM, Conflict, "already holds 34 user accounts")


def test_a_second_init_is_refused(engine):
    _init(engine)
    _refused(engine, dataclasses.replace(FORM, admin_email="other@example.org"), Conflict,
             "already holds the hospital St Brigid's Hospital")


def test_of_two_inits_at_once_one_wins(engine):
    outcomes = _all_at_once(2, lambda i: _init(engine, dataclasses.replace(FORM, admin_email=f"racer{i}@example.org")))
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "InitialisedHospital"]
    assert table_count(engine, User) == 1
    assert table_count(engine, Hospital) == 1


def test_a_database_not_migrated_to_the_end_is_refused(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0016'"))
    _refused(engine, FORM, Conflict, "run `hms migrate` first")


def test_the_hospital_row_becomes_the_settings(engine, hospital_settings):
    with session_scope(write=False, engine=engine) as s:
        assert hospital.apply_hospital_settings(s) is None
    before = (settings.HOSPITAL_NAME, settings.TIMEZONE, settings.CURRENCY)
    assert hospital.load_hospital_settings(engine) is None
    assert before == (settings.HOSPITAL_NAME, settings.TIMEZONE, settings.CURRENCY)
    _init(engine)
    loaded = hospital.load_hospital_settings(engine)
    assert loaded is not None
    assert loaded.name == "St Brigid's Hospital"
    assert settings.HOSPITAL_NAME == "St Brigid's Hospital"
    assert ZoneInfo("Asia/Kolkata") == settings.TIMEZONE
    assert str(settings.LOCALE) == "en_IN"
    assert settings.CURRENCY == "INR"
    # Readers take them at call time: amounts in rupees, written the Indian way.
    assert format_money(12_345_678_90) == "₹1,23,45,678.90"


def test_a_database_without_the_hospital_table_keeps_the_environment(tmp_path, hospital_settings, monkeypatch):
    missing = tmp_path / "never-made.db"
    monkeypatch.setattr(settings, "DATABASE_URL", f"sqlite:///{missing}")
    assert hospital.load_hospital_settings() is None
    assert not missing.exists(), "reading the settings must not create the database"
    bare = tmp_path / "bare.db"
    sa.create_engine(f"sqlite:///{bare}").connect().close()
    monkeypatch.setattr(settings, "DATABASE_URL", f"sqlite:///{bare}")
    assert hospital.load_hospital_settings() is None


# --- the getting-started checklist ------------------------------------------------------------


def _admin_actor(engine):
    made = _init(engine)
    with session_scope(engine=engine) as s:
        s.execute(sa.update(User).values(must_change_password=False))
        s.commit()
    with engine.begin() as conn:  # the login here is not what is tested
        conn.execute(sa.text("UPDATE role_login_policy SET second_factor_required = false"))
    return login_as(engine, made.admin_email, made.one_time_password)


def _overview(engine, actor) -> hospital.SetupOverview:
    with session_scope(write=False, engine=engine) as s:
        return hospital.setup_overview(session=s, actor=actor)


def test_a_new_hospital_has_every_step_to_do(engine):
    actor = _admin_actor(engine)
    o = _overview(engine, actor)
    assert o.remaining == 7
    assert [(s.key, s.done, s.href) for s in o.steps] == [
        ("departments", False, "/admin/departments"), ("staff", False, "/admin/users"),
        ("schedules", False, "/admin/schedules"), ("lab_catalog", False, "/lab/catalog"),
        ("formulary", False, "/pharmacy/stock"), ("prices", False, "/accounts/prices"),
        ("patients", False, "/admin/import")]
    assert [s.summary for s in o.steps] == [
        "0 active departments", "0 staff accounts besides administrators", "No doctors yet", "0 active lab tests",
        "0 medicines, 0 lots in stock", "No doctors yet, 0 other services priced", "0 patients"]
    assert o.hospital.name == "St Brigid's Hospital"
    assert (o.hospital.timezone, o.hospital.locale, o.hospital.currency) == ("Asia/Kolkata", "en-IN", "INR")
    with session_scope(write=False, engine=engine) as s:
        when = format_date(s.get(Hospital, 1).initialised_at)
    assert o.hospital.source == f"Set once by the hms init command on {when}; not editable here."


def test_the_checklist_counts_what_is_set_up(engine):
    actor = _admin_actor(engine)
    with session_scope(engine=engine) as s:
        cardiology = Department(name="Cardiology")
        s.add_all([cardiology, Department(name="Closed", is_active=False)])
        s.flush()
        doctors = [User(email=f"dr{i}@x.example", full_name=f"Dr {i}", role=Role.DOCTOR, password_hash="x")
                   for i in range(2)]
        s.add_all(doctors)
        s.flush()
        s.add_all([DoctorProfile(user_id=doctors[0].id, department_id=cardiology.id, consultation_fee_cents=5000),
                   DoctorProfile(user_id=doctors[1].id, department_id=cardiology.id),
                   DoctorAvailability(doctor_id=doctors[0].id, weekday=0, start_time=time(9), end_time=time(12)),
                   DoctorAvailability(doctor_id=doctors[0].id, weekday=1, start_time=time(9), end_time=time(12))])
        s.commit()
    o = _overview(engine, actor)
    steps = {s.key: s for s in o.steps}
    assert (steps["departments"].summary, steps["departments"].done) == ("1 active department", True)
    assert (steps["staff"].summary, steps["staff"].done) == ("2 staff accounts besides administrators", True)
    assert (steps["schedules"].summary, steps["schedules"].done) == ("1 of 2 doctors have weekly hours", False)
    assert (steps["prices"].summary, steps["prices"].done) == ("1 of 2 doctors have a consultation fee, 0 other services priced", False)
    assert o.remaining == 5
    with session_scope(engine=engine) as s:
        s.execute(sa.update(User).where(User.email == "dr1@x.example").values(is_active=False))
        medicine = Medicine(name="Paracetamol", form="tablet", strength="500 mg")
        s.add_all([medicine, LabTest(code="HB", name="Haemoglobin", specimen="blood")])
        s.flush()
        s.add(StockBatch(medicine_id=medicine.id, lot="L1", expiry_date=date(2030, 1, 1), quantity_on_hand=10))
        patient = User(email="p@x.example", full_name="P", role=Role.PATIENT, password_hash="x")
        s.add(patient)
        s.flush()
        s.add(PatientProfile(user_id=patient.id, mrn="MRN-1"))
        s.commit()
    o = _overview(engine, actor)
    assert {s.key: s.summary for s in o.steps} == {
        "departments": "1 active department", "staff": "1 staff account besides administrators",
        "schedules": "1 of 1 doctor has weekly hours", "lab_catalog": "1 active lab test",
        "formulary": "1 medicine, 1 lot in stock", "prices": "1 of 1 doctor has a consultation fee, 0 other services priced",
        "patients": "1 patient"}
    assert o.remaining == 0


def test_the_demo_has_nothing_left_to_do_and_says_where_its_settings_come_from(seeded, actors):
    o = _overview(seeded, actors[Role.ADMIN])
    assert o.remaining == 0
    assert o.hospital.name == settings.HOSPITAL_NAME
    assert o.hospital.source.startswith("From the environment")


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS])
def test_only_admin_sees_the_checklist(seeded, actors, role):
    assert_refused(seeded, actors[role], "hospital.setup_overview",
                   lambda s: hospital.setup_overview(session=s, actor=actors[role]))
