"""Accounts: the admin's user list and the staff account life cycle."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app.db.enums import ROLE_LABELS, STAFF_UNITS, Permission, Role
from hms_app.db.models import Department, DoctorProfile, PatientProfile, SecondFactor, User
from hms_app.db.types import utcnow
from hms_app.services.administration import auth
from hms_app.services.care.clinical import sex_label
from hms_app.services.core import audit, emails, passwords
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import get_by_id
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import format_date, format_local
from hms_app.services.core.numbers import format_money, parse_int, parse_money
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import checked_line, escape_like, storable

STAFF_ROLES = (Role.ADMIN, Role.ACCOUNTS, Role.DOCTOR, Role.LAB, Role.PHARMACY)
TAKEN_MESSAGE = N_("An account with this email already exists.")
LOOKALIKE_MESSAGE = N_("An account with an email address that looks the same (letters of another alphabet, or "
                     "look-alike characters) already exists. Use a different address.")
"""Marked here; refusals carry them translated, ``_(TAKEN_MESSAGE)``."""


@dataclass(frozen=True)
class UserRow:
    id: int
    full_name: str
    email: str
    role: str
    role_label: str
    unit: str
    is_active: bool
    status: str
    last_login: str
    second_factor: bool = False
    """An authenticator is enrolled (admin may reset it)."""


_SORTABLE = {
    "full_name": User.full_name,
    "email": User.email,
    "role": User.role,
    "status": User.is_active,
    "last_login": User.last_login_at,
}


def list_users(
    *,
    session: Session,
    actor: Actor,
    search: str = "",
    role: str = "",
    page: int = 1,
    page_size: int = 20,
    sort: str = "full_name",
    descending: bool = False,
) -> Page[UserRow]:
    require(session, actor, Permission.USERS_MANAGE, action="user.list")
    page, page_size = clamp_page(page, page_size)
    query = (
        sa.select(User, Department.name, SecondFactor.enrolled_at)
        .outerjoin(DoctorProfile, DoctorProfile.user_id == User.id)
        .outerjoin(Department, Department.id == DoctorProfile.department_id)
        .outerjoin(SecondFactor, SecondFactor.user_id == User.id)
    )
    term = storable(str(search or "").strip()[:100], _("search"))
    if term:
        like = f"%{escape_like(term.lower())}%"
        query = query.where(
            sa.or_(sa.func.lower(User.full_name).like(like, escape="\\"), User.email.like(like, escape="\\"))
        )
    if role:
        if not isinstance(role, str) or role not in {r.value for r in Role}:
            raise ValidationError(_("Choose a role from the list."))
        query = query.where(User.role == role)
    query = query.order_by(order_by(_SORTABLE, sort, descending, "full_name"), User.id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([_user_row(user, dept, enrolled is not None) for user, dept, enrolled in rows], total, page, page_size)


def _user_row(user: User, department: str | None, second_factor: bool = False) -> UserRow:

    role = Role(user.role)
    return UserRow(
        id=user.id,
        full_name=user.full_name,
        email=emails.shown_address(user.email),
        role=role.value,
        role_label=_(ROLE_LABELS[role]),
        unit=department or _staff_unit(role),
        is_active=user.is_active,
        status=_("Active") if user.is_active else _("Deactivated"),
        last_login=format_local(user.last_login_at) or _("never"),
        second_factor=second_factor,
    )


def _staff_unit(role: Role) -> str:
    """The unit a staff role works in (not a doctor's: their department), in the reader's language."""
    unit = STAFF_UNITS.get(role, "")
    return _(unit) if unit else ""


@dataclass(frozen=True)
class StaffForm:
    full_name: str
    email: str
    role: str
    password: str
    department_id: str = ""
    specialty: str = ""
    consultation_fee: str = ""
    slot_minutes: str = "20"


def create_staff_user(*, session: Session, actor: Actor, form: StaffForm) -> int:
    """Admin creates a staff account; it must choose a new password at first login."""
    require(session, actor, Permission.USERS_MANAGE, action="user.create")
    if not isinstance(form.role, str) or form.role not in {r.value for r in STAFF_ROLES}:
        raise ValidationError(_("Choose a staff role: administrator, accounts, doctor, lab or pharmacy."))
    role = Role(form.role)
    full_name = checked_line(form.full_name, _("full name"), limit=120)
    email = emails.normalise(form.email)
    passwords.check_password_policy(str(form.password or ""), email=email)
    doctor: DoctorProfile | None = None
    if role is Role.DOCTOR:
        if not str(form.department_id or "").isdigit():
            raise ValidationError(_("A doctor needs a department."))
        department = get_by_id(session, Department, form.department_id)
        if department is None or not department.is_active:
            raise ValidationError(_("Choose an active department for the doctor."))
        doctor = DoctorProfile(
            user_id=0,
            department_id=department.id,
            specialty=storable(str(form.specialty or "").strip()[:120], _("specialty")),
            consultation_fee_cents=parse_money(form.consultation_fee, _("consultation fee")),
            slot_minutes=parse_int(form.slot_minutes, _("slot length in minutes"), low=5, high=240),
        )
    skeleton = emails.skeleton(email)
    taken = session.execute(select(User.email).where(sa.or_(User.email == email, User.email_skeleton == skeleton))).first()
    if taken:
        raise Conflict(_(TAKEN_MESSAGE if taken.email == email else LOOKALIKE_MESSAGE))
    # The admin who makes the account vouches for its address: no confirmation link.
    user = User(email=email, email_skeleton=skeleton, email_confirmed_at=utcnow(), full_name=full_name, role=role,
                must_change_password=True, password_hash=passwords.hash_password(str(form.password)))
    session.add(user)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict(_(TAKEN_MESSAGE)) from None
    if doctor is not None:
        doctor.user_id = user.id
        session.add(doctor)
    audit.record(session, actor, "user.create", entity_type="user", entity_id=user.id,
                 detail=f"role {role.value}")
    session.commit()
    return user.id


def _get_user_for_admin(session: Session, actor: Actor, user_id: object, action: str) -> User:
    return access_by_id(session, actor, User, user_id, action=action, missing=N_("That account does not exist."),
                        entity_type="user")


def deactivate_user(*, session: Session, actor: Actor, user_id: int) -> None:
    """Disable an account and end its open sessions at once."""
    require(session, actor, Permission.USERS_MANAGE, action="user.deactivate")
    user = _get_user_for_admin(session, actor, user_id, "user.deactivate")
    if user.id == actor.user_id:
        raise ValidationError(_("You cannot deactivate your own account."))
    if not user.is_active:
        raise Conflict(_("That account is already deactivated."))
    user.is_active = False
    session.add(user)
    ended = auth.revoke_user_sessions(session, user.id)
    audit.record(session, actor, "user.deactivate", entity_type="user", entity_id=user.id,
                 patient_id=user.id if user.role == Role.PATIENT else None, detail=f"{ended} sessions ended")  # i18n: not shown
    session.commit()


def reactivate_user(*, session: Session, actor: Actor, user_id: int) -> None:
    require(session, actor, Permission.USERS_MANAGE, action="user.reactivate")
    user = _get_user_for_admin(session, actor, user_id, "user.reactivate")
    if user.is_active:
        raise Conflict(_("That account is already active."))
    user.is_active = True
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    audit.record(session, actor, "user.reactivate", entity_type="user", entity_id=user.id,
                 patient_id=user.id if user.role == Role.PATIENT else None)
    session.commit()


def reset_password(*, session: Session, actor: Actor, user_id: int) -> str:
    """Give an account a temporary password that must be changed at the next login.

    Returns:
        The temporary password, to be shown once to the admin and handed over in person.
    """
    require(session, actor, Permission.USERS_MANAGE, action="user.reset_password")
    user = _get_user_for_admin(session, actor, user_id, "user.reset_password")
    temporary = passwords.temporary_password()
    user.password_hash = passwords.hash_password(temporary)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    ended = auth.revoke_user_sessions(session, user.id)
    audit.record(session, actor, "user.reset_password", entity_type="user", entity_id=user.id,
                 patient_id=user.id if user.role == Role.PATIENT else None, detail=f"{ended} sessions ended")  # i18n: not shown
    session.commit()
    return temporary


@dataclass(frozen=True)
class Profile:
    user_id: int
    full_name: str
    email: str
    role: str
    role_label: str
    unit: str
    specialty: str = ""
    consultation_fee: str = ""
    slot_minutes: int = 0
    mrn: str = ""
    birth_date: str = ""
    sex: str = ""
    phone: str = ""
    address: str = ""
    emergency_contact: str = ""
    insurance: str = ""


def get_own_profile(*, session: Session, actor: Actor) -> Profile:
    """The logged-in user's own profile, for their dashboard."""
    require(session, actor, Permission.PROFILE_OWN, action="profile.view", allow_pending_password_change=True)
    user = session.get(User, actor.user_id)
    role = Role(user.role)
    base = {"user_id": user.id, "full_name": user.full_name, "email": emails.shown_address(user.email),
            "role": role.value,
            "role_label": _(ROLE_LABELS[role]), "unit": _staff_unit(role)}
    if role is Role.DOCTOR:
        row = session.execute(
            sa.select(DoctorProfile, Department.name).join(Department, Department.id == DoctorProfile.department_id)
            .where(DoctorProfile.user_id == user.id)
        ).first()
        if row:
            doctor, department = row
            base.update(unit=department, specialty=doctor.specialty, slot_minutes=doctor.slot_minutes,
                        consultation_fee=format_money(doctor.consultation_fee_cents))
    if role is Role.PATIENT:
        patient = session.get(PatientProfile, user.id)
        if patient:
            base.update(
                unit="",
                mrn=patient.mrn,
                birth_date=format_date(patient.birth_date),
                sex=sex_label(patient.sex),
                phone=patient.phone,
                address=patient.address,
                emergency_contact=" ".join(x for x in (patient.emergency_contact_name, patient.emergency_contact_phone) if x),
                insurance=" / ".join(x for x in (patient.insurer, patient.policy_number) if x),
            )
            audit.record(session, actor, "profile.view", entity_type="patient_profile", entity_id=user.id,
                         patient_id=user.id)
            session.commit()
    return Profile(**base)
