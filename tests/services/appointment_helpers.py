"""Helpers shared by the scheduling, appointment, waitlist and booking-race tests.

The services read the time through ``utcnow`` imported by name into ``scheduling`` and
``appointments``; ``Clock`` replaces both with one settable instant, so "now", "today",
the past and daylight-saving days are the same on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import (
    Appointment,
    Department,
    DoctorProfile,
    Notification,
    User,
    WaitlistEntry,
)
from hms_app.services.administration import auth
from hms_app.services.booking import appointments, scheduling
from hms_app.services.core import localtime
from hms_app.services.core.actor import Actor, Anonymous
from tests.conftest import login_as
from tests.services.helpers import STRONG_PASSWORD

NOW = datetime(2027, 3, 15, 8, 0, tzinfo=UTC)
"""Monday 15 March 2027, 08:00 in London (GMT): the frozen "now" of these tests."""
DAY = date(2027, 3, 24)
"""A Wednesday nine days later, before the clocks change, with no demo appointments."""
SPRING_FORWARD = date(2027, 3, 28)
"""Sunday: London's clocks go from 01:00 GMT to 02:00 BST."""
FALL_BACK = date(2027, 10, 31)
"""Sunday: London's clocks go from 02:00 BST back to 01:00 GMT."""

PATIENT_EMAIL = "maria.garcia@patients.example"
OTHER_PATIENT_EMAIL = "james.smith@patients.example"
OTHER_DOCTOR_EMAIL = "rohan.mehta@hms.example"  # Cardiology, like amelia.hart


class Clock:
    """A stand-in for ``utcnow`` that returns whatever instant the test set."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def freeze(monkeypatch: pytest.MonkeyPatch, now: datetime = NOW) -> Clock:
    clock = Clock(now)
    monkeypatch.setattr(scheduling, "utcnow", clock)
    monkeypatch.setattr(appointments, "utcnow", clock)
    monkeypatch.setattr(localtime, "utcnow", clock)  # "today" in the hospital's calendar
    return clock


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC instant of a wall-clock time in the hospital's time zone."""
    return datetime.combine(day, time(hour, minute), tzinfo=settings.TIMEZONE).astimezone(UTC)


def iso(instant: datetime) -> str:
    return instant.isoformat()


def call(engine: sa.Engine, service: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one service call in a session of its own, as a state handler does."""
    with session_scope(engine=engine) as s:
        return service(session=s, **kwargs)


def user_id(engine: sa.Engine, email: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(User.id).where(User.email == email)).scalar_one()


def department_id(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(Department.id).where(Department.name == name)).scalar_one()


def doctors_of(engine: sa.Engine, department: str) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(DoctorProfile.user_id).join(Department, Department.id == DoctorProfile.department_id)
            .where(Department.name == department).order_by(DoctorProfile.user_id)
        ).scalars())


def book(engine: sa.Engine, actor: Actor, doctor: object, starts_at: datetime, *, department: str = "Cardiology",
         reason: str = "Chest pain") -> int:
    return call(engine, appointments.book_appointment, actor=actor, department_id=department_id(engine, department),
                doctor_id=doctor, starts_at=iso(starts_at), reason=reason)


def appointment(engine: sa.Engine, appointment_id: int) -> Appointment:
    with session_scope(write=False, engine=engine) as s:
        return s.get(Appointment, appointment_id)


def insert_appointment(
    engine: sa.Engine, *, patient_id: int, doctor_id: int, starts_at: datetime, minutes: int = 20,
    status: AppointmentStatus = AppointmentStatus.CONFIRMED, department: str = "Cardiology",
) -> int:
    """Write an appointment row directly (booking refuses the past)."""
    with session_scope(engine=engine) as s:
        row = Appointment(patient_id=patient_id, doctor_id=doctor_id, department_id=department_id(engine, department),
                          starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), status=status,
                          reason="Inserted by the test")
        s.add(row)
        s.commit()
        return row.id


def free_starts(engine: sa.Engine, doctor_id: int, day: date, now: datetime | None = None) -> list[datetime]:
    with session_scope(write=False, engine=engine) as s:
        return [slot.starts_at for slot in scheduling.free_slots_for(s, doctor_id, day, now=now)]


def last_notification_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(Notification.id))).scalar_one() or 0


def notifications_since(engine: sa.Engine, after_id: int) -> list[tuple[int, str, str]]:
    """(recipient, title, body) of every notification written after ``after_id``."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(Notification.user_id, Notification.title, Notification.body)
            .where(Notification.id > after_id).order_by(Notification.id)
        )]


def waitlist_entry(engine: sa.Engine, entry_id: int) -> WaitlistEntry:
    with session_scope(write=False, engine=engine) as s:
        return s.get(WaitlistEntry, entry_id)


def active_at(engine: sa.Engine, doctor_id: int, starts_at: datetime) -> list[Appointment]:
    """The active appointments of a doctor starting at an instant."""
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(Appointment).where(
            Appointment.doctor_id == doctor_id, Appointment.starts_at == starts_at,
            Appointment.status.in_([AppointmentStatus.REQUESTED.value, AppointmentStatus.CONFIRMED.value]),
        )).scalars())


def register_patients(engine: sa.Engine, count: int, prefix: str = "patient") -> list[Actor]:
    """Register ``count`` new patients through the service and log each of them in."""
    form = auth.Registration(full_name="Extra Patient", email="", password=STRONG_PASSWORD,
                             birth_date="1985-06-01", phone="+44 20 7946 0000")
    emails = [f"{prefix}{i}@example.org" for i in range(count)]
    for number, email in enumerate(emails):
        # Each from an address of its own, as many people register: one address is throttled.
        call(engine, auth.register_patient, visitor=Anonymous(f"10.7.{number // 250}.{number % 250 + 1}"),
             form=replace(form, email=email))
    return [login_as(engine, email, STRONG_PASSWORD) for email in emails]
