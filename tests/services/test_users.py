"""The admin's user list and the staff account life cycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuditEvent, Department, DoctorProfile, User
from hms_app.db.types import utcnow
from hms_app.services.administration import users
from hms_app.services.core import numbers, passwords
from hms_app.services.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SessionExpired,
    ValidationError,
)
from tests.services.helpers import (
    STRONG_PASSWORD,
    assert_refused,
    audit_events,
    login_token,
    resolve,
    snapshot,
    table_count,
)

pytestmark = pytest.mark.db

NON_ADMIN = [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS]
DEMO_USERS = 34


def _user(engine, user_id=None, email=None) -> User:
    with session_scope(write=False, engine=engine) as s:
        if user_id is not None:
            return s.get(User, user_id)
        return s.execute(sa.select(User).where(User.email == email)).scalar_one()


def _id_of(engine, email) -> int:
    return _user(engine, email=email).id


def _department_id(engine, name) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(Department.id).where(Department.name == name)).scalar_one()


def _list(engine, actor, **kwargs):
    with session_scope(write=False, engine=engine) as s:
        return users.list_users(session=s, actor=actor, **kwargs)


def _staff_form(**changes) -> users.StaffForm:
    form = users.StaffForm(full_name="Robin Newhire", email="robin.newhire@hms.example", role="lab",
                           password=STRONG_PASSWORD)
    return replace(form, **changes)


def _create(engine, actor, form):
    with session_scope(engine=engine) as s:
        return users.create_staff_user(session=s, actor=actor, form=form)


# --- list_users -------------------------------------------------------------------------------


def test_list_users_pages_in_sql(actors, seeded):
    admin = actors[Role.ADMIN]
    everyone = _list(seeded, admin, page_size=100)
    assert everyone.total == len(everyone.rows) == DEMO_USERS
    pages = [_list(seeded, admin, page=n, page_size=5) for n in range(1, 9)]
    assert [len(p.rows) for p in pages] == [5, 5, 5, 5, 5, 5, 4, 0]
    assert {p.total for p in pages} == {DEMO_USERS}
    assert pages[0].page_count == 7
    assert [r.id for p in pages for r in p.rows] == [r.id for r in everyone.rows]


def test_list_users_shows_what_the_table_needs(actors, seeded):
    admin = actors[Role.ADMIN]
    rows = {r.email: r for r in _list(seeded, admin, page_size=100).rows}
    doctor = rows["amelia.hart@hms.example"]
    assert (doctor.role, doctor.role_label, doctor.unit, doctor.status) == ("doctor", "Doctor", "Cardiology", "Active")
    assert rows["lab@hms.example"].unit == "Laboratory"
    assert rows["maria.garcia@patients.example"].unit == ""
    assert rows["admin@hms.example"].last_login != "never"  # the actors fixture logged in
    assert rows["james.smith@patients.example"].last_login == "never"
    assert not any(hasattr(r, "password_hash") for r in rows.values())


def test_list_users_searches_name_and_email(actors, seeded):
    admin = actors[Role.ADMIN]
    for search, expected in [
        ("hart", {"amelia.hart@hms.example"}),
        ("AMELIA", {"amelia.hart@hms.example"}),
        ("  garcia ", {"maria.garcia@patients.example"}),
        ("Maria.Garcia@Patients", {"maria.garcia@patients.example"}),
        ("no such person", set()),
    ]:
        page = _list(seeded, admin, search=search, page_size=100)
        assert {r.email for r in page.rows} == expected, search
        assert page.total == len(expected)
    staff = _list(seeded, admin, search="@hms.example", page_size=100)
    assert staff.total == 14
    assert {r.role for r in staff.rows} == {"admin", "accounts", "doctor", "lab", "pharmacy"}


def test_like_wildcards_in_the_search_are_literal(actors, seeded):
    admin = actors[Role.ADMIN]
    assert _list(seeded, admin, search="%").total == 0
    assert _list(seeded, admin, search="_").total == 0
    assert _list(seeded, admin, search="a%a").total == 0
    assert _list(seeded, admin, search="\\").total == 0
    _create(seeded, admin, _staff_form(full_name="Pat 100% Sure_Thing"))
    assert [r.full_name for r in _list(seeded, admin, search="100%").rows] == ["Pat 100% Sure_Thing"]
    assert [r.full_name for r in _list(seeded, admin, search="e_t").rows] == ["Pat 100% Sure_Thing"]
    assert _list(seeded, admin, search="%").total == 1


def test_list_users_filters_by_role(actors, seeded):
    admin = actors[Role.ADMIN]
    expected = {Role.DOCTOR: 10, Role.PATIENT: 20, Role.ADMIN: 1, Role.LAB: 1}
    for role, count in expected.items():
        page = _list(seeded, admin, role=role.value, page_size=100)
        assert page.total == count
        assert {r.role for r in page.rows} == {role.value}
    page = _list(seeded, admin, role="doctor", search="cardio")
    assert page.total == 0  # the department is not searched; names and emails are
    with pytest.raises(ValidationError):
        _list(seeded, admin, role="superuser")


def test_list_users_sorts_on_an_allowed_column(actors, seeded):
    admin = actors[Role.ADMIN]
    by_email = [r.email for r in _list(seeded, admin, sort="email", page_size=100).rows]
    assert by_email == sorted(by_email)
    by_email_desc = [r.email for r in _list(seeded, admin, sort="email", descending=True, page_size=100).rows]
    assert by_email_desc == by_email[::-1]
    # Pages of a descending sort continue each other.
    first = _list(seeded, admin, sort="email", descending=True, page=1, page_size=10).rows
    second = _list(seeded, admin, sort="email", descending=True, page=2, page_size=10).rows
    assert [r.email for r in first + second] == by_email_desc[:20]
    by_role = [r.role for r in _list(seeded, admin, sort="role", page_size=100).rows]
    assert by_role == sorted(by_role)


def test_an_unknown_sort_column_falls_back_to_the_name(actors, seeded):
    admin = actors[Role.ADMIN]
    default = [r.id for r in _list(seeded, admin, sort="full_name", page_size=100).rows]
    assert default != [r.id for r in _list(seeded, admin, sort="email", page_size=100).rows]
    for sort in ["password_hash", "full_name; DROP TABLE user", "", None, "id desc", "__class__"]:
        assert [r.id for r in _list(seeded, admin, sort=sort, page_size=100).rows] == default, sort
    assert table_count(seeded, User) == DEMO_USERS


def test_paging_arguments_from_a_client_are_clamped(actors, seeded):
    admin = actors[Role.ADMIN]
    assert _list(seeded, admin, page=0, page_size=5).page == 1
    assert _list(seeded, admin, page=-3, page_size=5).page == 1
    assert _list(seeded, admin, page="abc", page_size="x").page_size == 20
    assert _list(seeded, admin, page_size=10_000).page_size == 100
    assert len(_list(seeded, admin, page_size=0).rows) == 1


def _only_admin_lists_users(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "user.list", lambda s: users.list_users(session=s, actor=actor))


def test_only_admin_lists_users(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_admin_lists_users(seeded, actors, role)


# --- create_staff_user --------------------------------------------------------------------


def test_admin_creates_non_clinical_staff(actors, seeded):
    admin = actors[Role.ADMIN]
    for role in ["admin", "accounts", "lab", "pharmacy"]:
        user_id = _create(seeded, admin, _staff_form(role=role, email=f"New.{role}@HMS.example"))
        user = _user(seeded, user_id)
        assert (user.email, user.role, user.is_active) == (f"new.{role}@hms.example", role, True)
        assert user.must_change_password
        assert passwords.verify_password(STRONG_PASSWORD, user.password_hash)
        event = audit_events(seeded, action="user.create")[-1]
        assert (event.actor_id, event.entity_id, event.detail) == (admin.user_id, str(user_id), f"role {role}")
        with session_scope(write=False, engine=seeded) as s:
            assert s.get(DoctorProfile, user_id) is None
        # The first login must choose a new password.
        assert resolve(seeded, login_token(seeded, user.email, STRONG_PASSWORD)).must_change_password
    assert len(audit_events(seeded, action="user.create")) == 4
    assert _list(seeded, admin, search="new.", page_size=100).total == 4


def test_admin_creates_a_doctor_in_an_active_department(actors, seeded):
    admin = actors[Role.ADMIN]
    department_id = _department_id(seeded, "Pediatrics")
    user_id = _create(seeded, admin, _staff_form(role="doctor", department_id=str(department_id),
                                                 specialty="  Neonatal care ", consultation_fee="1,120.5",
                                                 slot_minutes="30"))
    with session_scope(write=False, engine=seeded) as s:
        profile = s.get(DoctorProfile, user_id)
    assert (profile.department_id, profile.specialty, profile.consultation_fee_cents, profile.slot_minutes) == (
        department_id, "Neonatal care", 112050, 30)


DOCTOR_REFUSALS = [
    ({"department_id": ""}, "needs a department"),
    ({"department_id": "abc"}, "needs a department"),
    ({"department_id": "-1"}, "needs a department"),
    ({"department_id": "9999"}, "active department"),
    ({"consultation_fee": ""}, "consultation fee"),
    ({"consultation_fee": "abc"}, "consultation fee"),
    ({"consultation_fee": "-5"}, "consultation fee"),
    ({"consultation_fee": "12.345"}, "consultation fee"),
    ({"consultation_fee": "1e3"}, "consultation fee"),
    ({"consultation_fee": "2000000"}, "too large"),
    ({"slot_minutes": "4"}, "between 5 and 240"),
    ({"slot_minutes": "241"}, "between 5 and 240"),
    ({"slot_minutes": "twenty"}, "whole number"),
]


def test_a_doctor_needs_an_active_department_and_a_valid_fee(actors, seeded):
    form = _staff_form(role="doctor", department_id=str(_department_id(seeded, "Cardiology")),
                       consultation_fee="150")
    before = snapshot(seeded)
    audit_before = table_count(seeded, AuditEvent)
    for changes, message in DOCTOR_REFUSALS:
        with pytest.raises(ValidationError, match=message):
            _create(seeded, actors[Role.ADMIN], replace(form, **changes))
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_before
    # The same form with the fields right goes through.
    assert _create(seeded, actors[Role.ADMIN], form)


def test_a_doctor_cannot_join_a_deactivated_department(actors, seeded):
    department_id = _department_id(seeded, "Dermatology")
    with seeded.begin() as conn:
        conn.execute(sa.update(Department).where(Department.id == department_id).values(is_active=False))
    before = snapshot(seeded)
    with pytest.raises(ValidationError, match="active department"):
        _create(seeded, actors[Role.ADMIN], _staff_form(role="doctor", department_id=str(department_id),
                                                        consultation_fee="100"))
    assert snapshot(seeded) == before


STAFF_REFUSALS = [
    ({"role": "patient"}, ValidationError),
    ({"role": "superuser"}, ValidationError),
    ({"role": ""}, ValidationError),
    ({"role": None}, ValidationError),
    ({"email": "not an email"}, ValidationError),
    ({"full_name": " "}, ValidationError),
    ({"password": "too-short"}, ValidationError),
    ({"password": "robin.newhire@hms.example"}, ValidationError),
    ({"password": "é" * 37}, ValidationError),
    ({"email": "LAB@hms.example"}, Conflict),
    ({"email": "maria.garcia@patients.example"}, Conflict),
]


def test_refused_staff_accounts_write_nothing(actors, seeded):
    before = snapshot(seeded)
    audit_before = table_count(seeded, AuditEvent)
    for changes, error in STAFF_REFUSALS:
        with pytest.raises(error):
            _create(seeded, actors[Role.ADMIN], _staff_form(**changes))
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_before


def _only_admin_creates_staff(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "user.create",
                   lambda s: users.create_staff_user(session=s, actor=actor, form=_staff_form(role="admin")))


def test_only_admin_creates_staff(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_admin_creates_staff(seeded, actors, role)


def test_no_session_no_staff(seeded):
    assert_refused(seeded, None, "user.create",
                   lambda s: users.create_staff_user(session=s, actor=None, form=_staff_form(role="admin")),
                   error=SessionExpired)


# --- deactivate, reactivate, reset -----------------------------------------------------------


def test_deactivate_and_reactivate_are_audited(actors, seeded):
    admin = actors[Role.ADMIN]
    patient = actors[Role.PATIENT]
    with session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id=patient.user_id)
    assert not _user(seeded, patient.user_id).is_active
    [event] = audit_events(seeded, action="user.deactivate")
    assert (event.actor_id, event.entity_id, event.patient_id, event.detail) == (
        admin.user_id, str(patient.user_id), patient.user_id, "1 sessions ended")
    with pytest.raises(Conflict), session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id=patient.user_id)

    # A deactivated, locked account comes back unlocked.
    with seeded.begin() as conn:
        conn.execute(sa.update(User).where(User.id == patient.user_id)
                     .values(failed_logins=3, locked_until=utcnow() + timedelta(minutes=10)))
    with session_scope(engine=seeded) as s:
        users.reactivate_user(session=s, actor=admin, user_id=patient.user_id)
    user = _user(seeded, patient.user_id)
    assert (user.is_active, user.failed_logins, user.locked_until) == (True, 0, None)
    [event] = audit_events(seeded, action="user.reactivate")
    assert (event.actor_id, event.entity_id) == (admin.user_id, str(patient.user_id))
    with pytest.raises(Conflict), session_scope(engine=seeded) as s:
        users.reactivate_user(session=s, actor=admin, user_id=patient.user_id)
    assert resolve(seeded, login_token(seeded, patient.email)).user_id == patient.user_id


def test_a_staff_deactivation_does_not_name_a_patient(actors, seeded):
    with session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=actors[Role.ADMIN], user_id=actors[Role.LAB].user_id)
    [event] = audit_events(seeded, action="user.deactivate")
    assert event.patient_id is None


def test_admin_cannot_deactivate_themselves(actors, seeded):
    admin = actors[Role.ADMIN]
    before = snapshot(seeded)
    with pytest.raises(ValidationError, match="your own account"), session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id=admin.user_id)
    assert snapshot(seeded) == before
    assert _user(seeded, admin.user_id).is_active


def test_unknown_accounts_answer_not_found_and_are_audited(actors, seeded):
    admin = actors[Role.ADMIN]
    for operation in ("deactivate", "reactivate", "reset_password"):
        call = getattr(users, f"{operation}_user" if operation != "reset_password" else operation)
        for user_id in (99999, "abc", None, "1; DROP TABLE user"):
            error = assert_refused(seeded, admin, f"user.{operation}",
                                   lambda s, call=call, user_id=user_id: call(session=s, actor=admin, user_id=user_id),
                                   error=NotFound)
            assert "does not exist" in str(error)


def test_reset_password_gives_a_temporary_password_and_ends_sessions(actors, seeded):
    admin = actors[Role.ADMIN]
    doctor = actors[Role.DOCTOR]
    old_hash = _user(seeded, doctor.user_id).password_hash
    with seeded.begin() as conn:
        conn.execute(sa.update(User).where(User.id == doctor.user_id)
                     .values(failed_logins=4, locked_until=utcnow() + timedelta(minutes=10)))
    with session_scope(engine=seeded) as s:
        temporary = users.reset_password(session=s, actor=admin, user_id=doctor.user_id)
    passwords.check_password_policy(temporary, email=doctor.email)
    user = _user(seeded, doctor.user_id)
    assert user.password_hash != old_hash
    assert temporary not in user.password_hash
    assert (user.must_change_password, user.failed_logins, user.locked_until) == (True, 0, None)
    [event] = audit_events(seeded, action="user.reset_password")
    assert (event.actor_id, event.entity_id, event.detail) == (admin.user_id, str(doctor.user_id), "1 sessions ended")
    assert temporary not in event.detail
    assert resolve(seeded, login_token(seeded, doctor.email, temporary)).must_change_password

    with session_scope(engine=seeded) as s:
        second = users.reset_password(session=s, actor=admin, user_id=doctor.user_id)
    assert second != temporary


def _only_admin_deactivates_reactivates_and_resets(seeded, actors, role):
    actor = actors[role]
    target = actors[Role.PATIENT if role is not Role.PATIENT else Role.LAB].user_id
    for operation in ("deactivate", "reactivate", "reset_password"):
        if operation == "reactivate":
            with seeded.begin() as conn:
                conn.execute(sa.update(User).where(User.id == target).values(is_active=False))
        call = getattr(users, f"{operation}_user" if operation != "reset_password" else operation)
        # Neither on someone else's account nor on their own.
        for user_id in (target, actor.user_id):
            assert_refused(seeded, actor, f"user.{operation}",
                           lambda s, call=call, user_id=user_id: call(session=s, actor=actor, user_id=user_id))


def test_only_admin_deactivates_reactivates_and_resets(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_admin_deactivates_reactivates_and_resets(seeded, actors, role)


# --- profiles and money --------------------------------------------------------------------


def test_own_profile_of_a_patient_is_audited_as_a_clinical_read(actors, seeded):
    patient = actors[Role.PATIENT]
    with session_scope(engine=seeded) as s:
        profile = users.get_own_profile(session=s, actor=patient)
    assert (profile.mrn, profile.email, profile.role_label) == ("MRN-000001", patient.email, "Patient")
    assert profile.phone.startswith("+44")
    [event] = audit_events(seeded, action="profile.view")
    assert (event.actor_id, event.patient_id) == (patient.user_id, patient.user_id)


def test_own_profile_of_a_doctor_names_the_department_and_fee(actors, seeded):
    with session_scope(engine=seeded) as s:
        profile = users.get_own_profile(session=s, actor=actors[Role.DOCTOR])
    assert (profile.unit, profile.consultation_fee, profile.slot_minutes) == ("Cardiology", "£150.00", 20)
    assert profile.mrn == ""


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0", 0), ("120", 12000), ("120.5", 12050), ("120.50", 12050), ("1,000.05", 100005), (" 7 ", 700)],
)
def test_parse_money(text, cents):
    assert numbers.parse_money(text, "fee") == cents


@pytest.mark.parametrize("text", ["", "-1", ".5", "1.234", "abc", "1e2", "12,34.5.6", "1.2.3", "²"])
def test_parse_money_refuses(text):
    with pytest.raises(ValidationError):
        numbers.parse_money(text, "fee")


def test_permission_denied_is_the_error_for_other_roles(actors, seeded):
    with pytest.raises(PermissionDenied), session_scope(engine=seeded) as s:
        users.list_users(session=s, actor=actors[Role.PATIENT])
