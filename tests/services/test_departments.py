"""Departments: created, renamed, deactivated and reactivated by admin only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuditEvent, Department, User
from hms_app.services.administration import departments, users
from hms_app.services.core.errors import Conflict, NotFound, SessionExpired, ValidationError
from tests.services.helpers import (
    STRONG_PASSWORD,
    assert_refused,
    audit_events,
    snapshot,
    table_count,
)

pytestmark = pytest.mark.db

NON_ADMIN = [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS]


def _list(engine, actor, **kwargs):
    with session_scope(write=False, engine=engine) as s:
        return departments.list_departments(session=s, actor=actor, **kwargs)


def _by_name(engine, actor) -> dict[str, departments.DepartmentRow]:
    return {row.name: row for row in _list(engine, actor)}


def _create(engine, actor, name) -> int:
    with session_scope(engine=engine) as s:
        return departments.create_department(session=s, actor=actor, name=name)


def _rename(engine, actor, department_id, name) -> None:
    with session_scope(engine=engine) as s:
        departments.rename_department(session=s, actor=actor, department_id=department_id, name=name)


def _set_active(engine, actor, department_id, active) -> None:
    with session_scope(engine=engine) as s:
        departments.set_department_active(session=s, actor=actor, department_id=department_id, active=active)


def test_every_role_sees_the_departments_with_their_doctors(actors, seeded):
    for role in Role:
        rows = _list(seeded, actors[role])
        assert [r.name for r in rows] == sorted(r.name for r in rows)
        assert {r.name: r.doctors for r in rows} == {
            "Cardiology": 2, "Dermatology": 2, "General Medicine": 2, "Orthopedics": 2, "Pediatrics": 2}
        assert {r.status for r in rows} == {"Active"}


def test_doctor_counts_leave_out_deactivated_doctors(actors, seeded):
    with session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=actors[Role.ADMIN], user_id=actors[Role.DOCTOR].user_id)
    assert _by_name(seeded, actors[Role.ADMIN])["Cardiology"].doctors == 1


def test_admin_creates_a_department(actors, seeded):
    admin = actors[Role.ADMIN]
    department_id = _create(seeded, admin, "  Accident   and Emergency ")
    row = _by_name(seeded, admin)["Accident and Emergency"]
    assert (row.id, row.is_active, row.doctors) == (department_id, True, 0)
    [event] = audit_events(seeded, action="department.create")
    assert (event.actor_id, event.entity_type, event.entity_id, event.detail) == (
        admin.user_id, "department", str(department_id), "Accident and Emergency")


def test_department_names_are_unique_whatever_their_case(actors, seeded):
    admin = actors[Role.ADMIN]
    before = snapshot(seeded)
    audit_before = table_count(seeded, AuditEvent)
    for name in ["Cardiology", "cardiology", "  CARDIOLOGY  ", "General  medicine"]:
        with pytest.raises(Conflict, match="already exists"):
            _create(seeded, admin, name)
    for name in ["", "   ", "x" * 81, None]:
        with pytest.raises(ValidationError):
            _create(seeded, admin, name)
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_before


def test_rename(actors, seeded):
    admin = actors[Role.ADMIN]
    rows = _by_name(seeded, admin)
    cardiology = rows["Cardiology"].id
    _rename(seeded, admin, cardiology, "Cardiology and Vascular")
    assert "Cardiology and Vascular" in _by_name(seeded, admin)
    [event] = audit_events(seeded, action="department.rename")
    assert (event.entity_id, event.detail) == (str(cardiology), "Cardiology -> Cardiology and Vascular")
    # A department may change only the case of its own name...
    _rename(seeded, admin, cardiology, "CARDIOLOGY AND VASCULAR")
    assert _by_name(seeded, admin)["CARDIOLOGY AND VASCULAR"].id == cardiology
    # ...but not take another's, in any case.
    before = snapshot(seeded)
    with pytest.raises(Conflict):
        _rename(seeded, admin, cardiology, "dermatology")
    with pytest.raises(ValidationError):
        _rename(seeded, admin, cardiology, " ")
    assert snapshot(seeded) == before


def test_renaming_an_unknown_department_is_not_found_and_audited(actors, seeded):
    admin = actors[Role.ADMIN]
    for department_id in (9999, "abc", None):
        assert_refused(seeded, admin, "department.rename",
                       lambda s, d=department_id: departments.rename_department(
                           session=s, actor=admin, department_id=d, name="Anything"),
                       error=NotFound)


def test_deactivate_and_reactivate(actors, seeded):
    admin = actors[Role.ADMIN]
    dermatology = _by_name(seeded, admin)["Dermatology"].id
    _set_active(seeded, admin, dermatology, False)
    row = _by_name(seeded, admin)["Dermatology"]
    assert (row.is_active, row.status) == (False, "Inactive")
    assert "Dermatology" not in {r.name for r in _list(seeded, admin, include_inactive=False)}
    with pytest.raises(Conflict, match="already inactive"):
        _set_active(seeded, admin, dermatology, False)

    # No new doctor may join it while it is inactive.
    form = users.StaffForm(full_name="Dr. New", email="dr.new@hms.example", role="doctor",
                           password=STRONG_PASSWORD, department_id=str(dermatology), consultation_fee="90")
    with pytest.raises(ValidationError), session_scope(engine=seeded) as s:
        users.create_staff_user(session=s, actor=admin, form=form)

    _set_active(seeded, admin, dermatology, True)
    assert _by_name(seeded, admin)["Dermatology"].is_active
    with pytest.raises(Conflict, match="already active"):
        _set_active(seeded, admin, dermatology, True)
    with session_scope(engine=seeded) as s:
        users.create_staff_user(session=s, actor=admin, form=form)

    events = [(e.action, e.entity_id, e.detail) for e in audit_events(seeded) if e.action.startswith("department.")]
    assert events == [
        ("department.deactivate", str(dermatology), "Dermatology"),
        ("department.reactivate", str(dermatology), "Dermatology"),
    ]


def test_set_active_on_an_unknown_department_is_not_found(actors, seeded):
    admin = actors[Role.ADMIN]
    assert_refused(seeded, admin, "department.deactivate",
                   lambda s: departments.set_department_active(session=s, actor=admin, department_id=9999,
                                                               active=False),
                   error=NotFound)


def _only_admin_manages_departments(seeded, actors, role):
    actor = actors[role]
    cardiology = _by_name(seeded, actor)["Cardiology"].id
    assert_refused(seeded, actor, "department.create",
                   lambda s: departments.create_department(session=s, actor=actor, name="Oncology"))
    assert_refused(seeded, actor, "department.rename",
                   lambda s: departments.rename_department(session=s, actor=actor, department_id=cardiology,
                                                           name="Heart"))
    assert_refused(seeded, actor, "department.deactivate",
                   lambda s: departments.set_department_active(session=s, actor=actor,
                                                               department_id=cardiology, active=False))
    with seeded.begin() as conn:
        conn.execute(sa.update(Department).where(Department.id == cardiology).values(is_active=False))
    assert_refused(seeded, actor, "department.reactivate",
                   lambda s: departments.set_department_active(session=s, actor=actor,
                                                               department_id=cardiology, active=True))


def test_only_admin_manages_departments(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_admin_manages_departments(seeded, actors, role)


def test_no_session_no_departments(seeded):
    assert_refused(seeded, None, "department.create",
                   lambda s: departments.create_department(session=s, actor=None, name="Oncology"),
                   error=SessionExpired)
    assert_refused(seeded, None, "department.list",
                   lambda s: departments.list_departments(session=s, actor=None), error=SessionExpired)


def test_doctor_counts_follow_the_user_rows_active_flag(actors, seeded):
    # The count reads each doctor's account, so accounts switched off by any path drop out.
    with seeded.begin() as conn:
        conn.execute(sa.update(User).where(User.role == "doctor").values(is_active=False))
    assert {r.doctors for r in _list(seeded, actors[Role.ADMIN])} == {0}
