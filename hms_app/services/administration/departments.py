"""Hospital departments: created, renamed and deactivated by admin."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission
from hms_app.db.models import Department, DoctorProfile, User
from hms_app.services.core import audit
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict
from hms_app.services.core.language import N_, _
from hms_app.services.core.text import checked_line

_PG_NAME_LOCK = 7_310_422  # advisory lock key that serialises department name checks on PostgreSQL


@dataclass(frozen=True)
class DepartmentRow:
    id: int
    name: str
    is_active: bool
    status: str
    doctors: int


def list_departments(*, session: Session, actor: Actor, include_inactive: bool = True) -> list[DepartmentRow]:
    """Every department with its number of active doctors (a hospital has tens, not thousands)."""
    require(session, actor, Permission.PROFILE_OWN, action="department.list")
    doctors = (
        sa.select(sa.func.count())
        .select_from(DoctorProfile)
        .join(User, User.id == DoctorProfile.user_id)
        .where(DoctorProfile.department_id == Department.id, User.is_active)
        .scalar_subquery()
    )
    query = sa.select(Department, doctors).order_by(Department.name)
    if not include_inactive:
        query = query.where(Department.is_active)
    return [
        DepartmentRow(d.id, d.name, d.is_active, _("Active") if d.is_active else _("Inactive"), count)
        for d, count in session.execute(query)
    ]


def _clean(name: object) -> str:
    return checked_line(name, _("department name"), limit=80)


def _ensure_unique(session: Session, name: str, except_id: int | None = None) -> None:
    """``Conflict`` if another department has ``name`` in any letter case.

    The unique constraint in the database is case-sensitive, so concurrent checks are
    serialised: SQLite writers already are (``BEGIN IMMEDIATE``); PostgreSQL takes a
    transaction-level advisory lock held until the commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_NAME_LOCK})
    query = sa.select(Department.id).where(sa.func.lower(Department.name) == name.lower())
    if except_id is not None:
        query = query.where(Department.id != except_id)
    if session.execute(query).first():
        raise Conflict(_("A department named {name} already exists.").format(name=name))


def create_department(*, session: Session, actor: Actor, name: str) -> int:
    require(session, actor, Permission.DEPARTMENTS_MANAGE, action="department.create")
    name = _clean(name)
    _ensure_unique(session, name)
    department = Department(name=name)
    session.add(department)
    session.flush()
    audit.record(session, actor, "department.create", entity_type="department", entity_id=department.id, detail=name)
    session.commit()
    return department.id


def _get(session: Session, actor: Actor, department_id: object, action: str) -> Department:
    return access_by_id(session, actor, Department, department_id, action=action,
                        missing=N_("That department does not exist."), entity_type="department")


def rename_department(*, session: Session, actor: Actor, department_id: int, name: str) -> None:
    require(session, actor, Permission.DEPARTMENTS_MANAGE, action="department.rename")
    department = _get(session, actor, department_id, "department.rename")
    name = _clean(name)
    _ensure_unique(session, name, except_id=department.id)
    old = department.name
    department.name = name
    session.add(department)
    audit.record(session, actor, "department.rename", entity_type="department", entity_id=department.id,
                 detail=f"{old} -> {name}")
    session.commit()


def set_department_active(*, session: Session, actor: Actor, department_id: int, active: bool) -> None:
    """Deactivate (no new doctors or bookings) or reactivate a department."""
    action = "department.reactivate" if active else "department.deactivate"
    require(session, actor, Permission.DEPARTMENTS_MANAGE, action=action)
    department = _get(session, actor, department_id, action)
    if department.is_active == bool(active):
        raise Conflict((_("{name} is already active.") if active else _("{name} is already inactive.")).format(
            name=department.name))
    department.is_active = bool(active)
    session.add(department)
    audit.record(session, actor, action, entity_type="department", entity_id=department.id, detail=department.name)
    session.commit()
