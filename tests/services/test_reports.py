"""The admin's reports: exact aggregates of rows the tests write, local-day bucketing across
London's daylight-saving changes, who may see them, the date range, and the CSV export.

The demo hospital's appointments, stock and patients are dated around the real today; these
tests report on 2025, where only their own rows fall (the demo doctors' weekly hours apply
to every week, so the utilisation test counts them too).
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import (
    AppointmentStatus,
    LabOrderStatus,
    PrescriptionStatus,
    Role,
    StockMovementKind,
)
from hms_app.db.models import (
    Department,
    Dispensation,
    DoctorAvailability,
    DoctorLeave,
    LabOrder,
    LabResult,
    Medicine,
    Prescription,
    PrescriptionItem,
    StockBatch,
    StockMovement,
    User,
)
from hms_app.services.administration import permissions
from hms_app.services.core import periods, spreadsheet
from hms_app.services.core.errors import SessionExpired, ValidationError
from hms_app.services.core.language import use_language
from hms_app.services.core.localtime import local_today
from hms_app.services.reporting import reports
from hms_app.services.reporting.reports import (
    AppointmentCount,
    DoctorUtilisation,
    LabTurnaround,
    NewPatientsMonth,
    PharmacyPeriod,
)
from tests.conftest import DEMO_EMAIL, login_as
from tests.services.appointment_helpers import call, insert_appointment, user_id
from tests.services.helpers import assert_refused, audit_events, last_audit_id
from tests.services.lab_helpers import lab_test_id

pytestmark = pytest.mark.db

PATIENT = "maria.garcia@patients.example"
AMELIA = "amelia.hart@hms.example"  # Cardiology
ROHAN = "rohan.mehta@hms.example"  # Cardiology
PRIYA = "priya.nair@hms.example"  # Dermatology
SPRING = ("2025-03-29", "2025-03-31")
"""Saturday to Monday around Sunday 30 March 2025, when London's clocks went from 01:00 GMT to 02:00 BST."""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def insert(engine: sa.Engine, *rows: object) -> list[int]:
    """Write rows directly (the services date everything now); returns their ids."""
    with session_scope(engine=engine) as s:
        for row in rows:
            s.add(row)
            s.flush()
        s.commit()
        return [getattr(row, "id", None) for row in rows]


def run(engine: sa.Engine, actor, service, start: str, end: str, **kwargs):
    return call(engine, service, actor=actor, start=start, end=end, **kwargs)


@pytest.fixture
def admin(actors):
    return actors[Role.ADMIN]


@pytest.fixture
def people(seeded):
    found = {email: user_id(seeded, email) for email in (PATIENT, AMELIA, ROHAN, PRIYA)}
    with session_scope(write=False, engine=seeded) as s:
        found["patients"] = itertools.cycle(s.execute(
            sa.select(User.id).where(User.role == Role.PATIENT.value).order_by(User.id)).scalars().all())
    return found


def book(engine, people, doctor: str, starts_at: datetime, status=AppointmentStatus.CONFIRMED,
         department: str = "Cardiology") -> int:
    """A one-minute appointment of the next demo patient, so that none overlap another (PostgreSQL's
    exclusion constraints): only the start counts for the reports."""
    return insert_appointment(engine, patient_id=next(people["patients"]), doctor_id=people[doctor],
                              starts_at=starts_at, minutes=1, status=status, department=department)


# --- the time zone -----------------------------------------------------------------------------


def test_the_offset_pieces_find_londons_changes_to_the_second():
    # Spring: 01:00 UTC on 30 March 2025; autumn: 01:00 UTC on 26 October 2025.
    assert periods.utc_offset_pieces(utc(2025, 3, 30), utc(2025, 3, 30, 23)) == [
        (utc(2025, 3, 30), 0), (utc(2025, 3, 30, 1), 3600)]
    assert periods.utc_offset_pieces(utc(2025, 10, 25, 23), utc(2025, 10, 27)) == [
        (utc(2025, 10, 25, 23), 3600), (utc(2025, 10, 26, 1), 0)]
    year = reports.parse_report_range("2025-01-01", "2025-12-31")
    assert periods.utc_offset_pieces(year.starts_at, year.ends_at) == [
        (utc(2025, 1, 1), 0), (utc(2025, 3, 30, 1), 3600), (utc(2025, 10, 26, 1), 0)]
    assert periods.utc_offset_pieces(utc(2025, 7, 1), utc(2025, 7, 31)) == [(utc(2025, 7, 1), 3600)]


def test_a_range_is_the_utc_span_of_its_local_days():
    spring = reports.parse_report_range(*SPRING)
    assert (spring.starts_at, spring.ends_at) == (utc(2025, 3, 29), utc(2025, 3, 31, 23))
    assert (spring.days, spring.per, spring.label) == (3, "day", "29 Mar 2025 – 31 Mar 2025")
    autumn = reports.parse_report_range("2025-10-26", "2025-10-26")
    assert (autumn.starts_at, autumn.ends_at) == (utc(2025, 10, 25, 23), utc(2025, 10, 27))
    assert reports.parse_report_range("2025-01-01", "2025-04-02").per == "day"  # 92 days
    assert reports.parse_report_range("2025-01-01", "2025-04-03").per == "month"  # 93 days


# --- appointments ------------------------------------------------------------------------------


def test_appointments_are_counted_per_local_day_department_and_status_across_the_spring_change(
        seeded, admin, people):
    book(seeded, people, AMELIA, utc(2025, 3, 28, 23, 40))  # Friday 23:40 GMT: before the range
    book(seeded, people, AMELIA, utc(2025, 3, 29, 0, 0))  # Saturday 00:00 GMT
    book(seeded, people, ROHAN, utc(2025, 3, 29, 23, 30), AppointmentStatus.COMPLETED)  # Saturday 23:30 GMT
    book(seeded, people, AMELIA, utc(2025, 3, 30, 0, 30), AppointmentStatus.NO_SHOW)  # Sunday 00:30 GMT
    book(seeded, people, ROHAN, utc(2025, 3, 30, 22, 59), AppointmentStatus.COMPLETED)  # Sunday 23:59 BST
    book(seeded, people, AMELIA, utc(2025, 3, 30, 23, 0), AppointmentStatus.CANCELLED)  # Monday 00:00 BST
    book(seeded, people, ROHAN, utc(2025, 3, 30, 23, 30))  # Monday 00:30 BST, still Sunday in UTC
    book(seeded, people, PRIYA, utc(2025, 3, 31, 9), AppointmentStatus.REQUESTED, department="Dermatology")
    book(seeded, people, PRIYA, utc(2025, 3, 31, 22, 59), department="Dermatology")  # Monday 23:59 BST
    book(seeded, people, AMELIA, utc(2025, 3, 31, 23, 0))  # Tuesday 00:00 BST: after the range

    rows = run(seeded, admin, reports.report_appointments, *SPRING)

    assert rows == [
        AppointmentCount("2025-03-29", "Cardiology", "Completed", 1),
        AppointmentCount("2025-03-29", "Cardiology", "Confirmed", 1),
        AppointmentCount("2025-03-30", "Cardiology", "Completed", 1),
        AppointmentCount("2025-03-30", "Cardiology", "No-show", 1),
        AppointmentCount("2025-03-31", "Cardiology", "Cancelled", 1),
        AppointmentCount("2025-03-31", "Cardiology", "Confirmed", 1),
        AppointmentCount("2025-03-31", "Dermatology", "Confirmed", 1),
        AppointmentCount("2025-03-31", "Dermatology", "Pending", 1),
    ]


def test_appointments_on_the_autumn_change_fall_on_their_local_day(seeded, admin, people):
    book(seeded, people, AMELIA, utc(2025, 10, 25, 22, 59))  # Saturday 23:59 BST
    book(seeded, people, AMELIA, utc(2025, 10, 25, 23, 0))  # Sunday 00:00 BST
    book(seeded, people, AMELIA, utc(2025, 10, 26, 0, 30))  # Sunday 01:30 BST, the first 01:30
    book(seeded, people, ROHAN, utc(2025, 10, 26, 1, 30))  # Sunday 01:30 GMT, the second 01:30
    book(seeded, people, AMELIA, utc(2025, 10, 26, 23, 59))  # Sunday 23:59 GMT
    book(seeded, people, AMELIA, utc(2025, 10, 27, 0, 0))  # Monday 00:00 GMT

    rows = run(seeded, admin, reports.report_appointments, "2025-10-25", "2025-10-27")

    assert [(r.period, r.appointments) for r in rows] == [("2025-10-25", 1), ("2025-10-26", 4), ("2025-10-27", 1)]


def test_a_long_range_counts_appointments_per_local_month(seeded, admin, people):
    book(seeded, people, AMELIA, utc(2025, 1, 31, 23, 59))  # 31 January, GMT
    book(seeded, people, AMELIA, utc(2025, 3, 31, 22, 59))  # 31 March 23:59 BST
    book(seeded, people, ROHAN, utc(2025, 3, 31, 23, 0))  # 1 April 00:00 BST
    book(seeded, people, ROHAN, utc(2025, 4, 1, 9))

    rows = run(seeded, admin, reports.report_appointments, "2025-01-01", "2025-06-30")

    assert rows == [
        AppointmentCount("2025-01", "Cardiology", "Confirmed", 1),
        AppointmentCount("2025-03", "Cardiology", "Confirmed", 1),
        AppointmentCount("2025-04", "Cardiology", "Confirmed", 2),
    ]


# --- doctor utilisation ------------------------------------------------------------------------


def test_utilisation_is_slots_booked_against_the_slots_of_the_hours_less_leave(seeded, admin, people):
    # The week of Monday 24 to Sunday 30 March 2025; every demo doctor works 09-12 and 13-17 on
    # weekdays in 20-minute slots: 21 slots a day, 105 a week.
    amelia = people[AMELIA]
    lucas, grace = user_id(seeded, "lucas.ortega@hms.example"), user_id(seeded, "grace.okafor@hms.example")
    insert(
        seeded,
        # Amelia: a whole day of leave on Wednesday (-21), and Sunday-night hours 00:00-03:00 on the day
        # the clocks skip 01:00-02:00: the slots touching the missing hour are not offered, so 5, not 9.
        DoctorLeave(doctor_id=amelia, starts_at=utc(2025, 3, 26), ends_at=utc(2025, 3, 27), reason="Course"),
        DoctorAvailability(doctor_id=amelia, weekday=6, start_time=time(0, 0), end_time=time(3, 0)),
    )
    for starts_at, status in [
        (utc(2025, 3, 24, 9), AppointmentStatus.COMPLETED),
        (utc(2025, 3, 25, 9), AppointmentStatus.NO_SHOW),
        (utc(2025, 3, 30, 2, 20), AppointmentStatus.CONFIRMED),  # Sunday 03:20 BST... outside hours, still booked
        (utc(2025, 3, 27, 9), AppointmentStatus.CANCELLED),  # gave its slot back
        (utc(2025, 3, 27, 9, 20), AppointmentStatus.DECLINED),  # never held one
        (utc(2025, 3, 31, 8), AppointmentStatus.CONFIRMED),  # the Monday after
    ]:
        book(seeded, people, AMELIA, starts_at, status)
    # Grace has no weekly hours left but a booking; Lucas is deactivated and has none.
    with session_scope(engine=seeded) as s:
        s.execute(sa.delete(DoctorAvailability).where(DoctorAvailability.doctor_id == grace))
        s.execute(sa.update(User).where(User.id == lucas).values(is_active=False))
        s.commit()
    insert_appointment(seeded, patient_id=people[PATIENT], doctor_id=grace, starts_at=utc(2025, 3, 25, 10),
                       minutes=1, department="Orthopedics", status=AppointmentStatus.COMPLETED)

    rows = run(seeded, admin, reports.report_doctor_utilisation, "2025-03-24", "2025-03-30")

    by_name = {r.doctor: r for r in rows}
    assert by_name["Dr. Amelia Hart"] == DoctorUtilisation("Dr. Amelia Hart", "Cardiology", 105 - 21 + 5, 3, 3.4)
    assert by_name["Dr. Rohan Mehta"] == DoctorUtilisation("Dr. Rohan Mehta", "Cardiology", 105, 0, 0.0)
    assert by_name["Dr. Grace Okafor"] == DoctorUtilisation("Dr. Grace Okafor", "Orthopedics", 0, 1, None)
    assert "Dr. Lucas Ortega" not in by_name
    assert [(r.department, r.doctor) for r in rows] == [
        ("Cardiology", "Dr. Amelia Hart"), ("Cardiology", "Dr. Rohan Mehta"),
        ("Dermatology", "Dr. Jonas Lindqvist"), ("Dermatology", "Dr. Priya Nair"),
        ("General Medicine", "Dr. Mateo Rossi"), ("General Medicine", "Dr. Olivia Chen"),
        ("Orthopedics", "Dr. Grace Okafor"),
        ("Pediatrics", "Dr. Hannah Becker"), ("Pediatrics", "Dr. Samuel Adeyemi"),
    ]
    assert {r.available_slots for r in rows if r.doctor not in {"Dr. Amelia Hart", "Dr. Grace Okafor"}} == {105}


# --- lab turnaround ----------------------------------------------------------------------------


def _resulted(engine, people, code: str, priority: str, resulted_at: datetime, minutes: int) -> None:
    ordered_at = resulted_at - timedelta(minutes=minutes)
    [order_id] = insert(engine, LabOrder(
        patient_id=people[PATIENT], doctor_id=people[AMELIA], test_id=lab_test_id(engine, code), priority=priority,
        status=LabOrderStatus.COMPLETED, ordered_at=ordered_at, collected_at=ordered_at, started_at=ordered_at,
    ))
    insert(engine, LabResult(order_id=order_id, value_numeric=1.0, verified_by=people[AMELIA],
                             resulted_at=resulted_at, turnaround_seconds=minutes * 60))


def test_lab_turnaround_averages_per_test_and_priority_the_results_entered_in_the_range(seeded, admin, people):
    _resulted(seeded, people, "HGB", "routine", utc(2025, 3, 29, 10), 60)
    _resulted(seeded, people, "HGB", "routine", utc(2025, 3, 31, 22, 59), 95)  # Monday 23:59 BST
    _resulted(seeded, people, "HGB", "stat", utc(2025, 3, 30, 12), 25)
    _resulted(seeded, people, "K", "urgent", utc(2025, 3, 30, 12), 130)
    _resulted(seeded, people, "K", "urgent", utc(2025, 3, 30, 13), 131)
    _resulted(seeded, people, "K", "urgent", utc(2025, 3, 31, 23, 0), 10)  # Tuesday 00:00 BST: outside
    _resulted(seeded, people, "HGB", "routine", utc(2025, 3, 28, 23, 59), 10)  # Friday: outside

    rows = run(seeded, admin, reports.report_lab_turnaround, *SPRING)

    assert rows == [
        LabTurnaround("HGB", "Haemoglobin", "Stat", 1, 25.0, 25.0),
        LabTurnaround("K", "Potassium", "Urgent", 2, 130.5, 131.0),
        LabTurnaround("HGB", "Haemoglobin", "Routine", 2, 77.5, 95.0),
    ]


# --- pharmacy ----------------------------------------------------------------------------------


def _medicine_with_stock(engine, people) -> tuple[int, int, int, int]:
    """A medicine of the test's own with two lots; returns (medicine, lot A, lot B, prescription item)."""
    [medicine_id] = insert(engine, Medicine(name="Reportamycin", form="tablet", strength="5 mg",
                                            unit_price_cents=250, ingredients="reportamycin"))
    lot_a, lot_b = insert(
        engine,
        StockBatch(medicine_id=medicine_id, lot="RPT-A", expiry_date=date(2027, 1, 1), quantity_on_hand=82,
                   unit_cost_cents=40, received_at=utc(2025, 3, 20)),
        StockBatch(medicine_id=medicine_id, lot="RPT-B", expiry_date=date(2027, 6, 1), quantity_on_hand=47,
                   unit_cost_cents=100, received_at=utc(2025, 3, 30, 12)),
    )
    [prescription_id] = insert(engine, Prescription(
        patient_id=people[PATIENT], doctor_id=people[AMELIA], status=PrescriptionStatus.DISPENSED))
    [item_id] = insert(engine, PrescriptionItem(prescription_id=prescription_id, medicine_id=medicine_id, dose="5 mg",
                                                route="oral", frequency="once daily", days=13, quantity=13,
                                                dispensed_quantity=13))
    return medicine_id, lot_a, lot_b, item_id


def _move(medicine_id: int, batch_id: int, kind: StockMovementKind, quantity: int, at: datetime,
          dispensation_id: int | None = None) -> StockMovement:
    return StockMovement(batch_id=batch_id, medicine_id=medicine_id, kind=kind, quantity=quantity, created_at=at,
                         dispensation_id=dispensation_id)


def _dispense(engine, people, item_id: int, batch_id: int, units: int, at: datetime) -> int:
    with session_scope(engine=engine) as s:
        item = s.get(PrescriptionItem, item_id)
        row = Dispensation(prescription_id=item.prescription_id, prescription_item_id=item_id, batch_id=batch_id,
                           quantity=units, unit_price_cents=250, dispensed_by=people[AMELIA], dispensed_at=at)
        s.add(row)
        s.commit()
        return row.id


def test_pharmacy_counts_dispensing_per_local_day_and_rebuilds_the_stock_value_from_the_ledger(
        seeded, admin, people):
    medicine, lot_a, lot_b, item = _medicine_with_stock(seeded, people)
    first = _dispense(seeded, people, item, lot_a, 10, utc(2025, 3, 30, 23, 30))  # Monday 00:30 BST
    second = _dispense(seeded, people, item, lot_b, 3, utc(2025, 3, 31, 10))
    insert(
        seeded,
        _move(medicine, lot_a, StockMovementKind.RECEIVE, 100, utc(2025, 3, 20)),  # before: 100 x 0.40
        _move(medicine, lot_b, StockMovementKind.RECEIVE, 50, utc(2025, 3, 30, 12)),  # Sunday: + 50 x 1.00
        _move(medicine, lot_a, StockMovementKind.DAMAGED, -5, utc(2025, 3, 30, 22, 59)),  # Sunday 23:59 BST
        _move(medicine, lot_a, StockMovementKind.DISPENSE, -10, utc(2025, 3, 30, 23, 30), first),
        _move(medicine, lot_b, StockMovementKind.DISPENSE, -3, utc(2025, 3, 31, 10), second),
        _move(medicine, lot_a, StockMovementKind.COUNT_CORRECTION, -3, utc(2025, 3, 31, 23, 0)),  # Tuesday: after
    )

    rows = run(seeded, admin, reports.report_pharmacy, *SPRING)

    assert rows == [
        PharmacyPeriod("2025-03-29", 0, 0, 0, 4000),
        PharmacyPeriod("2025-03-30", 0, 0, 0, 4000 + 5000 - 200),
        PharmacyPeriod("2025-03-31", 2, 13, 13 * 250, 8800 - 400 - 300),
    ]


def test_the_stock_value_rebuilt_from_the_ledger_today_is_the_value_on_hand(seeded, admin):
    today = local_today()
    with session_scope(write=False, engine=seeded) as s:
        on_hand = s.execute(sa.select(sa.func.sum(StockBatch.quantity_on_hand * StockBatch.unit_cost_cents))).scalar_one()
    assert on_hand > 0

    rows = run(seeded, admin, reports.report_pharmacy, today.replace(day=1).isoformat(), today.isoformat())

    assert rows[-1].stock_value_cents == on_hand
    assert rows[-1].period == today.isoformat()


# --- new patients ------------------------------------------------------------------------------


def _patient(email: str, created_at: datetime, role: Role = Role.PATIENT) -> User:
    return User(email=email, full_name="Report Patient", role=role, password_hash="-", created_at=created_at)


def test_new_patients_are_counted_per_local_month_with_empty_months_shown(seeded, admin):
    insert(
        seeded,
        _patient("jan@example.org", utc(2025, 1, 14, 23, 59)),  # the day before the range
        _patient("feb@example.org", utc(2025, 2, 28, 23, 59)),
        _patient("mar1@example.org", utc(2025, 3, 31, 22, 59)),  # 31 March 23:59 BST
        _patient("apr1@example.org", utc(2025, 3, 31, 23, 0)),  # 1 April 00:00 BST
        _patient("apr2@example.org", utc(2025, 4, 30, 22, 59)),  # 30 April 23:59 BST
        _patient("may@example.org", utc(2025, 4, 30, 23, 0)),  # 1 May 00:00 BST: after the range
        _patient("doctor@example.org", utc(2025, 3, 3), Role.DOCTOR),
    )

    rows = run(seeded, admin, reports.report_new_patients, "2025-01-15", "2025-04-30")

    assert rows == [NewPatientsMonth("2025-01", 0), NewPatientsMonth("2025-02", 1), NewPatientsMonth("2025-03", 1),
                    NewPatientsMonth("2025-04", 2)]


# --- all at once, and the audit trail ----------------------------------------------------------


def test_the_page_gets_every_report_at_once_and_one_audit_row(seeded, admin, people):
    book(seeded, people, AMELIA, utc(2025, 3, 29, 9))
    insert(seeded, _patient("new@example.org", utc(2025, 3, 30, 9)))
    after = last_audit_id(seeded)

    result = run(seeded, admin, reports.hospital_reports, *SPRING)

    assert result.dates == reports.parse_report_range(*SPRING)
    assert result.appointments == [AppointmentCount("2025-03-29", "Cardiology", "Confirmed", 1)]
    assert result.new_patients == [NewPatientsMonth("2025-03", 1)]
    assert result.lab_turnaround == []
    assert [r.period for r in result.pharmacy] == ["2025-03-29", "2025-03-30", "2025-03-31"]
    assert len(result.doctor_utilisation) == 10
    [event] = audit_events(seeded, after_id=after)
    assert (event.action, event.entity_id, event.detail, event.actor_id) == (
        "report.view", "all", "2025-03-29..2025-03-31", admin.user_id)


@pytest.mark.parametrize(("service", "name"), [
    (reports.report_appointments, "appointments"),
    (reports.report_doctor_utilisation, "doctor-utilisation"),
    (reports.report_lab_turnaround, "lab-turnaround"),
    (reports.report_pharmacy, "pharmacy"),
    (reports.report_new_patients, "new-patients"),
])
def test_each_report_view_is_audited(seeded, admin, service, name):
    after = last_audit_id(seeded)
    run(seeded, admin, service, *SPRING)
    assert [(e.action, str(e.outcome), e.entity_type, e.entity_id, e.detail)
            for e in audit_events(seeded, after_id=after)] == [
        ("report.view", "success", "report", name, "2025-03-29..2025-03-31")]


# --- who may see them ----------------------------------------------------------------------------

_EVERY_SERVICE = [
    ("report.view", reports.hospital_reports, {}),
    ("report.view", reports.report_appointments, {}),
    ("report.view", reports.report_doctor_utilisation, {}),
    ("report.view", reports.report_lab_turnaround, {}),
    ("report.view", reports.report_pharmacy, {}),
    ("report.view", reports.report_new_patients, {}),
    ("report.export", reports.export_report_csv, {"report": "appointments"}),
]


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.PATIENT])
def test_roles_without_reports_view_are_refused_every_report_and_export(seeded, actors, role):
    actor = actors[role]
    for action, service, extra in _EVERY_SERVICE:
        assert_refused(seeded, actor, action,
                       lambda s, service=service, extra=extra: service(session=s, actor=actor, start=SPRING[0],
                                                                      end=SPRING[1], **extra))


def test_a_call_without_a_session_is_refused(seeded):
    for action, service, extra in _EVERY_SERVICE:
        assert_refused(seeded, None, action,
                       lambda s, service=service, extra=extra: service(session=s, actor=None, start=SPRING[0],
                                                                      end=SPRING[1], **extra),
                       error=SessionExpired)


def test_accounts_holds_reports_view_by_default_and_is_answered(seeded, actors):
    # The default grants give accounts reports.view too (their own reports use it); the admin
    # pages are guarded by role, the services by the permission table.
    assert run(seeded, actors[Role.ACCOUNTS], reports.report_new_patients, *SPRING) == [
        NewPatientsMonth("2025-03", 0)]


def test_admin_without_reports_view_is_refused(seeded, admin):
    call(seeded, permissions.revoke_permission, actor=admin, role="admin", permission="reports.view")
    admin_now = login_as(seeded, DEMO_EMAIL[Role.ADMIN])
    assert_refused(seeded, admin_now, "report.view",
                   lambda s: reports.hospital_reports(session=s, actor=admin_now, start=SPRING[0], end=SPRING[1]))


# --- the date range ------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "message"), [
    ("", "2025-03-31", "Enter the start date, like 2026-01-31."),
    ("2025-03-01", "  ", "Enter the end date, like 2026-01-31."),
    (None, "2025-03-31", "Enter the start date, like 2026-01-31."),
    ("31/03/2025", "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-02-30", "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-03-01", "2025-03-01T00:00' OR 1=1", "The end date must look like 2026-01-31."),
    ({"year": 2025}, "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-04-01", "2025-03-31", "The start date must not be after the end date."),
    ("2025-01-01", "2026-01-02", "A report covers at most 366 days; choose a shorter range."),
    ("1999-12-31", "2000-01-31", "The start date must be between 2000 and 2099."),
    ("2099-12-01", "9999-12-31", "The end date must be between 2000 and 2099."),
])
def test_bad_ranges_are_refused_with_a_clear_message_and_nothing_is_audited(seeded, admin, start, end, message):
    after = last_audit_id(seeded)
    with pytest.raises(ValidationError) as raised:
        run(seeded, admin, reports.hospital_reports, start, end)
    assert raised.value.message == message
    assert audit_events(seeded, after_id=after) == []


def test_a_range_of_366_days_and_one_of_a_single_day_are_accepted(seeded, admin):
    assert len(run(seeded, admin, reports.report_new_patients, "2024-01-01", "2024-12-31")) == 12  # a leap year
    assert run(seeded, admin, reports.report_new_patients, "2025-03-30", "2025-03-30") == [NewPatientsMonth("2025-03", 0)]


# --- CSV -----------------------------------------------------------------------------------------


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_export_has_one_column_per_field_and_is_audited(seeded, admin, people):
    book(seeded, people, AMELIA, utc(2025, 3, 29, 9))
    book(seeded, people, AMELIA, utc(2025, 3, 29, 10), AppointmentStatus.NO_SHOW)
    after = last_audit_id(seeded)

    text = run(seeded, admin, reports.export_report_csv, *SPRING, report="appointments")

    assert _csv(text) == [["Period", "Department", "Status", "Appointments"],
                          ["2025-03-29", "Cardiology", "Confirmed", "1"],
                          ["2025-03-29", "Cardiology", "No-show", "1"]]
    assert [(e.action, e.entity_id, e.detail) for e in audit_events(seeded, after_id=after)] == [
        ("report.export", "appointments", "2025-03-29..2025-03-31; 2 rows")]


def test_every_report_exports_its_header_even_when_empty(seeded, admin):
    headers = {name: _csv(run(seeded, admin, reports.export_report_csv, "2025-03-29", "2025-03-29", report=name))[0]
               for name in reports.REPORTS}
    assert headers == {
        "appointments": ["Period", "Department", "Status", "Appointments"],
        "doctor-utilisation": ["Doctor", "Department", "Slots offered", "Booked", "Utilisation (%)"],
        "lab-turnaround": ["Test code", "Test", "Priority", "Results", "Average minutes", "Longest minutes"],
        "pharmacy": ["Period", "Dispensations", "Units dispensed", "Dispensed value (cents)", "Stock value (cents)"],
        "new-patients": ["Month", "New patients"],
    }
    with use_language("es"):
        spanish = _csv(run(seeded, admin, reports.export_report_csv, "2025-03-29", "2025-03-29",
                           report="new-patients"))[0]
    assert spanish == ["Mes", "Pacientes nuevos"]


def test_a_department_named_like_a_formula_is_defused_in_the_csv(seeded, admin, people):
    insert(seeded, Department(name="=HYPERLINK(\"http://evil.example\",\"x\")"))
    book(seeded, people, AMELIA, utc(2025, 3, 29, 9), department="=HYPERLINK(\"http://evil.example\",\"x\")")

    rows = _csv(run(seeded, admin, reports.export_report_csv, *SPRING, report="appointments"))

    assert rows[1] == ["2025-03-29", "'=HYPERLINK(\"http://evil.example\",\"x\")", "Confirmed", "1"]


def test_the_doctor_with_no_slots_has_an_empty_utilisation_cell(seeded, admin, people):
    with session_scope(engine=seeded) as s:
        s.execute(sa.delete(DoctorAvailability).where(DoctorAvailability.doctor_id == people[PRIYA]))
        s.commit()
    book(seeded, people, PRIYA, utc(2025, 3, 29, 9), department="Dermatology")

    rows = _csv(run(seeded, admin, reports.export_report_csv, *SPRING, report="doctor-utilisation"))

    assert ["Dr. Priya Nair", "Dermatology", "0", "1", ""] in rows


@dataclass(frozen=True)
class _Row:
    name: str
    amount: int
    share: float | None


def test_rows_to_csv_defuses_every_formula_lead_and_keeps_numbers():
    text = spreadsheet.rows_to_csv(_Row, [_Row("=1+2", -5, 1.5), _Row("+44 20", 0, None), _Row("-x", 1, 0.0),
                                      _Row("@SUM(A1)", 2, 2.0), _Row("\tTab", 3, None), _Row("Plain, with comma", 4, 9.9)])
    assert _csv(text) == [["name", "amount", "share"], ["'=1+2", "-5", "1.5"], ["'+44 20", "0", ""],
                          ["'-x", "1", "0.0"], ["'@SUM(A1)", "2", "2.0"], ["'\tTab", "3", ""],
                          ["Plain, with comma", "4", "9.9"]]


def test_an_unknown_report_is_refused(seeded, admin):
    with pytest.raises(ValidationError, match=r"^Choose one of the reports on the page\.$"):
        run(seeded, admin, reports.export_report_csv, *SPRING, report="../../etc/passwd")
