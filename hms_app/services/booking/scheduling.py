"""Doctors' working hours, slot length and leave, and the free slots derived from them.

Slots are never stored. For a doctor and a day in the hospital's time zone they are the
working-hour blocks of that weekday cut into slot-length pieces on the wall clock, minus
leave, minus active appointments (by overlap, so a change of slot length is safe), minus
the past. Wall-clock times that do not exist on a daylight-saving day are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import ACTIVE_APPOINTMENT_STATUSES, Permission, Role
from hms_app.db.models import (
    Appointment,
    Department,
    DoctorAvailability,
    DoctorLeave,
    DoctorProfile,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.core import audit, events
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import day_span_utc, format_day_and_time, format_time
from hms_app.services.core.text import storable

WEEKDAYS = [N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday")]
"""Monday first, as ``date.weekday()`` counts; in English, translated where shown (``_(WEEKDAYS[i])``)."""
MAX_SEARCH_DAYS = 120


# --- time helpers ---------------------------------------------------------------------------


def _to_utc_if_real(wall: datetime) -> datetime | None:
    """The UTC instant of a naive local wall time, or None when the clock skips it."""
    aware = wall.replace(tzinfo=settings.TIMEZONE)
    instant = aware.astimezone(UTC)
    if instant.astimezone(settings.TIMEZONE).replace(tzinfo=None) != wall:
        return None
    return instant


def parse_day(value: object, label: str | None = None) -> date:
    """A day typed as ISO; ``label`` (translated; "date" when None) names it in the refusal."""
    try:
        return date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        raise ValidationError(_("Enter the {label} as a date, like 2026-12-01.").format(label=label or _("date"))) from None


def parse_clock(value: object, label: str) -> time:
    text = str(value or "").strip()
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        raise ValidationError(_("Enter the {label} as a time, like 09:00.").format(label=label)) from None
    if parsed.second or parsed.microsecond:
        raise ValidationError(_("The {label} must be whole minutes.").format(label=label))
    return parsed


def parse_instant(value: object) -> datetime:
    """A slot start as sent by the UI: an ISO timestamp with its offset."""
    try:
        parsed = datetime.fromisoformat(str(value or "").strip())
    except ValueError:
        raise ValidationError(_("Choose a time from the list of free slots.")) from None
    if parsed.tzinfo is None:
        raise ValidationError(_("Choose a time from the list of free slots."))
    return parsed.astimezone(UTC)


# --- slot derivation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        return self.starts_at.isoformat()

    @property
    def label(self) -> str:
        return format_time(self.starts_at)


def wall_clock_slots(day: date, blocks: Iterable[tuple[time, time]], slot_minutes: int) -> list[Slot]:
    """Cut the working blocks of ``day`` into slots on the local wall clock."""
    length = timedelta(minutes=slot_minutes)
    slots: list[Slot] = []
    for start, end in sorted(blocks):
        cursor, stop = datetime.combine(day, start), datetime.combine(day, end)
        while cursor + length <= stop:
            starts = _to_utc_if_real(cursor)
            ends = _to_utc_if_real(cursor + length)
            if starts is not None and ends is not None and ends > starts:
                slots.append(Slot(starts, ends))
            cursor += length
    return sorted(set(slots), key=lambda s: s.starts_at)


def _overlaps(slot: Slot, spans: Iterable[tuple[datetime, datetime]]) -> bool:
    return any(slot.starts_at < end and start < slot.ends_at for start, end in spans)


def open_slots(day: date, blocks: Iterable[tuple[time, time]], slot_minutes: int,
               busy: list[tuple[datetime, datetime]]) -> list[Slot]:
    """The wall-clock slots of ``day``'s working blocks that overlap none of the ``busy`` spans.

    With leave as ``busy`` these are the slots a doctor offers that day (what the reports
    measure bookings against); with leave and bookings, the slots still free.
    """
    return [slot for slot in wall_clock_slots(day, blocks, slot_minutes) if not _overlaps(slot, busy)]


def free_slots_for(session: Session, doctor_id: int, day: date, *, now: datetime | None = None) -> list[Slot]:
    """The doctor's free slots on ``day``: hours minus leave, bookings and the past."""
    return free_slots_by_doctor(session, [doctor_id], day, now=now)[doctor_id]


def free_slots_by_doctor(session: Session, doctor_ids: Iterable[int], day: date, *,
                         now: datetime | None = None) -> dict[int, list[Slot]]:
    """Each doctor's free slots on ``day`` (as ``free_slots_for``), in three queries for any number of doctors."""
    wanted = list(dict.fromkeys(doctor_ids))
    found: dict[int, list[Slot]] = {doctor: [] for doctor in wanted}
    hours: dict[int, tuple[int, list[tuple[time, time]]]] = {}
    for doctor, minutes, start, end in session.execute(
        sa.select(DoctorProfile.user_id, DoctorProfile.slot_minutes, DoctorAvailability.start_time,
                  DoctorAvailability.end_time)
        .join(DoctorAvailability, DoctorAvailability.doctor_id == DoctorProfile.user_id)
        .where(DoctorProfile.user_id.in_(wanted), DoctorAvailability.weekday == day.weekday())
    ):
        hours.setdefault(doctor, (minutes, []))[1].append((start, end))
    if not hours:
        return found
    day_start, day_end = day_span_utc(day)
    spans: dict[int, list[tuple[datetime, datetime]]] = {doctor: [] for doctor in hours}
    for doctor, start, end in session.execute(
        sa.select(DoctorLeave.doctor_id, DoctorLeave.starts_at, DoctorLeave.ends_at).where(
            DoctorLeave.doctor_id.in_(list(hours)), DoctorLeave.starts_at < day_end, DoctorLeave.ends_at > day_start
        ).union_all(
            sa.select(Appointment.doctor_id, Appointment.starts_at, Appointment.ends_at).where(
                Appointment.doctor_id.in_(list(hours)),
                Appointment.status.in_([s.value for s in ACTIVE_APPOINTMENT_STATUSES]),
                # An appointment is one slot (at most 240 minutes), so none that began over a day
                # before can reach into ``day``: the lower bound keeps the index scan to two days
                # instead of the doctor's whole history.
                Appointment.starts_at >= day_start - timedelta(days=1),
                Appointment.starts_at < day_end,
                Appointment.ends_at > day_start,
            )
        )
    ):
        spans[doctor].append((_aware(start), _aware(end)))
    now = now or utcnow()
    for doctor, (minutes, blocks) in hours.items():
        found[doctor] = [slot for slot in open_slots(day, blocks, minutes, spans[doctor]) if slot.starts_at > now]
    return found


def _aware(value: datetime | str) -> datetime:
    # A UNION loses the column type on SQLite, so values may come back as naive text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- reading and editing a schedule ---------------------------------------------------------


@dataclass(frozen=True)
class HoursBlock:
    id: int
    weekday: int
    weekday_name: str
    start: str
    end: str


@dataclass(frozen=True)
class LeaveRow:
    id: int
    period: str
    reason: str


@dataclass(frozen=True)
class Schedule:
    doctor_id: int
    doctor_name: str
    department: str
    slot_minutes: int
    hours: list[HoursBlock]
    leave: list[LeaveRow]


def _doctor_for_schedule(session: Session, actor: Actor, doctor_id: object, action: str) -> User:
    """The doctor whose schedule the actor may edit: their own, or anyone's for admin."""
    doctor_id = parse_id(doctor_id) or -1
    if actor.role == Role.DOCTOR and doctor_id == actor.user_id:
        require(session, actor, Permission.APPOINTMENTS_MANAGE, action=action)
    else:
        require(session, actor, Permission.SCHEDULES_MANAGE, action=action)
    return access_by_id(session, actor, User, doctor_id, action=action, missing=N_("That doctor does not exist."),
                        entity_type="user", allowed=lambda user: user.role == Role.DOCTOR)


def get_schedule(*, session: Session, actor: Actor, doctor_id: int) -> Schedule:
    doctor = _doctor_for_schedule(session, actor, doctor_id, "schedule.view")
    profile = session.get(DoctorProfile, doctor.id)
    department = session.get(Department, profile.department_id) if profile else None
    hours = session.execute(
        sa.select(DoctorAvailability).where(DoctorAvailability.doctor_id == doctor.id)
        .order_by(DoctorAvailability.weekday, DoctorAvailability.start_time)
    ).scalars()
    leave = session.execute(
        sa.select(DoctorLeave).where(DoctorLeave.doctor_id == doctor.id, DoctorLeave.ends_at > utcnow())
        .order_by(DoctorLeave.starts_at)
    ).scalars()
    return Schedule(
        doctor_id=doctor.id,
        doctor_name=doctor.full_name,
        department=department.name if department else "",
        slot_minutes=profile.slot_minutes if profile else 0,
        hours=[HoursBlock(h.id, h.weekday, _(WEEKDAYS[h.weekday]), format_time(h.start_time),
                          format_time(h.end_time)) for h in hours],
        leave=[LeaveRow(x.id, f"{format_day_and_time(x.starts_at)} – {format_day_and_time(x.ends_at)}", x.reason) for x in leave],
    )


def add_hours(*, session: Session, actor: Actor, doctor_id: int, weekday: object, start: str, end: str) -> int:
    """Add a block of weekly working hours; blocks of one weekday may not overlap."""
    doctor = _doctor_for_schedule(session, actor, doctor_id, "schedule.hours.add")
    try:
        day = int(weekday)
    except (TypeError, ValueError, OverflowError):
        day = -1
    if not 0 <= day <= 6:
        raise ValidationError(_("Choose a weekday."))
    start_t, end_t = parse_clock(start, _("start time")), parse_clock(end, _("end time"))
    if end_t <= start_t:
        raise ValidationError(_("The end time must be after the start time."))
    existing = session.execute(
        sa.select(DoctorAvailability).where(DoctorAvailability.doctor_id == doctor.id, DoctorAvailability.weekday == day)
    ).scalars()
    for block in existing:
        if start_t < block.end_time and block.start_time < end_t:
            raise Conflict(_("That overlaps the {start}–{end} block on {weekday}.").format(
                start=format_time(block.start_time), end=format_time(block.end_time), weekday=_(WEEKDAYS[day])))
    block = DoctorAvailability(doctor_id=doctor.id, weekday=day, start_time=start_t, end_time=end_t)
    session.add(block)
    session.flush()
    audit.record(session, actor, "schedule.hours.add", entity_type="doctor_availability", entity_id=block.id,
                 detail=f"doctor {doctor.id}: {WEEKDAYS[day]} {start_t.isoformat('minutes')}-{end_t.isoformat('minutes')}")
    events.publish(session, "appointments", user_ids=[doctor.id])
    session.commit()
    return block.id


def _remove_schedule_entry(session: Session, actor: Actor, doctor_id: object, model: type[DoctorAvailability]
                           | type[DoctorLeave], entry_id: object, action: str, missing: str) -> None:
    """Delete one of a doctor's hour blocks or leave entries; another doctor's answers "not found"."""
    doctor = _doctor_for_schedule(session, actor, doctor_id, action)
    entry = access_by_id(session, actor, model, entry_id, action=action, missing=missing,
                         entity_type=model.__tablename__, allowed=lambda e: e.doctor_id == doctor.id)
    session.delete(entry)
    audit.record(session, actor, action, entity_type=model.__tablename__, entity_id=entry.id,
                 detail=f"doctor {doctor.id}")
    events.publish(session, "appointments", user_ids=[doctor.id])
    session.commit()


def remove_hours(*, session: Session, actor: Actor, doctor_id: int, block_id: int) -> None:
    """Remove a block of weekly hours. Booked appointments keep their times."""
    _remove_schedule_entry(session, actor, doctor_id, DoctorAvailability, block_id, "schedule.hours.remove",
                           N_("Those hours do not exist."))


def set_slot_minutes(*, session: Session, actor: Actor, doctor_id: int, minutes: object) -> None:
    doctor = _doctor_for_schedule(session, actor, doctor_id, "schedule.slot_length")
    try:
        value = int(minutes)
    except (TypeError, ValueError, OverflowError):
        value = 0
    if not 5 <= value <= 240:
        raise ValidationError(_("The slot length must be between 5 and 240 minutes."))
    profile = session.get(DoctorProfile, doctor.id)
    old = profile.slot_minutes
    profile.slot_minutes = value
    session.add(profile)
    audit.record(session, actor, "schedule.slot_length", entity_type="doctor_profile", entity_id=doctor.id,
                 detail=f"{old} -> {value} minutes")  # i18n: not shown
    events.publish(session, "appointments", user_ids=[doctor.id])
    session.commit()


def add_leave(
    *, session: Session, actor: Actor, doctor_id: int, date_from: str, date_to: str = "",
    start: str = "", end: str = "", reason: str = "",
) -> int:
    """Record leave: whole days from ``date_from`` to ``date_to``, or hours on one day.

    Leave may not cover active appointments: they must be cancelled or moved first, so no
    patient is left with a booking the doctor cannot keep.
    """
    doctor = _doctor_for_schedule(session, actor, doctor_id, "schedule.leave.add")
    first = parse_day(date_from, _("first day"))
    last = parse_day(date_to, _("last day")) if str(date_to or "").strip() else first
    if last < first:
        raise ValidationError(_("The last day must not be before the first day."))
    if (last - first).days > 366:
        raise ValidationError(_("Leave can cover at most a year at a time."))
    if str(start or "").strip() or str(end or "").strip():
        if last != first:
            raise ValidationError(_("Leave by the hour must fall on one day."))
        start_t, end_t = parse_clock(start, _("start time")), parse_clock(end, _("end time"))
        if end_t <= start_t:
            raise ValidationError(_("The end time must be after the start time."))
        starts_at = _to_utc_if_real(datetime.combine(first, start_t)) or day_span_utc(first)[0]
        ends_at = _to_utc_if_real(datetime.combine(first, end_t)) or day_span_utc(first)[1]
    else:
        starts_at, ends_at = day_span_utc(first)[0], day_span_utc(last)[1]
    if ends_at <= utcnow():
        raise ValidationError(_("That leave is entirely in the past."))
    clashes = session.execute(
        sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.doctor_id == doctor.id,
            Appointment.status.in_([s.value for s in ACTIVE_APPOINTMENT_STATUSES]),
            Appointment.starts_at < ends_at,
            Appointment.ends_at > starts_at,
        )
    ).scalar_one()
    if clashes:
        # One English text for any count (as it always read); the translations have their forms.
        raise Conflict(ngettext("{n} active appointment(s) fall in that period. Cancel or reschedule them first.",
                                "{n} active appointment(s) fall in that period. Cancel or reschedule them first.",
                                clashes).format(n=clashes))
    leave = DoctorLeave(doctor_id=doctor.id, starts_at=starts_at, ends_at=ends_at,
                        reason=storable(str(reason or "")[:200], _("reason")))
    session.add(leave)
    session.flush()
    audit.record(session, actor, "schedule.leave.add", entity_type="doctor_leave", entity_id=leave.id,
                 detail=f"doctor {doctor.id}: {starts_at.isoformat()} to {ends_at.isoformat()}")
    events.publish(session, "appointments", user_ids=[doctor.id])
    session.commit()
    return leave.id


def remove_leave(*, session: Session, actor: Actor, doctor_id: int, leave_id: int) -> None:
    _remove_schedule_entry(session, actor, doctor_id, DoctorLeave, leave_id, "schedule.leave.remove",
                           N_("That leave does not exist."))
