"""Booking and the appointment life cycle, the waitlist, and the appointment lists.

requested -> confirmed (doctor) -> completed or no-show (doctor, once started);
requested/confirmed -> cancelled (patient before the start; doctor with a reason);
requested -> declined (doctor, with a reason). Reschedule moves an active appointment to
another free slot of the same doctor in one transaction.

No double booking: the database refuses a second active appointment for a doctor and
start (partial unique index; exclusion constraints over the time range on PostgreSQL), and
on SQLite every writer holds the write lock from the start of its transaction, so the
free-slot check and the insert cannot interleave. A losing request writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import (
    ACTIVE_APPOINTMENT_STATUSES,
    APPOINTMENT_STATUS_LABELS,
    AppointmentStatus,
    Permission,
    Role,
    WaitlistStatus,
)
from hms_app.db.models import (
    Appointment,
    Department,
    DoctorProfile,
    PatientProfile,
    User,
    WaitlistEntry,
)
from hms_app.db.types import utcnow
from hms_app.services.accounting import billing
from hms_app.services.booking.scheduling import (
    MAX_SEARCH_DAYS,
    Slot,
    free_slots_by_doctor,
    free_slots_for,
    parse_day,
    parse_instant,
)
from hms_app.services.core import audit, events, receipts
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import get_by_id, parse_id
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import (
    day_span_utc,
    format_date,
    format_day_and_time,
    format_time_range,
    format_when,
    local_date,
    local_today,
    relative_day,
)
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import one_line, storable
from hms_app.services.messaging import mail, notifications

SLOT_TAKEN = N_("That slot was just taken. Please choose another time.")
"""Marked here; the refusal carries it translated (``_(SLOT_TAKEN)``)."""
_ACTIVE = [s.value for s in ACTIVE_APPOINTMENT_STATUSES]
# The users a query joins in their roles, aliased once: building an alias costs more CPU
# than running a short query (about 1.4 ms per statement), and every list page joins them.
_PATIENT = sa.orm.aliased(User, name="patient")
_DOCTOR = sa.orm.aliased(User, name="doctor")


# --- choosing a slot -----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class SlotOption:
    starts_at: str
    label: str
    doctors: int


def _active_department(session: Session, department_id: object) -> Department:
    department = get_by_id(session, Department, department_id)
    if department is None or not department.is_active:
        raise ValidationError(_("Choose a department from the list."))
    return department


def _doctors_of(session: Session, department_id: int) -> list[tuple[int, str]]:
    return [
        (row.id, row.full_name)
        for row in session.execute(
            sa.select(User.id, User.full_name)
            .join(DoctorProfile, DoctorProfile.user_id == User.id)
            .where(DoctorProfile.department_id == department_id, User.is_active, User.role == Role.DOCTOR)
            .order_by(User.full_name)
        )
    ]


def booking_departments(*, session: Session, actor: Actor) -> list[Option]:
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="booking.departments")
    rows = session.execute(sa.select(Department.id, Department.name).where(Department.is_active).order_by(Department.name))
    return [Option(str(i), n) for i, n in rows]


def booking_doctors(*, session: Session, actor: Actor, department_id: int) -> list[Option]:
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="booking.doctors")
    department = _active_department(session, department_id)
    return [Option(str(i), n) for i, n in _doctors_of(session, department.id)]


def _bookable_day(value: object) -> date:
    day = parse_day(value)
    today = local_today()
    if day < today:
        raise ValidationError(_("Choose today or a later date."))
    if day > today + timedelta(days=MAX_SEARCH_DAYS):
        raise ValidationError(_("Appointments can be booked up to {days} days ahead.").format(days=MAX_SEARCH_DAYS))
    return day


def free_slots(
    *, session: Session, actor: Actor, department_id: int, doctor_id: object, day: str
) -> list[SlotOption]:
    """Free slots on ``day`` with one doctor, or with any doctor of the department."""
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="booking.slots")
    department = _active_department(session, department_id)
    day_ = _bookable_day(day)
    doctors = [d for d, _name in _doctors_of(session, department.id)]
    if doctor_id not in (None, "", "any"):
        chosen = parse_id(doctor_id) or -1
        if chosen not in doctors:
            raise ValidationError(_("Choose a doctor of that department."))
        doctors = [chosen]
    by_start: dict[datetime, list[Slot]] = {}
    for slots in free_slots_by_doctor(session, doctors, day_).values():
        for slot in slots:
            by_start.setdefault(slot.starts_at, []).append(slot)
    return [
        SlotOption(start.isoformat(), slots[0].label, len(slots)) for start, slots in sorted(by_start.items())
    ]


# --- booking -------------------------------------------------------------------------------


def _appointments_that_day(session: Session, doctor_id: int, instant: datetime) -> int:
    day = local_date(instant)
    start, end = day_span_utc(day)
    return session.execute(
        sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.doctor_id == doctor_id, Appointment.status.in_(_ACTIVE),
            Appointment.starts_at >= start, Appointment.starts_at < end,
        )
    ).scalar_one()


def _patient_overlap(session: Session, patient_id: int, starts_at: datetime, ends_at: datetime,
                     exclude_id: int | None = None) -> bool:
    query = sa.select(Appointment.id).where(
        Appointment.patient_id == patient_id, Appointment.status.in_(_ACTIVE),
        Appointment.starts_at < ends_at, Appointment.ends_at > starts_at,
    )
    if exclude_id is not None:
        query = query.where(Appointment.id != exclude_id)
    return session.execute(query.limit(1)).first() is not None


def _slot_of(session: Session, doctor_id: int, starts_at: datetime) -> Slot | None:
    day = local_date(starts_at)
    return next((s for s in free_slots_for(session, doctor_id, day) if s.starts_at == starts_at), None)


def _inserted(session: Session, appointment: Appointment) -> bool:
    """Insert under a savepoint. False if a concurrent booking took the doctor's slot first,
    so the caller can try another doctor; a clash of the patient's own times is a Conflict."""
    try:
        with session.begin_nested():
            session.add(appointment)
    except sa.exc.IntegrityError as error:
        if "patient" in str(error.orig):
            session.rollback()
            raise Conflict(_("You already have an appointment at that time.")) from None
        return False
    return True


def book_appointment(
    *, session: Session, actor: Actor, department_id: int, doctor_id: object, starts_at: str, reason: str,
    request_key: str | None = None,
) -> int:
    """A patient requests a slot. ``doctor_id`` "any" assigns the free doctor with the fewest
    appointments that day. Returns the new appointment's id.

    ``request_key`` is the booking form's key (``receipts``): a repeat of the request (a double
    click) books nothing more and answers with the appointment the first one booked.
    """
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="appointment.book")
    if actor.role != Role.PATIENT or session.get(PatientProfile, actor.user_id) is None:
        audit.deny(session, actor, "appointment.book", N_("Only patients book appointments for themselves."))
    if (earlier := receipts.claim(session, actor, key=request_key, action="appointment.book")) is not None:
        return earlier.object_id
    department = _active_department(session, department_id)
    instant = parse_instant(starts_at)
    reason = one_line(reason, _("reason"))
    if not reason:
        raise ValidationError(_("Say briefly why you want to see the doctor."))
    if len(reason) > 500:
        raise ValidationError(_("Keep the reason under 500 characters."))
    if instant <= utcnow():
        raise ValidationError(_("That time has already passed. Choose a later slot."))
    _bookable_day(local_date(instant))  # the slot list's horizon binds here too
    doctors = [d for d, _name in _doctors_of(session, department.id)]
    if doctor_id in (None, "", "any"):
        candidates = sorted(doctors, key=lambda d: (_appointments_that_day(session, d, instant), d))
    else:
        chosen = parse_id(doctor_id) or -1
        if chosen not in doctors:
            raise ValidationError(_("Choose a doctor of that department."))
        candidates = [chosen]
    # A candidate whose slot looked free may be taken by a concurrent booking before the
    # insert (PostgreSQL reads do not block writers); then the next candidate is tried.
    appointment, lost_race = None, False
    for candidate in candidates:
        slot = _slot_of(session, candidate, instant)
        if slot is None:
            continue
        if _patient_overlap(session, actor.user_id, slot.starts_at, slot.ends_at):
            raise Conflict(_("You already have an appointment at that time."))
        appointment = Appointment(patient_id=actor.user_id, doctor_id=candidate, department_id=department.id,
                                  starts_at=slot.starts_at, ends_at=slot.ends_at, reason=reason)
        if _inserted(session, appointment):
            break
        appointment, lost_race = None, True
    if appointment is None:
        taken = lost_race or session.execute(
            sa.select(Appointment.id).where(Appointment.doctor_id.in_(candidates), Appointment.starts_at == instant,
                                            Appointment.status.in_(_ACTIVE)).limit(1)
        ).first() is not None
        raise Conflict(_(SLOT_TAKEN)) if taken else ValidationError(_("That time is not a free slot. Choose one from the list."))
    doctor = appointment.doctor_id
    session.execute(
        sa.update(WaitlistEntry)
        .where(WaitlistEntry.patient_id == actor.user_id, WaitlistEntry.department_id == department.id,
               WaitlistEntry.status.in_([WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value]))
        .values(status=WaitlistStatus.BOOKED.value)
    )
    starts = slot.starts_at
    notifications.notify(session, doctor, lambda: _("New appointment request"),
                         lambda: _("{patient} asks for {when}.").format(patient=actor.full_name,
                                                                       when=format_day_and_time(starts)),
                         "/doctor/appointments")
    audit.record(session, actor, "appointment.book", entity_type="appointment", entity_id=appointment.id,
                 patient_id=actor.user_id, detail=f"doctor {doctor} at {slot.starts_at.isoformat()}")  # i18n: not shown
    receipts.fulfil(session, key=request_key, object_id=appointment.id)
    _publish(session, appointment)
    session.commit()
    return appointment.id


def _publish(session: Session, appointment: Appointment) -> None:
    events.publish(session, "appointments", user_ids=[appointment.patient_id, appointment.doctor_id], roles=["admin"])


# --- the life cycle --------------------------------------------------------------------------


def _appointment_for(session: Session, actor: Actor, appointment_id: object, action: str) -> Appointment:
    """The appointment if it is the actor's (as patient or as doctor); else "not found"."""
    return access_by_id(session, actor, Appointment, appointment_id, action=action, lock=True,
                        missing=N_("That appointment does not exist."), entity_type="appointment",
                        allowed=lambda a: actor.user_id in (a.patient_id, a.doctor_id))


def _label(status: str) -> str:
    """A status as a word in a sentence, in the reader's language."""
    return _(APPOINTMENT_STATUS_LABELS[AppointmentStatus(status)]).lower()


def _clean_reason(reason: object, missing: str) -> str:
    """The reason a doctor gives, which the patient reads; ``missing`` (marked) says it is owed."""
    text = one_line(reason, _("reason"))
    if not text:
        raise ValidationError(_(missing))
    if len(text) > 500:
        raise ValidationError(_("Keep the reason under 500 characters."))
    return text


def _change(
    session: Session, actor: Actor, appointment: Appointment, status: AppointmentStatus, action: str,
    *, reason: str = "", notify_title: str,
) -> None:
    """Move the appointment to ``status`` and tell the other party (``notify_title``: marked English)."""
    old = appointment.status
    appointment.status = status
    appointment.status_reason = reason
    appointment.updated_at = utcnow()
    session.add(appointment)
    other = appointment.patient_id if actor.user_id == appointment.doctor_id else appointment.doctor_id
    link = "/patient/appointments" if other == appointment.patient_id else "/doctor/appointments"
    starts = appointment.starts_at
    notifications.notify(session, other, lambda: _(notify_title),
                         lambda: format_day_and_time(starts) + (f" — {reason}" if reason else ""), link)
    audit.record(session, actor, action, entity_type="appointment", entity_id=appointment.id,
                 patient_id=appointment.patient_id, detail=f"{old} -> {status.value}" + (f": {reason}" if reason else ""))
    _publish(session, appointment)


def _require_doctor_of(session: Session, actor: Actor, appointment: Appointment, action: str) -> None:
    if actor.user_id != appointment.doctor_id:
        audit.deny(session, actor, action, N_("Only the appointment's doctor can do that."),
                   entity_type="appointment", entity_id=appointment.id, patient_id=appointment.patient_id)


def _refuse(appointment: Appointment, message: str) -> None:
    """``message`` (marked, with ``{status}``): the appointment's status does not allow the change."""
    raise Conflict(_(message).format(status=_label(appointment.status)))


def confirm_appointment(*, session: Session, actor: Actor, appointment_id: int) -> None:
    require(session, actor, Permission.APPOINTMENTS_MANAGE, action="appointment.confirm")
    appointment = _appointment_for(session, actor, appointment_id, "appointment.confirm")
    _require_doctor_of(session, actor, appointment, "appointment.confirm")
    if appointment.status != AppointmentStatus.REQUESTED:
        _refuse(appointment, N_("A {status} appointment cannot be confirmed."))
    if appointment.starts_at <= utcnow():
        raise Conflict(_("This appointment's time has passed; it can no longer be confirmed."))
    _change(session, actor, appointment, AppointmentStatus.CONFIRMED, "appointment.confirm",
            notify_title=N_("Appointment confirmed"))
    mail.queue_appointment_email(session, appointment, "appointment.confirmed")
    session.commit()


def decline_appointment(*, session: Session, actor: Actor, appointment_id: int, reason: str) -> None:
    require(session, actor, Permission.APPOINTMENTS_MANAGE, action="appointment.decline")
    appointment = _appointment_for(session, actor, appointment_id, "appointment.decline")
    _require_doctor_of(session, actor, appointment, "appointment.decline")
    if appointment.status != AppointmentStatus.REQUESTED:
        _refuse(appointment, N_("A {status} appointment cannot be declined."))
    reason = _clean_reason(reason, N_("Give a reason for the decline; the patient will see it."))
    _change(session, actor, appointment, AppointmentStatus.DECLINED, "appointment.decline", reason=reason,
            notify_title=N_("Appointment request declined"))
    mail.queue_appointment_email(session, appointment, "appointment.declined")
    _offer_freed_slot(session, appointment)
    session.commit()


def cancel_appointment(*, session: Session, actor: Actor, appointment_id: int, reason: str = "") -> None:
    """The patient cancels before the start; the doctor cancels with a reason."""
    permission = Permission.APPOINTMENTS_MANAGE if actor.role == Role.DOCTOR else Permission.APPOINTMENTS_BOOK
    require(session, actor, permission, action="appointment.cancel")
    appointment = _appointment_for(session, actor, appointment_id, "appointment.cancel")
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        _refuse(appointment, N_("A {status} appointment cannot be cancelled."))
    if appointment.starts_at <= utcnow():
        raise Conflict(_("This appointment has already started and can no longer be cancelled."))
    if actor.user_id == appointment.doctor_id:
        reason = _clean_reason(reason, N_("Give a reason for the cancellation; the patient will see it."))
    else:
        reason = storable(" ".join(str(reason or "").split())[:500], _("reason"))
    _change(session, actor, appointment, AppointmentStatus.CANCELLED, "appointment.cancel", reason=reason,
            notify_title=N_("Appointment cancelled"))
    mail.queue_appointment_email(session, appointment, "appointment.cancelled")
    _offer_freed_slot(session, appointment)
    session.commit()


_CLOSING = {
    AppointmentStatus.COMPLETED: (N_("A {status} appointment cannot be completed."),
                                  N_("This appointment has not started yet; it can be completed from {when}.")),
    AppointmentStatus.NO_SHOW: (N_("A {status} appointment cannot be marked as a no-show."),
                                N_("This appointment has not started yet; it can be marked as a no-show from {when}.")),
}
"""Why an appointment cannot be closed as completed or no-show: not confirmed, or not started."""


def _close_after_start(session: Session, actor: Actor, appointment_id: int, status: AppointmentStatus,
                       action: str, title: str) -> None:
    require(session, actor, Permission.APPOINTMENTS_MANAGE, action=action)
    appointment = _appointment_for(session, actor, appointment_id, action)
    _require_doctor_of(session, actor, appointment, action)
    not_confirmed, not_started = _CLOSING[status]
    if appointment.status != AppointmentStatus.CONFIRMED:
        _refuse(appointment, not_confirmed)
    if appointment.starts_at > utcnow():
        raise Conflict(_(not_started).format(when=format_day_and_time(appointment.starts_at)))
    _change(session, actor, appointment, status, action, notify_title=title)
    if status == AppointmentStatus.COMPLETED:
        billing.charge_consultation(session, appointment)
    session.commit()


def complete_appointment(*, session: Session, actor: Actor, appointment_id: int) -> None:
    _close_after_start(session, actor, appointment_id, AppointmentStatus.COMPLETED, "appointment.complete",
                       N_("Appointment completed"))


def mark_no_show(*, session: Session, actor: Actor, appointment_id: int) -> None:
    _close_after_start(session, actor, appointment_id, AppointmentStatus.NO_SHOW, "appointment.no_show",
                       N_("Appointment marked as missed"))


def reschedule_appointment(*, session: Session, actor: Actor, appointment_id: int, starts_at: str) -> None:
    """Move an active appointment to another free slot of the same doctor, in one transaction.

    Moved by the patient, it needs the doctor's confirmation again; moved by the doctor, it
    stays confirmed.
    """
    permission = Permission.APPOINTMENTS_MANAGE if actor.role == Role.DOCTOR else Permission.APPOINTMENTS_BOOK
    require(session, actor, permission, action="appointment.reschedule")
    appointment = _appointment_for(session, actor, appointment_id, "appointment.reschedule")
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        _refuse(appointment, N_("A {status} appointment cannot be rescheduled."))
    if appointment.starts_at <= utcnow():
        raise Conflict(_("This appointment has already started and can no longer be moved."))
    instant = parse_instant(starts_at)
    if instant == appointment.starts_at:
        raise ValidationError(_("Choose a different time."))
    _bookable_day(local_date(instant))
    slot = _slot_of(session, appointment.doctor_id, instant)
    if slot is None:
        raise ValidationError(_("That time is not a free slot of this doctor. Choose one from the list."))
    if _patient_overlap(session, appointment.patient_id, slot.starts_at, slot.ends_at, exclude_id=appointment.id):
        raise Conflict(_("The patient already has an appointment at that time."))
    freed = Appointment(id=appointment.id, doctor_id=appointment.doctor_id, department_id=appointment.department_id,
                        patient_id=appointment.patient_id, starts_at=appointment.starts_at,
                        ends_at=appointment.ends_at)
    old_start = appointment.starts_at
    appointment.starts_at, appointment.ends_at = slot.starts_at, slot.ends_at
    by_doctor = actor.user_id == appointment.doctor_id
    appointment.status = AppointmentStatus.CONFIRMED if by_doctor else AppointmentStatus.REQUESTED
    appointment.updated_at = utcnow()
    session.add(appointment)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict(_(SLOT_TAKEN)) from None
    other = appointment.patient_id if by_doctor else appointment.doctor_id
    new_start = slot.starts_at
    notifications.notify(session, other, lambda: _("Appointment moved"),
                         lambda: _("{old} → {new}").format(old=format_day_and_time(old_start),
                                                           new=format_day_and_time(new_start)),
                         "/patient/appointments" if by_doctor else "/doctor/appointments")
    audit.record(session, actor, "appointment.reschedule", entity_type="appointment", entity_id=appointment.id,
                 patient_id=appointment.patient_id, detail=f"{freed.starts_at.isoformat()} -> {slot.starts_at.isoformat()}")
    _publish(session, appointment)
    _offer_freed_slot(session, freed)
    session.commit()


# --- waitlist -------------------------------------------------------------------------------


def _offer_freed_slot(session: Session, freed: Appointment) -> None:
    """Offer a slot that just became free to the first patient waiting for it."""
    if freed.starts_at <= utcnow():
        return
    day = local_date(freed.starts_at)
    entry = session.execute(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.status == WaitlistStatus.WAITING.value,
            WaitlistEntry.patient_id != freed.patient_id,
            WaitlistEntry.date_from <= day,
            WaitlistEntry.date_to >= day,
            sa.or_(
                WaitlistEntry.doctor_id == freed.doctor_id,
                sa.and_(WaitlistEntry.doctor_id.is_(None), WaitlistEntry.department_id == freed.department_id),
            ),
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if entry is None:
        return
    entry.status = WaitlistStatus.OFFERED
    entry.offered_start = freed.starts_at
    entry.offered_doctor_id = freed.doctor_id
    session.add(entry)
    doctor = session.get(User, freed.doctor_id)
    notifications.notify(
        session, entry.patient_id, lambda: _("A slot you were waiting for is free"),
        lambda: _("{doctor} at {when}. Book it before someone else does.").format(
            doctor=doctor.full_name if doctor else _("A doctor"), when=format_day_and_time(freed.starts_at)),
        f"/patient/book?department={freed.department_id}&doctor={freed.doctor_id}&date={day.isoformat()}",
    )
    audit.record(session, None, "waitlist.offer", entity_type="waitlist_entry", entity_id=entry.id,
                 patient_id=entry.patient_id, actor_email="system", detail=f"slot {freed.starts_at.isoformat()}")
    events.publish(session, "appointments", user_ids=[entry.patient_id])


def join_waitlist(
    *, session: Session, actor: Actor, department_id: int, doctor_id: object, date_from: str, date_to: str
) -> int:
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="waitlist.join")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "waitlist.join", N_("Only patients join the waitlist."))
    department = _active_department(session, department_id)
    doctor: int | None = None
    if doctor_id not in (None, "", "any"):
        doctor = parse_id(doctor_id) or -1
        if doctor not in [d for d, _name in _doctors_of(session, department.id)]:
            raise ValidationError(_("Choose a doctor of that department."))
    first = _bookable_day(date_from)
    last = parse_day(date_to, _("last date")) if str(date_to or "").strip() else first
    if last < first:
        raise ValidationError(_("The last date must not be before the first."))
    if (last - first).days > 90:
        raise ValidationError(_("Wait for at most 90 days at a time."))
    waiting = session.execute(
        sa.select(sa.func.count()).select_from(WaitlistEntry).where(
            WaitlistEntry.patient_id == actor.user_id,
            WaitlistEntry.status.in_([WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value]),
        )
    ).scalar_one()
    if waiting >= 5:
        raise Conflict(_("You are already on five waitlists. Leave one before joining another."))
    entry = WaitlistEntry(patient_id=actor.user_id, department_id=department.id, doctor_id=doctor,
                          date_from=first, date_to=last)
    session.add(entry)
    session.flush()
    audit.record(session, actor, "waitlist.join", entity_type="waitlist_entry", entity_id=entry.id,
                 patient_id=actor.user_id, detail=f"department {department.id}, doctor {doctor or 'any'}, {first}..{last}")
    events.publish(session, "appointments", user_ids=[actor.user_id])
    session.commit()
    return entry.id


def leave_waitlist(*, session: Session, actor: Actor, entry_id: int) -> None:
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="waitlist.leave")
    entry = access_by_id(session, actor, WaitlistEntry, entry_id, action="waitlist.leave",
                         missing=N_("That waitlist entry does not exist."), entity_type="waitlist_entry",
                         allowed=lambda e: e.patient_id == actor.user_id)
    if entry.status not in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
        raise Conflict(_("You are no longer on that waitlist."))
    entry.status = WaitlistStatus.CANCELLED
    session.add(entry)
    audit.record(session, actor, "waitlist.leave", entity_type="waitlist_entry", entity_id=entry.id,
                 patient_id=actor.user_id)
    events.publish(session, "appointments", user_ids=[actor.user_id])
    session.commit()


@dataclass(frozen=True)
class WaitlistRow:
    id: int
    department: str
    doctor: str
    dates: str
    status: str
    offer: str


def my_waitlist(*, session: Session, actor: Actor) -> list[WaitlistRow]:
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="waitlist.list")
    doctor = _DOCTOR
    rows = session.execute(
        sa.select(WaitlistEntry, Department.name, doctor.full_name)
        .join(Department, Department.id == WaitlistEntry.department_id)
        .outerjoin(doctor, doctor.id == WaitlistEntry.doctor_id)
        .where(WaitlistEntry.patient_id == actor.user_id,
               WaitlistEntry.status.in_([WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value]))
        .order_by(WaitlistEntry.created_at)
    ).all()
    return [
        WaitlistRow(
            e.id, dept, doc or _("Any available doctor"),
            f"{format_date(e.date_from, 'day_month')} – {format_date(e.date_to)}",
            _("Slot offered") if e.status == WaitlistStatus.OFFERED else _("Waiting"),
            format_day_and_time(e.offered_start),
        )
        for e, dept, doc in rows
    ]


# --- lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentRow:
    id: int
    when: str
    date: str
    time: str
    starts_at: str
    patient: str
    patient_id: int
    mrn: str
    doctor: str
    department: str
    department_id: int
    doctor_id: int
    reason: str
    status: str
    status_label: str
    status_reason: str
    can_cancel: bool
    can_confirm: bool
    can_close: bool


def _rows(session: Session, query: sa.Select, now: datetime) -> list[AppointmentRow]:
    return [_row(*r, now=now) for r in session.execute(query)]


def _base_query() -> sa.Select:
    patient, doctor = _PATIENT, _DOCTOR
    return (
        sa.select(Appointment, patient.full_name, PatientProfile.mrn, doctor.full_name, Department.name)
        .join(patient, patient.id == Appointment.patient_id)
        .outerjoin(PatientProfile, PatientProfile.user_id == Appointment.patient_id)
        .join(doctor, doctor.id == Appointment.doctor_id)
        .join(Department, Department.id == Appointment.department_id)
    )


def _row(a: Appointment, patient: str, mrn: str | None, doctor: str, department: str, *, now: datetime) -> AppointmentRow:
    status = AppointmentStatus(a.status)
    active = status in ACTIVE_APPOINTMENT_STATUSES
    return AppointmentRow(
        id=a.id, when=format_when(a.starts_at, a.ends_at), date=relative_day(a.starts_at),
        time=format_time_range(a.starts_at, a.ends_at), starts_at=a.starts_at.isoformat(),
        patient=patient, patient_id=a.patient_id, mrn=mrn or "", doctor=doctor, department=department,
        department_id=a.department_id, doctor_id=a.doctor_id, reason=a.reason, status=status.value,
        status_label=_(APPOINTMENT_STATUS_LABELS[status]), status_reason=a.status_reason,
        can_cancel=active and a.starts_at > now,
        can_confirm=status == AppointmentStatus.REQUESTED and a.starts_at > now,
        can_close=status == AppointmentStatus.CONFIRMED and a.starts_at <= now,
    )


def patient_appointments(
    *, session: Session, actor: Actor, upcoming: bool, page: int = 1, page_size: int = 10
) -> Page[AppointmentRow]:
    """The patient's own appointments: upcoming (soonest first) or past (latest first)."""
    require(session, actor, Permission.APPOINTMENTS_BOOK, action="appointment.list_own")
    page, page_size = clamp_page(page, page_size)
    now = utcnow()
    query = _base_query().where(Appointment.patient_id == actor.user_id)
    if upcoming:
        query = query.where(Appointment.ends_at > now, Appointment.status.in_(_ACTIVE)).order_by(Appointment.starts_at)
    else:
        query = query.where(sa.or_(Appointment.ends_at <= now, Appointment.status.notin_(_ACTIVE))).order_by(
            Appointment.starts_at.desc())
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([_row(*r, now=now) for r in rows], total, page, page_size)


def doctor_schedule(*, session: Session, actor: Actor, first_day: str, days: int = 1) -> list[AppointmentRow]:
    """The doctor's own appointments from ``first_day`` for ``days`` days (a day or a week)."""
    require(session, actor, Permission.APPOINTMENTS_MANAGE, action="appointment.schedule")
    day = parse_day(first_day) if str(first_day or "").strip() else local_today()
    days = 7 if days == 7 else 1
    start = day_span_utc(day)[0]
    end = day_span_utc(day + timedelta(days=days - 1))[1]
    query = _base_query().where(
        Appointment.doctor_id == actor.user_id, Appointment.starts_at >= start, Appointment.starts_at < end,
        Appointment.status.notin_([AppointmentStatus.CANCELLED.value, AppointmentStatus.DECLINED.value]),
    ).order_by(Appointment.starts_at)
    return _rows(session, query, utcnow())


def pending_requests(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[AppointmentRow]:
    require(session, actor, Permission.APPOINTMENTS_MANAGE, action="appointment.pending")
    page, page_size = clamp_page(page, page_size)
    query = _base_query().where(
        Appointment.doctor_id == actor.user_id, Appointment.status == AppointmentStatus.REQUESTED.value,
        Appointment.starts_at > utcnow(),
    ).order_by(Appointment.starts_at)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    now = utcnow()
    return Page([_row(*r, now=now) for r in rows], total, page, page_size)


@dataclass(frozen=True)
class AppointmentFilter:
    department_id: str = ""
    doctor_id: str = ""
    status: str = ""
    date_from: str = ""
    date_to: str = ""
    search: str = ""


_SORTABLE = {"when": Appointment.starts_at, "status": Appointment.status, "created": Appointment.created_at}


def all_appointments(
    *, session: Session, actor: Actor, filters: AppointmentFilter, page: int = 1, page_size: int = 20,
    sort: str = "when", descending: bool = True,
) -> Page[AppointmentRow]:
    """Every appointment in the hospital, filtered and paged in SQL (admin)."""
    require(session, actor, Permission.APPOINTMENTS_VIEW_ALL, action="appointment.list_all")
    page, page_size = clamp_page(page, page_size)
    query = _base_query()
    if (department := parse_id(filters.department_id)) is not None:
        query = query.where(Appointment.department_id == department)
    if (doctor := parse_id(filters.doctor_id)) is not None:
        query = query.where(Appointment.doctor_id == doctor)
    if filters.status:
        if not isinstance(filters.status, str) or filters.status not in {s.value for s in AppointmentStatus}:
            raise ValidationError(_("Choose a status from the list."))
        query = query.where(Appointment.status == filters.status)
    if str(filters.date_from).strip():
        query = query.where(Appointment.starts_at >= day_span_utc(parse_day(filters.date_from, _("start date")))[0])
    if str(filters.date_to).strip():
        query = query.where(Appointment.starts_at < day_span_utc(parse_day(filters.date_to, _("end date")))[1])
    query = query.order_by(order_by(_SORTABLE, sort, descending, "when"), Appointment.id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    now = utcnow()
    return Page([_row(*r, now=now) for r in rows], total, page, page_size)


def appointment_filter_options(*, session: Session, actor: Actor) -> tuple[list[Option], list[Option]]:
    """Departments and doctors for the admin's filters."""
    require(session, actor, Permission.APPOINTMENTS_VIEW_ALL, action="appointment.filters")
    departments = [Option(str(i), n) for i, n in session.execute(
        sa.select(Department.id, Department.name).order_by(Department.name))]
    doctors = [Option(str(i), n) for i, n in session.execute(
        sa.select(User.id, User.full_name).where(User.role == Role.DOCTOR).order_by(User.full_name))]
    return departments, doctors
