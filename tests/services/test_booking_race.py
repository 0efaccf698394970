"""Many patients booking one slot at the same moment: no double booking, ever.

Each racer runs in its own thread with its own ``session_scope()``, so its own connection,
and all are released together by a barrier. The database guard (partial unique index;
exclusion constraints on PostgreSQL) is also proven directly with writes that bypass the
services.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import Appointment, Notification
from hms_app.services.booking import appointments
from hms_app.services.core import audit
from hms_app.services.core.errors import Conflict
from tests.services.appointment_helpers import (
    DAY,
    appointment,
    at,
    book,
    call,
    department_id,
    doctors_of,
    freeze,
    iso,
    register_patients,
)
from tests.services.helpers import audit_events

pytestmark = pytest.mark.db

RACERS = 50
OVERLAP = "You already have an appointment at that time."


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    return freeze(monkeypatch)


@pytest.fixture
def racers(seeded):
    return register_patients(seeded, RACERS, prefix="racer")


def _race(racers, department: int, doctor: object, starts_at: str) -> list[int | Exception]:
    """Every racer books at once, each on its own connection; returns ids or errors."""
    barrier = threading.Barrier(len(racers))

    def attempt(actor):
        barrier.wait(timeout=60)
        try:
            with session_scope() as s:
                return appointments.book_appointment(session=s, actor=actor, department_id=department,
                                                     doctor_id=doctor, starts_at=starts_at, reason="Racing")
        except Exception as error:  # collected and checked by the test
            return error

    with ThreadPoolExecutor(max_workers=len(racers)) as pool:
        return list(pool.map(attempt, racers))


def _active(engine, *, starts_at, doctor_ids) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(Appointment.doctor_id, Appointment.patient_id).where(
                Appointment.doctor_id.in_(doctor_ids), Appointment.starts_at == starts_at,
                Appointment.status.in_([AppointmentStatus.REQUESTED.value, AppointmentStatus.CONFIRMED.value]),
            ).order_by(Appointment.doctor_id)
        )]


def _split(results):
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if not isinstance(r, int)]
    unexpected = [r for r in lost if not isinstance(r, Conflict)]
    assert unexpected == [], unexpected
    return won, [r.message for r in lost]


def _chain_ok(engine) -> bool:
    with session_scope(write=False, engine=engine) as s:
        return audit.verify_chain(s).ok


def test_fifty_patients_racing_for_one_slot_get_one_booking(seeded, racers):
    doctor = doctors_of(seeded, "Cardiology")[0]
    start = at(DAY, 10, 0)

    won, lost = _split(_race(racers, department_id(seeded, "Cardiology"), doctor, iso(start)))

    assert len(won) == 1
    assert lost == [appointments.SLOT_TAKEN] * (RACERS - 1)  # never the overlap message
    [(booked_doctor, patient)] = _active(seeded, starts_at=start, doctor_ids=[doctor])
    assert booked_doctor == doctor
    assert patient in {r.user_id for r in racers}
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Appointment)
                            .where(Appointment.starts_at == start)).scalar_one() == 1  # losers wrote nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(Notification)
                            .where(Notification.user_id == doctor)).scalar_one() == 1
    assert [e.entity_id for e in audit_events(seeded, action="appointment.book")] == [str(won[0])]
    assert _chain_ok(seeded)


def test_fifty_patients_racing_for_any_doctor_get_one_booking_per_doctor(seeded, racers):
    doctors = doctors_of(seeded, "Cardiology")
    assert len(doctors) == 2
    start = at(DAY, 10, 0)

    won, lost = _split(_race(racers, department_id(seeded, "Cardiology"), "any", iso(start)))

    assert len(won) == 2
    assert lost == [appointments.SLOT_TAKEN] * (RACERS - 2)
    booked = _active(seeded, starts_at=start, doctor_ids=doctors)
    assert [d for d, _ in booked] == doctors  # one each, nobody double-booked
    assert len({p for _, p in booked}) == 2
    assert len(audit_events(seeded, action="appointment.book")) == 2
    assert _chain_ok(seeded)


def _insert(conn, *, patient: int, doctor: int, starts_at, minutes: int = 20,
            status: AppointmentStatus = AppointmentStatus.REQUESTED, department: int) -> None:
    conn.execute(sa.insert(Appointment.__table__).values(
        patient_id=patient, doctor_id=doctor, department_id=department, starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes), status=status.value, reason="", status_reason="",
        created_at=starts_at, updated_at=starts_at,
    ))


@pytest.fixture
def guard(seeded, racers):
    """Two patients, the two Cardiology doctors and the department, for raw writes."""
    return racers[0].user_id, racers[1].user_id, *doctors_of(seeded, "Cardiology"), department_id(seeded, "Cardiology")


def test_the_database_refuses_a_second_active_appointment_for_a_doctor_and_start(seeded, guard):
    first_patient, second_patient, doctor, _, cardiology = guard
    start = at(DAY, 10, 0)
    with seeded.begin() as conn:
        _insert(conn, patient=first_patient, doctor=doctor, starts_at=start, department=cardiology)

    for status in (AppointmentStatus.REQUESTED, AppointmentStatus.CONFIRMED):
        with pytest.raises(sa.exc.IntegrityError), seeded.begin() as conn:
            _insert(conn, patient=second_patient, doctor=doctor, starts_at=start, status=status, department=cardiology)

    # Rows that no longer hold the slot do not count.
    with seeded.begin() as conn:
        for status in (AppointmentStatus.CANCELLED, AppointmentStatus.DECLINED, AppointmentStatus.CANCELLED):
            _insert(conn, patient=second_patient, doctor=doctor, starts_at=start, status=status, department=cardiology)
    assert _active(seeded, starts_at=start, doctor_ids=[doctor]) == [(doctor, first_patient)]


def _postgres_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("exclusion constraints over time ranges exist on PostgreSQL only")


def test_postgres_refuses_overlapping_active_appointments_of_one_doctor(seeded, guard):
    _postgres_only(seeded)
    first_patient, second_patient, doctor, _, cardiology = guard
    with seeded.begin() as conn:
        _insert(conn, patient=first_patient, doctor=doctor, starts_at=at(DAY, 10, 0), minutes=30,
                department=cardiology)

    with pytest.raises(sa.exc.IntegrityError, match="ex_appointment_doctor_overlap"), seeded.begin() as conn:
        _insert(conn, patient=second_patient, doctor=doctor, starts_at=at(DAY, 10, 20), department=cardiology)

    with seeded.begin() as conn:  # touching is not overlapping, and a cancelled row holds nothing
        _insert(conn, patient=second_patient, doctor=doctor, starts_at=at(DAY, 10, 30), department=cardiology)
        _insert(conn, patient=second_patient, doctor=doctor, starts_at=at(DAY, 10, 10),
                status=AppointmentStatus.CANCELLED, department=cardiology)


def test_postgres_refuses_overlapping_active_appointments_of_one_patient(seeded, guard):
    _postgres_only(seeded)
    patient, _, doctor, other_doctor, cardiology = guard
    with seeded.begin() as conn:
        _insert(conn, patient=patient, doctor=doctor, starts_at=at(DAY, 10, 0), department=cardiology)

    for start in (at(DAY, 10, 0), at(DAY, 9, 50)):
        with pytest.raises(sa.exc.IntegrityError, match="ex_appointment_patient_overlap"), seeded.begin() as conn:
            _insert(conn, patient=patient, doctor=other_doctor, starts_at=start, department=cardiology)

    with seeded.begin() as conn:
        _insert(conn, patient=patient, doctor=other_doctor, starts_at=at(DAY, 10, 20), department=cardiology)


def test_a_patient_racing_themself_on_two_doctors_gets_one_booking(seeded, racers):
    # The same patient, the same time, two doctors, in two threads: the overlap rule holds.
    doctors = doctors_of(seeded, "Cardiology")
    start = at(DAY, 10, 0)
    cardiology = department_id(seeded, "Cardiology")
    barrier = threading.Barrier(len(doctors))

    def attempt(doctor):
        barrier.wait(timeout=60)
        try:
            with session_scope() as s:
                return appointments.book_appointment(session=s, actor=racers[0], department_id=cardiology,
                                                     doctor_id=doctor, starts_at=iso(start), reason="Twice")
        except Exception as error:  # collected and checked below
            return error

    with ThreadPoolExecutor(max_workers=len(doctors)) as pool:
        won, lost = _split(list(pool.map(attempt, doctors)))

    assert len(won) == 1
    assert lost == [OVERLAP]
    assert len(_active(seeded, starts_at=start, doctor_ids=doctors)) == 1


def _rival_books_mid_booking(engine, monkeypatch, rival, doctor, start) -> None:
    """Make the next booking's rival commit ``doctor``'s slot at ``start`` on its own
    connection, after that booking has found the slot free and before it inserts.

    This is the interleaving the thread races produce only sometimes, made certain. On
    SQLite a booking holds the write lock from its first statement, so it cannot happen.
    """
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises whole bookings; no rival can commit in between")
    real_overlap = appointments._patient_overlap
    pending = [rival]

    def overlap_after_the_rival_booked(session, patient_id, *args, **kwargs):
        if pending:  # once: the rival's own booking passes through here too
            book(engine, pending.pop(), doctor, start)
        return real_overlap(session, patient_id, *args, **kwargs)

    monkeypatch.setattr(appointments, "_patient_overlap", overlap_after_the_rival_booked)


def test_any_doctor_falls_back_when_the_first_choice_is_taken_mid_booking(seeded, racers, monkeypatch):
    first, second = doctors_of(seeded, "Cardiology")
    start = at(DAY, 10, 0)
    _rival_books_mid_booking(seeded, monkeypatch, racers[1], first, start)

    book(seeded, racers[0], "any", start)

    assert _active(seeded, starts_at=start, doctor_ids=[first, second]) == [
        (first, racers[1].user_id), (second, racers[0].user_id)]


def test_a_chosen_doctor_taken_mid_booking_is_a_clean_conflict(seeded, racers, monkeypatch):
    first, second = doctors_of(seeded, "Cardiology")
    start = at(DAY, 10, 0)
    _rival_books_mid_booking(seeded, monkeypatch, racers[1], first, start)

    with pytest.raises(Conflict) as raised:
        book(seeded, racers[0], first, start)

    assert raised.value.message == appointments.SLOT_TAKEN
    assert _active(seeded, starts_at=start, doctor_ids=[first, second]) == [(first, racers[1].user_id)]
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Appointment)
                            .where(Appointment.patient_id == racers[0].user_id)).scalar_one() == 0


def test_a_reschedule_whose_new_slot_is_taken_mid_move_changes_nothing(seeded, racers, monkeypatch):
    doctor = doctors_of(seeded, "Cardiology")[0]
    moving = book(seeded, racers[0], doctor, at(DAY, 10, 0))
    _rival_books_mid_booking(seeded, monkeypatch, racers[1], doctor, at(DAY, 11, 0))

    with pytest.raises(Conflict) as raised:
        call(seeded, appointments.reschedule_appointment, actor=racers[0], appointment_id=moving,
             starts_at=iso(at(DAY, 11, 0)))

    assert raised.value.message == appointments.SLOT_TAKEN
    row = appointment(seeded, moving)
    assert (row.starts_at, row.status) == (at(DAY, 10, 0), AppointmentStatus.REQUESTED)
    assert _active(seeded, starts_at=at(DAY, 11, 0), doctor_ids=[doctor]) == [(doctor, racers[1].user_id)]
