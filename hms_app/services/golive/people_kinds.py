"""CSV kinds of the people a hospital brings: patients and staff (registered into ``kinds.CSV_KINDS``).

Both make accounts the way the rest of HMS does (the address's one written form and its
look-alike check, the registration's birth date and phone rules, the staff form's fee and slot
rules), but with no usable password: ``!`` and random letters, which no bcrypt check matches.
Nobody can log in to an imported account until staff give it a temporary password (admin's
"Reset password" on /admin/users, handed over in person), which must be changed at first login.

Patients are found again by their medical record number, or by the other system's id
(``source_id``, kept as a ``SourceRecord`` of system ``csv:patients``). A patient without an email
address gets ``<mrn>@no-email.invalid``: ``.invalid`` is reserved (RFC 2606) and never delivered.
Staff are found again by their email address. Admin accounts are not imported: each is made on
purpose, one by one. A doctor's department must exist already (a typo would otherwise make a
new department); the departments page makes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app.db.enums import ROLE_LABELS, LineOutcome, Permission, Role, Sex
from hms_app.db.models import Counter, Department, DoctorProfile, PatientProfile, SourceRecord, User
from hms_app.db.types import utcnow
from hms_app.services.administration.auth import clean_phone, parse_birth_date
from hms_app.services.administration.users import LOOKALIKE_MESSAGE, TAKEN_MESSAGE
from hms_app.services.core import counters, emails
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.numbers import parse_int, parse_money
from hms_app.services.core.text import checked_line
from hms_app.services.golive.kinds import Column, CsvKind, RowResult, register

PATIENT_SOURCE = "csv:patients"
NO_EMAIL_DOMAIN = "no-email.invalid"
IMPORTED_STAFF_ROLES = tuple(r for r in Role if r not in (Role.ADMIN, Role.PATIENT))
_SEXES = {"female": Sex.FEMALE, "f": Sex.FEMALE, "male": Sex.MALE, "m": Sex.MALE, "other": Sex.OTHER,
          "o": Sex.OTHER, "unknown": Sex.UNKNOWN, "u": Sex.UNKNOWN, "": Sex.UNKNOWN}
_OUR_MRN = re.compile(r"MRN-(\d{1,12})")


def unusable_password() -> str:
    """A password hash no password matches (not bcrypt's form), unique per account."""
    return "!" + secrets.token_hex(16)


def _text(row: dict[str, str], column: str, label: str, limit: int) -> str | None:
    """The cell's one-line text, or None when the file has no such column (then the field is kept)."""
    if column not in row:
        return None
    return checked_line(row[column], label, limit=limit, required=False)


def _account_email(session: Session, value: str, *, owner_id: int | None) -> tuple[str, str]:
    """The address's written form and skeleton, unless another account has it or one like it."""
    email = emails.normalise(value)
    skeleton = emails.skeleton(email)
    query = select(User.id, User.email).where(sa.or_(User.email == email, User.email_skeleton == skeleton))
    for user_id, taken in session.execute(query):
        if user_id != owner_id:
            raise Conflict(_(TAKEN_MESSAGE if taken == email else LOOKALIKE_MESSAGE))
    return email, skeleton


# --- patients -----------------------------------------------------------------------------------

PATIENT_COLUMNS = (
    Column("mrn", description=N_("The hospital's medical record number; empty: one is given."),
           aliases=("medical record number", "record number", "mrn number"), example="MRN-004711"),
    Column("source_id", description=N_("The patient's id in the system the file comes from."),
           aliases=("source id", "external id", "legacy id", "patient id", "id"), example="OLD-88231"),
    Column("full_name", description=N_("The whole name; or give given_name and family_name."),
           aliases=("name", "patient name", "full name"), example="Amina Yusuf"),
    Column("given_name", aliases=("first name", "given", "forename", "first"), example=""),
    Column("family_name", aliases=("last name", "surname", "family", "last"), example=""),
    Column("birth_date", required=True, description=N_("Year-month-day, like 1980-04-23."),
           aliases=("date of birth", "dob", "birthdate", "born"), example="1980-04-23"),
    Column("sex", description=N_("female, male, other or unknown (F, M, O, U)."), aliases=("gender",), example="female"),
    Column("phone", aliases=("telephone", "mobile", "phone number", "tel"), example="+44 20 7946 0000"),
    Column("email", description=N_("Empty: the account gets a placeholder at no-email.invalid."),
           aliases=("e-mail", "email address", "mail"), example="amina.yusuf@example.org"),
    Column("address", aliases=("home address", "street address"), example="12 Mill Lane, Leeds"),
    Column("emergency_contact_name", aliases=("emergency contact", "next of kin", "kin name"),
           example="Omar Yusuf"),
    Column("emergency_contact_phone", aliases=("emergency phone", "kin phone", "next of kin phone"),
           example="+44 20 7946 0001"),
    Column("insurer", aliases=("insurance", "insurance company", "payer"), example="Northern Health Mutual"),
    Column("policy_number", aliases=("policy", "policy no", "insurance number", "member id"), example="NHM-55102"),
)


def _patient_name(row: dict[str, str]) -> str:
    whole = " ".join(str(row.get("full_name", "")).split())
    if not whole:
        whole = " ".join(" ".join((row.get("given_name", ""), row.get("family_name", ""))).split())
    return checked_line(whole, _("patient's name (full_name, or given_name and family_name)"), limit=120)


def _sex(value: str) -> Sex:
    sex = _SEXES.get(value.strip().lower())
    if sex is None:
        raise ValidationError(_("Enter the sex as female, male, other or unknown (or F, M, O, U)."))
    return sex


def _keep_counter_ahead(session: Session, mrn: str) -> None:
    """An imported number of HMS's own form (``MRN-000123``) moves the counter past it, so the
    numbers given to later patients never collide with it."""
    found = _OUR_MRN.fullmatch(mrn)
    if found:
        counters.next_value(session, "mrn")  # makes the row if it is missing
        session.execute(sa.update(Counter).where(Counter.name == "mrn", Counter.value < int(found[1]))
                        .values(value=int(found[1])))


def _find_patient(session: Session, mrn: str, source_id: str) -> tuple[PatientProfile | None, SourceRecord | None]:
    by_mrn = session.execute(select(PatientProfile).where(PatientProfile.mrn == mrn)).scalar_one_or_none() if mrn else None
    link = session.get(SourceRecord, (PATIENT_SOURCE, "Patient", source_id)) if source_id else None
    by_source = session.get(PatientProfile, link.entity_id) if link else None
    if by_mrn and by_source and by_mrn.user_id != by_source.user_id:
        raise Conflict(_("{mrn} is another patient than source id {source_id} was imported as ({imported_as}).")
                       .format(mrn=mrn, source_id=source_id, imported_as=by_source.mrn))
    return by_mrn or by_source, link


def _row_hash(row: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


def _import_patient(*, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult:
    """Create or update one patient (account and profile) from a line of a patients file."""
    mrn = checked_line(row.get("mrn", ""), _("medical record number"), limit=20, required=False).upper()
    source_id = checked_line(row.get("source_id", ""), _("source id"), limit=200, required=False)
    if not mrn and not source_id:
        raise ValidationError(_("Give the patient a record number (mrn) or the other system's id (source_id), so "
                                "that importing the file again updates this patient instead of adding them twice."))
    full_name = _patient_name(row)
    born = parse_birth_date(row.get("birth_date", ""))
    fields = {
        "birth_date": born,
        "sex": _sex(row["sex"]) if "sex" in row else None,
        "phone": clean_phone(row["phone"], required=False) if "phone" in row else None,
        "address": _text(row, "address", _("address"), 300),
        "emergency_contact_name": _text(row, "emergency_contact_name", _("emergency contact's name"), 120),
        "emergency_contact_phone": (clean_phone(row["emergency_contact_phone"], required=False)
                                    if "emergency_contact_phone" in row else None),
        "insurer": _text(row, "insurer", _("insurer"), 120),
        "policy_number": _text(row, "policy_number", _("policy number"), 60),
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    profile, link = _find_patient(session, mrn, source_id)
    email_text = str(row.get("email", "")).strip()
    if profile is None:
        if mrn:
            _keep_counter_ahead(session, mrn)
        mrn = mrn or counters.next_mrn(session)
        email, skeleton = _account_email(session, email_text or f"{mrn.lower()}@{NO_EMAIL_DOMAIN}", owner_id=None)
        user = User(email=email, email_skeleton=skeleton, email_confirmed_at=utcnow(), full_name=full_name,
                    role=Role.PATIENT, password_hash=unusable_password(), must_change_password=True)
        session.add(user)
        session.flush()
        profile = PatientProfile(user_id=user.id, mrn=mrn, **fields)
        session.add(profile)
        outcome = LineOutcome.CREATED
    else:
        user = session.get(User, profile.user_id)
        if mrn and profile.mrn != mrn:
            raise Conflict(_("Source id {source_id} was imported as {imported_as}, not {mrn}.").format(
                source_id=source_id, imported_as=profile.mrn, mrn=mrn))
        changed = user.full_name != full_name
        user.full_name = full_name
        if email_text:
            email, skeleton = _account_email(session, email_text, owner_id=user.id)
            changed |= user.email != email
            user.email, user.email_skeleton = email, skeleton
        for name, value in fields.items():
            changed |= getattr(profile, name) != value
            setattr(profile, name, value)
        outcome = LineOutcome.UPDATED if changed else LineOutcome.UNCHANGED
    if source_id:
        digest = _row_hash(row)
        if link is None:
            session.add(SourceRecord(system=PATIENT_SOURCE, source_type="Patient", source_id=source_id,  # i18n: not shown
                                     entity_type="patient", entity_id=profile.user_id, content_hash=digest,
                                     job_id=job_id))
        elif outcome is not LineOutcome.UNCHANGED:
            link.content_hash, link.job_id = digest, job_id
    session.flush()
    return RowResult(outcome, profile.mrn)


register(CsvKind(
    name="patients",
    label=N_("Patients"),
    permission=Permission.DATA_IMPORT,
    columns=PATIENT_COLUMNS,
    key="mrn, else source_id",
    import_row=_import_patient,
))


# --- staff --------------------------------------------------------------------------------------

STAFF_COLUMNS = (
    Column("email", required=True, description=N_("The address they log in with; it finds them again."),
           aliases=("e-mail", "email address", "mail", "login"), example="r.osei@hospital.example"),
    Column("full_name", required=True, aliases=("name", "full name", "staff name"), example="Dr Rita Osei"),
    Column("role", required=True, description=N_("doctor, accounts, lab or pharmacy (admin accounts are made by hand)."),
           aliases=("job", "position", "staff role"), example="doctor"),
    Column("department", description=N_("A doctor's department, as named on the departments page."),
           aliases=("dept", "department name", "unit"), example="Cardiology"),
    Column("specialty", aliases=("speciality", "specialism"), example="Heart failure"),
    Column("consultation_fee", description=N_("A doctor's fee, like 120 or 120.50."),
           aliases=("fee", "consultation fee", "price"), example="120.00"),
    Column("slot_minutes", description=N_("A doctor's appointment length in minutes (default 20)."),
           aliases=("slot", "slot length", "appointment minutes"), example="20"),
)
_ROLE_WORDS = {ROLE_LABELS[r].lower(): r for r in IMPORTED_STAFF_ROLES} | {r.value: r for r in IMPORTED_STAFF_ROLES}


def _staff_role(value: str) -> Role:
    word = " ".join(value.split()).lower()
    if word in (Role.ADMIN.value, ROLE_LABELS[Role.ADMIN].lower()):
        raise ValidationError(_("Administrator accounts are not imported: make each one on the users page."))
    role = _ROLE_WORDS.get(word)
    if role is None:
        raise ValidationError(_("Enter the role as {roles}.").format(
            roles=", ".join(r.value for r in IMPORTED_STAFF_ROLES)))
    return role


def _department(session: Session, name: str) -> Department:
    clean = " ".join(name.split())
    if not clean:
        raise ValidationError(_("A doctor needs a department: name one that the departments page lists."))
    department = session.execute(
        select(Department).where(sa.func.lower(Department.name) == clean.lower())).scalar_one_or_none()
    if department is None or not department.is_active:
        raise ValidationError(_("There is no active department named {name}: add it on the departments page "
                                "first, or correct the name.").format(name=clean[:80]))
    return department


def _doctor_fields(session: Session, row: dict[str, str], current: DoctorProfile | None) -> dict[str, object]:
    fields: dict[str, object] = {}
    if "department" in row or current is None:
        fields["department_id"] = _department(session, row.get("department", "")).id
    if "specialty" in row:
        fields["specialty"] = checked_line(row["specialty"], _("specialty"), limit=120, required=False)
    if str(row.get("consultation_fee", "")).strip() or ("consultation_fee" in row and current is None):
        fields["consultation_fee_cents"] = parse_money(row.get("consultation_fee") or "0", _("consultation fee"))
    if str(row.get("slot_minutes", "")).strip():
        fields["slot_minutes"] = parse_int(row["slot_minutes"], _("slot length in minutes"), low=5, high=240)
    return fields


def _import_staff(*, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult:
    """Create or update one staff account (and a doctor's profile) from a line of a staff file."""
    email = emails.normalise(row.get("email", ""))
    full_name = checked_line(row.get("full_name", ""), _("full name"), limit=120)
    role = _staff_role(str(row.get("role", "")))
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        email, skeleton = _account_email(session, email, owner_id=None)
        doctor = _doctor_fields(session, row, None) if role is Role.DOCTOR else None
        user = User(email=email, email_skeleton=skeleton, email_confirmed_at=utcnow(), full_name=full_name,
                    role=role, password_hash=unusable_password(), must_change_password=True)
        session.add(user)
        session.flush()
        if doctor is not None:
            session.add(DoctorProfile(user_id=user.id, **doctor))
        session.flush()
        return RowResult(LineOutcome.CREATED, email)
    if user.role != role:
        raise Conflict(_("{email} already has an account as {role}: an import does not change roles. Change it on "
                         "the users page, or correct the line.").format(
                             email=email, role=_(ROLE_LABELS[Role(user.role)]).lower()))
    changed = user.full_name != full_name
    user.full_name = full_name
    if role is Role.DOCTOR:
        profile = session.get(DoctorProfile, user.id)
        fields = _doctor_fields(session, row, profile)
        if profile is None:
            session.add(DoctorProfile(user_id=user.id, **fields))
            changed = True
        else:
            for name, value in fields.items():
                changed |= getattr(profile, name) != value
                setattr(profile, name, value)
    if not changed:
        return RowResult(LineOutcome.UNCHANGED, email)
    session.flush()
    return RowResult(LineOutcome.UPDATED, email)


register(CsvKind(
    name="staff",
    label=N_("Staff"),
    permission=Permission.USERS_MANAGE,
    columns=STAFF_COLUMNS,
    key="email",
    import_row=_import_staff,
))
