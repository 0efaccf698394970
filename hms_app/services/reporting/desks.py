"""What the doctor's and the lab's dashboards show: the day's work and what waits, counted in SQL.

The doctor's desk: today's visits (time, patient, status, reason) and how many appointment
requests, results to review and unacknowledged critical values wait, each with the page that
deals with it. The lab's desk: the open orders by status and by priority, and today's
turnaround (how many results were entered today, and their median time from order to result).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import AppointmentStatus, LabOrderStatus, LabPriority, Permission
from hms_app.db.models import Appointment, LabOrder, LabResult, User
from hms_app.db.types import utcnow
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import day_span_utc, format_time, local_date
from hms_app.services.laboratory import lab

MAX_TODAY = 60
"""More visits than a doctor sees in a day: the list stops there rather than grow unbounded."""
_STATUS_TILES = {
    LabOrderStatus.REQUESTED.value: N_("Requested"),
    LabOrderStatus.COLLECTED.value: N_("Collected"),
    LabOrderStatus.IN_PROGRESS.value: N_("In progress"),
}
_PRIORITY_TILES = {LabPriority.STAT: N_("Stat"), LabPriority.URGENT: N_("Urgent"), LabPriority.ROUTINE: N_("Routine")}
"""The lab desk's tiles: the open orders by status, and by priority (most pressing first)."""


@dataclass(frozen=True)
class DeskCount:
    """One count on a dashboard, with the page that deals with what it counts."""

    key: str
    label: str
    count: int
    link: str = ""


@dataclass(frozen=True)
class TodayVisit:
    appointment_id: int
    time: str
    patient: str
    status: str
    status_value: str
    reason: str


@dataclass(frozen=True)
class DoctorDesk:
    today: list[TodayVisit]
    waiting: list[DeskCount]
    """Appointment requests, results to review, unacknowledged critical values."""


@dataclass(frozen=True)
class LabDesk:
    by_status: list[DeskCount]
    by_priority: list[DeskCount]
    open_total: int
    resulted_today: int
    median_turnaround: str
    """The median time from order to result of today's results ("42 min"); "" with none."""


def doctor_desk(*, session: Session, actor: Actor) -> DoctorDesk:
    """The signed-in doctor's day: their visits today (not the cancelled or declined ones), and
    what waits for them."""
    require(session, actor, Permission.CLINICAL_READ, action="desk.doctor")
    start, end = day_span_utc(local_date(utcnow()))
    rows = session.execute(
        sa.select(Appointment.id, Appointment.starts_at, User.full_name, Appointment.status, Appointment.reason)
        .join(User, User.id == Appointment.patient_id)
        .where(Appointment.doctor_id == actor.user_id, Appointment.starts_at >= start, Appointment.starts_at < end,
               Appointment.status.not_in([AppointmentStatus.CANCELLED.value, AppointmentStatus.DECLINED.value]))
        .order_by(Appointment.starts_at, Appointment.id).limit(MAX_TODAY)
    ).all()
    today = [TodayVisit(id_, format_time(starts), name, AppointmentStatus(status).label, str(status), reason)
             for id_, starts, name, status, reason in rows]
    requests = session.execute(
        sa.select(sa.func.count()).select_from(Appointment)
        .where(Appointment.doctor_id == actor.user_id, Appointment.status == AppointmentStatus.REQUESTED.value,
               Appointment.starts_at >= utcnow())
    ).scalar_one()
    waiting = [
        DeskCount("requests", _("Appointment requests"), requests, "/doctor/appointments"),
        DeskCount("review", _("Results to review"), lab.results_to_review_count(session=session, actor=actor),
                  lab.DOCTOR_RESULTS_LINK),
        DeskCount("critical", _("Critical values to acknowledge"),
                  lab.unacknowledged_critical_count(session=session, actor=actor), lab.DOCTOR_RESULTS_LINK),
    ]
    return DoctorDesk(today, waiting)


def _median_turnaround(session: Session, resulted_today: sa.ColumnElement[bool], count: int) -> str:
    """The median of today's turnaround times, read off the sorted column (SQLite has no median)."""
    if not count:
        return ""
    middle = session.execute(
        sa.select(LabResult.turnaround_seconds).where(resulted_today).order_by(LabResult.turnaround_seconds)
        .offset((count - 1) // 2).limit(2 - count % 2)
    ).scalars().all()
    return lab.duration_text(round(sum(middle) / len(middle) / 60))


def lab_desk(*, session: Session, actor: Actor) -> LabDesk:
    """The lab's open orders by status and priority, and today's turnaround."""
    require(session, actor, Permission.LAB_WORK, action="desk.lab")
    open_orders = LabOrder.status.in_(lab.OPEN_STATUSES)
    statuses = dict(session.execute(sa.select(LabOrder.status, sa.func.count()).where(open_orders)
                                    .group_by(LabOrder.status)).all())
    priorities = dict(session.execute(sa.select(LabOrder.priority, sa.func.count()).where(open_orders)
                                      .group_by(LabOrder.priority)).all())
    by_status = [DeskCount(s, _(_STATUS_TILES[s]), statuses.get(s, 0), "/lab/worklist") for s in lab.OPEN_STATUSES]
    by_priority = [DeskCount(p.value, _(label), priorities.get(p.value, 0), "/lab/worklist")
                   for p, label in _PRIORITY_TILES.items()]
    start, end = day_span_utc(local_date(utcnow()))
    resulted_today = sa.and_(LabResult.resulted_at >= start, LabResult.resulted_at < end)
    count = session.execute(sa.select(sa.func.count()).select_from(LabResult).where(resulted_today)).scalar_one()
    return LabDesk(by_status, by_priority, sum(c.count for c in by_status), count,
                   _median_turnaround(session, resulted_today, count))

