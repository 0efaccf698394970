"""The admin's hospital reports: aggregates over a date range, and their CSV export.

Each report is a GROUP BY in SQL that returns a few small rows. Dates are days of the
hospital's calendar (``settings.TIMEZONE``); the database stores UTC. The range and the
local day or month of each row come from ``core.periods`` (shared with the accounts
dashboard), which buckets daylight-saving changes alike on SQLite and PostgreSQL.

Doctor utilisation is the one report with a part outside SQL: slots are derived, never
stored, so the slots a doctor offered are cut from their weekly hours by the scheduling
service's own ``open_slots`` (minus leave); the bookings are counted in SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import (
    APPOINTMENT_STATUS_LABELS,
    AppointmentStatus,
    LabPriority,
    Permission,
    Role,
)
from hms_app.db.models import (
    Appointment,
    Department,
    Dispensation,
    DoctorAvailability,
    DoctorLeave,
    DoctorProfile,
    LabOrder,
    LabResult,
    LabTest,
    StockBatch,
    StockMovement,
    User,
)
from hms_app.services.booking import scheduling
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.periods import (
    ReportRange,
    local_period,
    parse_report_range,
    periods_of,
    within,
)
from hms_app.services.core.spreadsheet import rows_to_csv

SLOT_HOLDING_STATUSES = (
    AppointmentStatus.REQUESTED,
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.COMPLETED,
    AppointmentStatus.NO_SHOW,
)
"""Appointments that took a slot: a no-show still kept the slot from anyone else; a
cancelled or declined appointment gave it back."""

_PRIORITY_ORDER = {LabPriority.STAT.value: 0, LabPriority.URGENT.value: 1, LabPriority.ROUTINE.value: 2}


# --- the rows of each report -----------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentCount:
    period: str
    department: str
    status: str
    """The status's label in English ("No-show"): the charts key their colours on it and translate it."""
    appointments: int


@dataclass(frozen=True)
class DoctorUtilisation:
    doctor: str
    department: str
    available_slots: int
    """Slots of the doctor's weekly hours in the range, less leave (bookings and the past not taken off)."""
    booked: int
    """Appointments in the range that held a slot (``SLOT_HOLDING_STATUSES``)."""
    utilisation_percent: float | None
    """``booked`` as a percentage of ``available_slots``; None when there were none."""


@dataclass(frozen=True)
class LabTurnaround:
    test_code: str
    test: str
    priority: str
    """In English ("Stat"): the charts key their colours on it and translate it."""
    results: int
    average_minutes: float
    longest_minutes: float


@dataclass(frozen=True)
class PharmacyPeriod:
    period: str
    dispensations: int
    units_dispensed: int
    dispensed_value_cents: int
    """At the price charged when dispensed."""
    stock_value_cents: int
    """Stock on hand at cost at the end of the period, rebuilt from the stock ledger."""


@dataclass(frozen=True)
class NewPatientsMonth:
    month: str
    new_patients: int


def _appointments(session: Session, window: ReportRange) -> list[AppointmentCount]:
    rows = sa.select(
        local_period(session, Appointment.starts_at, window, window.per).label("period"),
        Department.name.label("department"),
        Appointment.status.label("status"),
    ).join(Department, Department.id == Appointment.department_id).where(
        within(Appointment.starts_at, window)
    ).subquery()
    counts = session.execute(
        sa.select(rows.c.period, rows.c.department, rows.c.status, sa.func.count())
        .group_by(rows.c.period, rows.c.department, rows.c.status)
        .order_by(rows.c.period, rows.c.department, rows.c.status)
    ).all()
    return [AppointmentCount(period, department, _status_label(status), int(n)) for period, department, status, n in counts]


def _status_label(status: str) -> str:
    try:
        return APPOINTMENT_STATUS_LABELS[AppointmentStatus(status)]
    except ValueError:
        return status


def _doctor_utilisation(session: Session, window: ReportRange) -> list[DoctorUtilisation]:
    booked = dict(session.execute(
        sa.select(Appointment.doctor_id, sa.func.count()).where(
            within(Appointment.starts_at, window),
            Appointment.status.in_([s.value for s in SLOT_HOLDING_STATUSES]),
        ).group_by(Appointment.doctor_id)
    ).all())
    hours: dict[int, dict[int, list[tuple[time, time]]]] = defaultdict(lambda: defaultdict(list))
    for doctor_id, weekday, start, end in session.execute(
        sa.select(DoctorAvailability.doctor_id, DoctorAvailability.weekday, DoctorAvailability.start_time,
                  DoctorAvailability.end_time)
    ):
        hours[doctor_id][weekday].append((start, end))
    leave: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for leave_row in session.execute(
        sa.select(DoctorLeave).where(DoctorLeave.starts_at < window.ends_at, DoctorLeave.ends_at > window.starts_at)
    ).scalars():
        leave[leave_row.doctor_id].append((leave_row.starts_at, leave_row.ends_at))
    doctors = session.execute(
        sa.select(DoctorProfile.user_id, DoctorProfile.slot_minutes, User.full_name, User.is_active, Department.name)
        .join(User, User.id == DoctorProfile.user_id)
        .join(Department, Department.id == DoctorProfile.department_id)
        .where(User.role == Role.DOCTOR.value)
        .order_by(Department.name, User.full_name, DoctorProfile.user_id)
    ).all()
    days = [window.first_day + timedelta(days=i) for i in range(window.days)]
    # Doctors often share their hours: a day's slots without leave are cut once per set of hours.
    offered: dict[tuple, int] = {}

    def slots_on(day: date, blocks: list[tuple[time, time]], slot_minutes: int,
                 absences: list[tuple[datetime, datetime]]) -> int:
        if absences:
            return len(scheduling.open_slots(day, blocks, slot_minutes, absences))
        key = (day, tuple(sorted(blocks)), slot_minutes)
        if key not in offered:
            offered[key] = len(scheduling.open_slots(day, blocks, slot_minutes, []))
        return offered[key]

    rows = []
    for doctor_id, slot_minutes, name, is_active, department in doctors:
        weekly = hours.get(doctor_id, {})
        available = 0
        for day in days:
            if weekly.get(day.weekday()):
                starts, ends = scheduling.day_span_utc(day)
                absences = [(s, e) for s, e in leave.get(doctor_id, []) if s < ends and e > starts]
                available += slots_on(day, weekly[day.weekday()], slot_minutes, absences)
        taken = int(booked.get(doctor_id, 0))
        if not taken and (not available or not is_active):
            continue
        percent = round(100 * taken / available, 1) if available else None
        rows.append(DoctorUtilisation(name, department, available, taken, percent))
    return rows


def _lab_turnaround(session: Session, window: ReportRange) -> list[LabTurnaround]:
    rows = session.execute(
        sa.select(LabTest.code, LabTest.name, LabOrder.priority, sa.func.count(),
                  sa.func.avg(LabResult.turnaround_seconds), sa.func.max(LabResult.turnaround_seconds))
        .join(LabOrder, LabOrder.id == LabResult.order_id)
        .join(LabTest, LabTest.id == LabOrder.test_id)
        .where(within(LabResult.resulted_at, window))
        .group_by(LabTest.code, LabTest.name, LabOrder.priority)
    ).all()
    result = [
        LabTurnaround(code, name, str(priority).capitalize(), int(n), round(float(average) / 60, 1),
                      round(float(longest) / 60, 1))
        for code, name, priority, n, average, longest in rows
    ]
    return sorted(result, key=lambda r: (_PRIORITY_ORDER.get(r.priority.lower(), 9), r.test, r.test_code))


def _pharmacy(session: Session, window: ReportRange) -> list[PharmacyPeriod]:
    value = StockMovement.quantity * StockBatch.unit_cost_cents
    opening = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(value), 0))
        .join(StockBatch, StockBatch.id == StockMovement.batch_id)
        .where(StockMovement.created_at < window.starts_at)
    ).scalar_one()
    moves = sa.select(
        local_period(session, StockMovement.created_at, window, window.per).label("period"), value.label("value")
    ).join(StockBatch, StockBatch.id == StockMovement.batch_id).where(
        within(StockMovement.created_at, window)
    ).subquery()
    change = dict(session.execute(
        sa.select(moves.c.period, sa.func.sum(moves.c.value)).group_by(moves.c.period)
    ).all())
    handed_out = sa.select(
        local_period(session, Dispensation.dispensed_at, window, window.per).label("period"),
        Dispensation.quantity.label("quantity"),
        (Dispensation.quantity * Dispensation.unit_price_cents).label("value"),
    ).where(within(Dispensation.dispensed_at, window)).subquery()
    dispensed = {
        period: (int(n), int(units), int(amount))
        for period, n, units, amount in session.execute(
            sa.select(handed_out.c.period, sa.func.count(), sa.func.sum(handed_out.c.quantity),
                      sa.func.sum(handed_out.c.value)).group_by(handed_out.c.period)
        )
    }
    rows, stock_value = [], int(opening)
    for period in window.periods:
        stock_value += int(change.get(period) or 0)
        n, units, amount = dispensed.get(period, (0, 0, 0))
        rows.append(PharmacyPeriod(period, n, units, amount, stock_value))
    return rows


def _new_patients(session: Session, window: ReportRange) -> list[NewPatientsMonth]:
    joined = sa.select(local_period(session, User.created_at, window, "month").label("month")).where(
        User.role == Role.PATIENT.value, within(User.created_at, window)
    ).subquery()
    counts = dict(session.execute(sa.select(joined.c.month, sa.func.count()).group_by(joined.c.month)).all())
    return [NewPatientsMonth(month, int(counts.get(month, 0))) for month in periods_of(window, "month")]


@dataclass(frozen=True)
class _Report:
    title: str
    """In English (``N_``): translated where shown."""
    row_type: type
    compute: Callable[[Session, ReportRange], list]


REPORTS: dict[str, _Report] = {
    "appointments": _Report(N_("Appointments by department and status"), AppointmentCount, _appointments),
    "doctor-utilisation": _Report(N_("Doctor utilisation"), DoctorUtilisation, _doctor_utilisation),
    "lab-turnaround": _Report(N_("Lab turnaround times"), LabTurnaround, _lab_turnaround),
    "pharmacy": _Report(N_("Pharmacy dispensing and stock value"), PharmacyPeriod, _pharmacy),
    "new-patients": _Report(N_("New patients per month"), NewPatientsMonth, _new_patients),
}
"""Every report by the name its CSV export is asked for."""


# --- the services ----------------------------------------------------------------------------


def _view(session: Session, actor: Actor, name: str, start: object, end: object) -> list:
    require(session, actor, Permission.REPORTS_VIEW, action="report.view")
    window = parse_report_range(start, end)
    rows = REPORTS[name].compute(session, window)
    audit.record(session, actor, "report.view", entity_type="report", entity_id=name,
                 detail=f"{window.first_day}..{window.last_day}")
    session.commit()
    return rows


def report_appointments(*, session: Session, actor: Actor, start: object, end: object) -> list[AppointmentCount]:
    """Appointments starting in the range, per local day or month, department and status."""
    return _view(session, actor, "appointments", start, end)


def report_doctor_utilisation(*, session: Session, actor: Actor, start: object, end: object
                              ) -> list[DoctorUtilisation]:
    """Per doctor: the slots offered in the range (hours less leave) and how many were booked."""
    return _view(session, actor, "doctor-utilisation", start, end)


def report_lab_turnaround(*, session: Session, actor: Actor, start: object, end: object) -> list[LabTurnaround]:
    """Per test and priority: results entered in the range and their time from order to result."""
    return _view(session, actor, "lab-turnaround", start, end)


def report_pharmacy(*, session: Session, actor: Actor, start: object, end: object) -> list[PharmacyPeriod]:
    """Per local day or month: what was dispensed, and the stock's value at cost at its end."""
    return _view(session, actor, "pharmacy", start, end)


def report_new_patients(*, session: Session, actor: Actor, start: object, end: object) -> list[NewPatientsMonth]:
    """Patient accounts created in each local month of the range."""
    return _view(session, actor, "new-patients", start, end)


@dataclass(frozen=True)
class HospitalReports:
    """Every report over one range, for the reports page."""

    dates: ReportRange
    appointments: list[AppointmentCount]
    doctor_utilisation: list[DoctorUtilisation]
    lab_turnaround: list[LabTurnaround]
    pharmacy: list[PharmacyPeriod]
    new_patients: list[NewPatientsMonth]


def hospital_reports(*, session: Session, actor: Actor, start: object, end: object) -> HospitalReports:
    """All the reports at once (one permission check, one audit row)."""
    require(session, actor, Permission.REPORTS_VIEW, action="report.view")
    window = parse_report_range(start, end)
    reports = HospitalReports(
        dates=window,
        appointments=_appointments(session, window),
        doctor_utilisation=_doctor_utilisation(session, window),
        lab_turnaround=_lab_turnaround(session, window),
        pharmacy=_pharmacy(session, window),
        new_patients=_new_patients(session, window),
    )
    audit.record(session, actor, "report.view", entity_type="report", entity_id="all",
                 detail=f"{window.first_day}..{window.last_day}")
    session.commit()
    return reports


def export_report_csv(*, session: Session, actor: Actor, report: str, start: object, end: object) -> str:
    """One report over the range as CSV text; the export is audited."""
    require(session, actor, Permission.REPORTS_VIEW, action="report.export")
    chosen = REPORTS.get(str(report))
    if chosen is None:
        raise ValidationError(_("Choose one of the reports on the page."))
    window = parse_report_range(start, end)
    rows = chosen.compute(session, window)
    audit.record(session, actor, "report.export", entity_type="report", entity_id=str(report),
                 detail=f"{window.first_day}..{window.last_day}; {len(rows)} rows")
    session.commit()
    return rows_to_csv(chosen.row_type, rows)
