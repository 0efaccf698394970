"""The hospital itself: started empty by ``hms init``, its settings loaded at start, and the
admin's getting-started checklist.

``hms init`` turns an empty, migrated database into a real hospital: the ``hospital`` row (name,
time zone, locale, currency), the default role permissions, a second factor required of admins,
and one admin account with a one-time password. Nothing else: no departments, staff, patients,
medicines or lab tests, unless the shipped starter catalog is asked for. Once the row exists it
is where the name, time zone, locale and currency come from (``load_hospital_settings``); the
environment's values stay the defaults of a database without it (the demo).
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from sqlmodel import Session

from hms_app import settings
from hms_app.db import engine as db_engine
from hms_app.db.enums import Permission, Role
from hms_app.db.migrate import schema_is_current
from hms_app.db.models import (
    Department,
    DoctorAvailability,
    DoctorProfile,
    Hospital,
    LabTest,
    Medicine,
    PatientProfile,
    RoleLoginPolicy,
    ServicePrice,
    StockBatch,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.administration.permissions import seed_default_permissions
from hms_app.services.core import audit, emails, passwords
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.language import _, ngettext
from hms_app.services.core.localtime import format_date
from hms_app.services.core.numbers import format_number
from hms_app.services.core.text import checked_line
from hms_app.services.reference.load import sync_reference_data

CONSOLE = "hms init"  # i18n: not shown
"""Who the audit trail names for what ``hms init`` writes: no account exists before it."""


# --- the hospital's settings ------------------------------------------------------------
# Read by ``hms init`` only: the operator's command, whose messages are English like the rest of it.


def clean_name(value: object) -> str:
    return checked_line(value, "hospital's name", limit=120)


def clean_timezone(value: object) -> str:
    """An IANA time zone name, such as Europe/London or America/New_York."""
    text = str(value or "").strip()
    if text not in _time_zones():
        raise ValidationError(f"{text!r} is not a time zone: give an IANA name such as Europe/London, "  # i18n: not shown
                              "America/New_York or Asia/Kolkata.")
    return text


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def clean_locale(value: object) -> str:
    """A locale Babel knows, written as a tag such as en-GB."""
    text = str(value or "").strip()
    try:
        locale = Locale.parse(text.replace("-", "_")) if text else None
    except (UnknownLocaleError, ValueError, TypeError):
        locale = None
    if locale is None:
        raise ValidationError(f"{text!r} is not a locale: give a tag such as en-GB, en-US, fr-FR or de-DE.")  # i18n: not shown
    return str(locale).replace("_", "-")


def clean_currency(value: object) -> str:
    """An ISO 4217 currency code Babel knows, in capitals."""
    text = str(value or "").strip().upper()
    if len(text) != 3 or text not in list_currencies():
        raise ValidationError(f"{str(value or '').strip()!r} is not a currency: give an ISO 4217 code such as "  # i18n: not shown
                              "GBP, EUR, USD or INR.")
    return text


@dataclass(frozen=True)
class HospitalProfile:
    name: str
    timezone: str
    locale: str
    currency: str
    initialised_at: datetime


def hospital_profile(session: Session) -> HospitalProfile | None:
    """The hospital ``hms init`` set up, or None (an empty database, or the demo)."""
    row = session.get(Hospital, 1)
    if row is None:
        return None
    return HospitalProfile(row.name, row.timezone, row.locale, row.currency, row.initialised_at)


def apply_hospital_settings(session: Session) -> HospitalProfile | None:
    """Make the hospital's row, if there is one, the source of ``settings``' name, time zone,
    locale and currency."""
    profile = hospital_profile(session)
    if profile is not None:
        settings.use_hospital(name=profile.name, timezone=profile.timezone, locale=profile.locale,
                              currency=profile.currency)
    return profile


def load_hospital_settings(engine: sa.Engine | None = None) -> HospitalProfile | None:
    """At start (the app, before its pages compile; the ``hms`` command): load the hospital's
    settings from its database.

    Args:
        engine: the database to read; by default a short-lived engine on ``settings.DATABASE_URL``
            (the app module, which must not open the process-wide pool before its workers start).
            A SQLite file that does not exist yet, or a database not migrated that far, keeps the
            environment's values.
    """
    own = engine is None
    if own:
        path = db_engine.sqlite_file(settings.DATABASE_URL)
        if path is not None and not path.exists():
            return None
        engine = db_engine.create_engine(settings.DATABASE_URL, pool_size=1)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(Hospital.__tablename__):
                return None
        with db_engine.session_scope(write=False, engine=engine) as session:
            return apply_hospital_settings(session)
    finally:
        if own:
            engine.dispose()


# --- hms init -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HospitalForm:
    name: str
    timezone: str
    locale: str
    currency: str
    admin_email: str
    admin_name: str = "Administrator"  # the account's name, data  # i18n: not shown


@dataclass(frozen=True)
class InitialisedHospital:
    profile: HospitalProfile
    admin_email: str
    one_time_password: str
    """Shown once, on the terminal; only its bcrypt hash is stored."""
    starter_catalog: dict[str, int] | None
    """The shipped medicines and lab tests loaded, when asked for."""


def initialise_hospital(*, session: Session, form: HospitalForm, starter_catalog: bool = False) -> InitialisedHospital:
    """Start a real hospital in an empty, migrated database, in one transaction.

    Writes the ``hospital`` row, the default role permissions, a second factor required of
    admins, and one admin account whose one-time password must be changed at the first login,
    where an authenticator is set up too. With ``starter_catalog`` the shipped formulary and lab
    catalog are loaded as a starting point the pharmacy and the laboratory then edit.

    Raises:
        ValidationError: a setting or the address is not acceptable.
        Conflict: the database is not migrated, or already holds a hospital or any account.
    """
    name = clean_name(form.name)
    timezone = clean_timezone(form.timezone)
    locale = clean_locale(form.locale)
    currency = clean_currency(form.currency)
    email = emails.normalise(form.admin_email)
    admin_name = checked_line(form.admin_name, "administrator's name", limit=120)
    if not schema_is_current(session.connection()):
        raise Conflict("This database is not migrated to this version of HMS: run `hms migrate` first. "  # i18n: not shown
                       "Nothing was written.")
    _ensure_empty(session)

    session.add(Hospital(name=name, timezone=timezone, locale=locale, currency=currency))
    try:
        session.flush()  # the one row's key: a second `hms init` at the same moment stops here
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict("Another `hms init` set this hospital up at the same moment. Nothing was written.") from None  # i18n: not shown
    seed_default_permissions(session)
    policy = session.get(RoleLoginPolicy, Role.ADMIN.value) or RoleLoginPolicy(role=Role.ADMIN)
    policy.second_factor_required = True
    policy.updated_at = utcnow()
    session.add(policy)
    one_time = passwords.temporary_password()
    admin = User(email=email, email_skeleton=emails.skeleton(email), email_confirmed_at=utcnow(),
                 full_name=admin_name, role=Role.ADMIN, must_change_password=True,
                 password_hash=passwords.hash_password(one_time))
    session.add(admin)
    session.flush()
    loaded = sync_reference_data(session) if starter_catalog else None
    catalog = f"; starter catalog: {loaded['medicines']} medicines, {loaded['lab_tests']} lab tests" if loaded else ""  # i18n: not shown
    audit.record(session, None, "hospital.initialise", entity_type="hospital", entity_id=1, actor_email=CONSOLE,
                 detail=f"{name}; {timezone}, {locale}, {currency}; admin account {admin.id}{catalog}")  # i18n: not shown
    session.commit()
    profile = hospital_profile(session)
    assert profile is not None
    return InitialisedHospital(profile, email, one_time, loaded)


def _ensure_empty(session: Session) -> None:
    profile = hospital_profile(session)
    if profile is not None:
        raise Conflict(f"This database already holds the hospital {profile.name}, set up on "  # i18n: not shown
                       f"{format_date(profile.initialised_at)}: `hms init` runs once. Nothing was written.")  # i18n: not shown
    users = session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()
    if users:
        raise Conflict(f"This database already holds {users} user accounts (the demo hospital?): `hms init` needs "  # i18n: not shown
                       "an empty, migrated database. Point HMS_DATABASE_URL (or HMS_DATA_DIR) at a new one and run "
                       "`hms migrate` there first. Nothing was written.")


# --- the admin's getting-started checklist --------------------------------------------------


@dataclass(frozen=True)
class SetupStep:
    key: str
    label: str
    summary: str
    """What there is so far, such as "3 active departments"."""
    done: bool
    href: str
    action: str


@dataclass(frozen=True)
class HospitalCard:
    name: str
    timezone: str
    locale: str
    currency: str
    source: str
    """Where the values come from: `hms init` and when, or the environment (the demo)."""


@dataclass(frozen=True)
class SetupOverview:
    hospital: HospitalCard
    steps: list[SetupStep]
    remaining: int
    """Steps not done yet; the checklist shows while there is any."""


def _counted(message: str, n: int, **counts: int) -> str:
    """``message``, the form ``ngettext`` chose, with ``n`` (and any other ``counts``) written in the locale."""
    return message.format(n=format_number(n), **{name: format_number(count) for name, count in counts.items()})


def _both(first: str, second: str) -> str:
    return _("{first}, {second}").format(first=first, second=second)


def setup_overview(*, session: Session, actor: Actor) -> SetupOverview:
    """The hospital's settings and what is set up so far, counted in one query, for the admin."""
    require(session, actor, Permission.ADMIN_DASHBOARD, action="hospital.setup_overview")

    def count(query: sa.Select) -> sa.ScalarSelect:
        return query.scalar_subquery()

    active_doctors = sa.select(DoctorProfile.user_id).join(User, User.id == DoctorProfile.user_id).where(User.is_active)
    row = session.execute(sa.select(
        count(sa.select(sa.func.count()).select_from(Department).where(Department.is_active)),
        count(sa.select(sa.func.count()).select_from(User).where(
            User.is_active, User.role.not_in([Role.ADMIN.value, Role.PATIENT.value]))),
        count(sa.select(sa.func.count()).select_from(active_doctors.subquery())),
        count(sa.select(sa.func.count(sa.distinct(DoctorAvailability.doctor_id))).where(
            DoctorAvailability.doctor_id.in_(active_doctors))),
        count(sa.select(sa.func.count()).select_from(LabTest).where(LabTest.is_active)),
        count(sa.select(sa.func.count()).select_from(Medicine).where(Medicine.is_active)),
        count(sa.select(sa.func.count()).select_from(StockBatch).where(StockBatch.quantity_on_hand > 0)),
        count(sa.select(sa.func.count()).select_from(DoctorProfile).where(
            DoctorProfile.user_id.in_(active_doctors), DoctorProfile.consultation_fee_cents > 0)),
        count(sa.select(sa.func.count()).select_from(ServicePrice).where(ServicePrice.is_active)),
        count(sa.select(sa.func.count()).select_from(PatientProfile)),
    )).one()
    departments, staff, doctors, scheduled, tests, medicines, lots, priced, services, patients = row
    no_doctors = _("No doctors yet")
    steps = [
        SetupStep("departments", _("Departments"),
                  _counted(ngettext("{n} active department", "{n} active departments", departments), departments),
                  departments > 0, "/admin/departments", _("Add departments")),
        SetupStep("staff", _("Staff"),
                  _counted(ngettext("{n} staff account besides administrators",
                                    "{n} staff accounts besides administrators", staff), staff),
                  staff > 0, "/admin/users", _("Add staff")),
        SetupStep("schedules", _("Doctors' schedules"),
                  _counted(ngettext("{n} of {doctors} doctor has weekly hours",
                                    "{n} of {doctors} doctors have weekly hours", doctors), scheduled, doctors=doctors)
                  if doctors else no_doctors,
                  doctors > 0 and scheduled == doctors, "/admin/schedules", _("Set weekly hours")),
        SetupStep("lab_catalog", _("Lab catalog"),
                  _counted(ngettext("{n} active lab test", "{n} active lab tests", tests), tests),
                  tests > 0, "/lab/catalog", _("Edit the lab catalog")),
        SetupStep("formulary", _("Formulary and stock"),
                  _both(_counted(ngettext("{n} medicine", "{n} medicines", medicines), medicines),
                        _counted(ngettext("{n} lot in stock", "{n} lots in stock", lots), lots)),
                  medicines > 0 and lots > 0, "/pharmacy/stock", _("Add medicines and stock")),
        SetupStep("prices", _("Prices"),
                  _both(_counted(ngettext("{n} of {doctors} doctor has a consultation fee",
                                          "{n} of {doctors} doctors have a consultation fee", doctors),
                                 priced, doctors=doctors) if doctors else no_doctors,
                        _counted(ngettext("{n} other service priced", "{n} other services priced", services), services)),
                  doctors > 0 and priced == doctors, "/accounts/prices", _("Set prices")),
        SetupStep("patients", _("Patients"), _counted(ngettext("{n} patient", "{n} patients", patients), patients),
                  patients > 0, "/admin/import", _("Import patients")),
    ]
    return SetupOverview(_hospital_card(session), steps, sum(not step.done for step in steps))


def _hospital_card(session: Session) -> HospitalCard:
    profile = hospital_profile(session)
    if profile is None:
        return HospitalCard(settings.HOSPITAL_NAME, settings.TIMEZONE.key, str(settings.LOCALE).replace("_", "-"),
                            settings.CURRENCY, _("From the environment (HMS_HOSPITAL_NAME, HMS_TIMEZONE, HMS_LOCALE, "
                                                 "HMS_CURRENCY): this database was not set up by the hms init command."))
    return HospitalCard(profile.name, profile.timezone, profile.locale, profile.currency,
                        _("Set once by the hms init command on {day}; not editable here.").format(
                            day=format_date(profile.initialised_at)))
