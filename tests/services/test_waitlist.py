"""The waitlist: joining, leaving, and freed slots offered to the first patient in line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hms_app.db.enums import Permission, Role, WaitlistStatus
from hms_app.services.administration import permissions
from hms_app.services.booking import appointments
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    DAY,
    OTHER_DOCTOR_EMAIL,
    at,
    book,
    call,
    department_id,
    freeze,
    iso,
    last_notification_id,
    notifications_since,
    user_id,
    waitlist_entry,
)
from tests.services.helpers import assert_refused, audit_events

pytestmark = pytest.mark.db

DASH = "\N{EN DASH}"  # the product writes date ranges with an en dash
OFFER_TITLE = "A slot you were waiting for is free"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    return freeze(monkeypatch)


@pytest.fixture
def patient(actors):
    return actors[Role.PATIENT]


@pytest.fixture
def doctor(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def patients(seeded):
    """Four more demo patients, logged in: James, Aisha, Wei and Fatima."""
    return [login_as(seeded, f"{name}@patients.example")
            for name in ("james.smith", "aisha.khan", "wei.zhang", "fatima.ali")]


def join(engine, actor, doctor="any", first=DAY, last=None, department="Cardiology") -> int:
    return call(engine, appointments.join_waitlist, actor=actor, department_id=department_id(engine, department),
                doctor_id=doctor, date_from=first.isoformat(), date_to=(last or first).isoformat())


def status(engine, entry_id) -> WaitlistStatus:
    return WaitlistStatus(waitlist_entry(engine, entry_id).status)


def offers_since(engine, mark) -> list[int]:
    return [user for user, title, _ in notifications_since(engine, mark) if title == OFFER_TITLE]


def test_a_patient_joins_and_sees_the_entry(seeded, patient, doctor):
    join(seeded, patient, doctor=doctor.user_id, first=DAY, last=DAY + timedelta(days=2))
    join(seeded, patient, department="Dermatology", first=DAY)

    rows = call(seeded, appointments.my_waitlist, actor=patient)

    assert [(r.department, r.doctor, r.dates, r.status, r.offer) for r in rows] == [
        ("Cardiology", "Dr. Amelia Hart", f"24 Mar {DASH} 26 Mar 2027", "Waiting", ""),
        ("Dermatology", "Any available doctor", f"24 Mar {DASH} 24 Mar 2027", "Waiting", ""),
    ]
    assert [e.action for e in audit_events(seeded, action="waitlist.join")] == ["waitlist.join"] * 2


@pytest.mark.parametrize(("change", "message"), [
    ({"date_from": "2027-03-14"}, "Choose today or a later date."),
    ({"date_from": "2027-07-14"}, "Appointments can be booked up to 120 days ahead."),
    ({"date_from": "next week"}, "Enter the date as a date, like 2026-12-01."),
    ({"date_to": "2027-03-23"}, "The last date must not be before the first."),
    ({"date_to": "2027-06-23"}, "Wait for at most 90 days at a time."),
    ({"doctor_id": "dermatologist"}, "Choose a doctor of that department."),
    ({"doctor_id": "nobody"}, "Choose a doctor of that department."),
    ({"department_id": 0}, "Choose a department from the list."),
])
def test_joining_is_validated(seeded, patient, doctor, change, message):
    kwargs = {"department_id": department_id(seeded, "Cardiology"), "doctor_id": doctor.user_id,
              "date_from": DAY.isoformat(), "date_to": DAY.isoformat()} | change
    if kwargs["doctor_id"] == "dermatologist":
        kwargs["doctor_id"] = user_id(seeded, "priya.nair@hms.example")
    with pytest.raises(ValidationError) as raised:
        call(seeded, appointments.join_waitlist, actor=patient, **kwargs)
    assert raised.value.message == message
    assert call(seeded, appointments.my_waitlist, actor=patient) == []


def test_no_more_than_five_waitlists_at_once(seeded, patient):
    entries = [join(seeded, patient, first=DAY + timedelta(days=i)) for i in range(5)]
    with pytest.raises(Conflict, match="You are already on five waitlists"):
        join(seeded, patient, first=DAY + timedelta(days=5))

    call(seeded, appointments.leave_waitlist, actor=patient, entry_id=entries[0])
    join(seeded, patient, first=DAY + timedelta(days=5))


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN, Role.LAB, Role.PHARMACY, Role.ACCOUNTS])
def test_only_patients_join(seeded, actors, role):
    cardiology = department_id(seeded, "Cardiology")
    assert_refused(seeded, actors[role], "waitlist.join", lambda s: appointments.join_waitlist(
        session=s, actor=actors[role], department_id=cardiology, doctor_id="any", date_from=DAY.isoformat(),
        date_to=""))


def test_a_non_patient_granted_booking_still_cannot_join(seeded, actors):
    call(seeded, permissions.grant_permission, actor=actors[Role.ADMIN], role="lab",
         permission=Permission.APPOINTMENTS_BOOK.value)
    granted = login_as(seeded, actors[Role.LAB].email)
    cardiology = department_id(seeded, "Cardiology")

    error = assert_refused(seeded, granted, "waitlist.join", lambda s: appointments.join_waitlist(
        session=s, actor=granted, department_id=cardiology, doctor_id="any", date_from=DAY.isoformat(),
        date_to=""))
    assert error.message == "Only patients join the waitlist."


def test_a_patient_leaves_their_own_entry_only_once(seeded, patient, patients):
    entry = join(seeded, patient)
    other = patients[0]

    assert_refused(seeded, other, "waitlist.leave", lambda s: appointments.leave_waitlist(
        session=s, actor=other, entry_id=entry), error=NotFound)
    assert status(seeded, entry) == WaitlistStatus.WAITING

    call(seeded, appointments.leave_waitlist, actor=patient, entry_id=entry)
    assert status(seeded, entry) == WaitlistStatus.CANCELLED
    assert call(seeded, appointments.my_waitlist, actor=patient) == []
    with pytest.raises(Conflict, match="You are no longer on that waitlist"):
        call(seeded, appointments.leave_waitlist, actor=patient, entry_id=entry)


def test_a_cancelled_slot_goes_to_the_first_in_line_whose_wish_matches(seeded, patient, doctor, patients):
    james, aisha, wei, fatima = patients
    rohan = user_id(seeded, OTHER_DOCTOR_EMAIL)
    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    elsewhere = join(seeded, wei, department="Orthopedics")  # another department
    later = join(seeded, aisha, doctor=doctor.user_id, first=DAY + timedelta(days=1), last=DAY + timedelta(days=5))
    other_doctor = join(seeded, james, doctor=rohan)  # Cardiology, but another doctor
    first = join(seeded, fatima, first=DAY - timedelta(days=2), last=DAY)  # any Cardiology doctor, up to DAY
    second = join(seeded, patients[0], doctor=doctor.user_id, first=DAY, last=DAY + timedelta(days=1))
    mark = last_notification_id(seeded)

    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=appointment_id)

    offered = waitlist_entry(seeded, first)
    assert (offered.status, offered.offered_start, offered.offered_doctor_id) == (
        WaitlistStatus.OFFERED, at(DAY, 10, 0), doctor.user_id)
    assert [status(seeded, e) for e in (elsewhere, later, other_doctor, second)] == [WaitlistStatus.WAITING] * 4
    assert notifications_since(seeded, mark) == [
        (doctor.user_id, "Appointment cancelled", "Wed, 24 Mar 2027, 10:00"),
        (fatima.user_id, OFFER_TITLE,
         "Dr. Amelia Hart at Wed, 24 Mar 2027, 10:00. Book it before someone else does."),
    ]
    [event] = audit_events(seeded, action="waitlist.offer")
    assert (event.actor_email, event.patient_id, event.entity_id) == ("system", fatima.user_id, str(first))
    [row] = call(seeded, appointments.my_waitlist, actor=fatima)
    assert (row.status, row.offer) == ("Slot offered", "Wed, 24 Mar 2027, 10:00")


def test_the_next_freed_slot_goes_to_the_next_in_line(seeded, patient, doctor, patients):
    james, aisha, _, _ = patients
    first_booking = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    second_booking = book(seeded, patient, doctor.user_id, at(DAY, 11, 0))
    first = join(seeded, james)
    second = join(seeded, aisha, doctor=doctor.user_id)

    call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=first_booking, reason="Not cardiac")
    assert (status(seeded, first), status(seeded, second)) == (WaitlistStatus.OFFERED, WaitlistStatus.WAITING)

    mark = last_notification_id(seeded)
    call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=second_booking, reason="Away")
    assert status(seeded, second) == WaitlistStatus.OFFERED
    assert waitlist_entry(seeded, second).offered_start == at(DAY, 11, 0)
    assert offers_since(seeded, mark) == [aisha.user_id]  # James holds an offer already

    mark = last_notification_id(seeded)
    third_booking = book(seeded, patient, doctor.user_id, at(DAY, 14, 0))
    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=third_booking)
    assert offers_since(seeded, mark) == []  # nobody is left waiting


def test_a_rescheduled_appointments_old_slot_is_offered(seeded, patient, doctor, patients):
    james = patients[0]
    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    entry = join(seeded, james, doctor=doctor.user_id)
    mark = last_notification_id(seeded)

    call(seeded, appointments.reschedule_appointment, actor=patient, appointment_id=appointment_id,
         starts_at=iso(at(DAY, 15, 0)))

    assert waitlist_entry(seeded, entry).offered_start == at(DAY, 10, 0)
    assert offers_since(seeded, mark) == [james.user_id]
    assert [user for user, *_ in notifications_since(seeded, mark)] == [doctor.user_id, james.user_id]


def test_the_patient_who_freed_a_slot_is_not_offered_it(seeded, patient, doctor, patients):
    james = patients[0]
    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    own = join(seeded, patient)  # first in line, hoping for something else that day
    other = join(seeded, james)
    mark = last_notification_id(seeded)

    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=appointment_id)

    assert (status(seeded, own), status(seeded, other)) == (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)
    assert offers_since(seeded, mark) == [james.user_id]


def test_a_patient_who_left_the_waitlist_is_not_offered(seeded, patient, doctor, patients):
    james, aisha, _, _ = patients
    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    gone = join(seeded, james)
    staying = join(seeded, aisha)
    call(seeded, appointments.leave_waitlist, actor=james, entry_id=gone)

    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=appointment_id)

    assert (status(seeded, gone), status(seeded, staying)) == (WaitlistStatus.CANCELLED, WaitlistStatus.OFFERED)


def test_a_slot_freed_after_its_time_is_not_offered(seeded, patient, doctor, patients, clock):
    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    entry = join(seeded, patients[0])
    clock.now = at(DAY, 10, 5)
    mark = last_notification_id(seeded)

    call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=appointment_id, reason="Missed it")

    assert status(seeded, entry) == WaitlistStatus.WAITING
    assert offers_since(seeded, mark) == []


def test_booking_marks_the_patients_entries_in_that_department_booked(seeded, patient, doctor, patients):
    james = patients[0]
    offered = join(seeded, patient, doctor=doctor.user_id)
    waiting = join(seeded, patient, first=DAY + timedelta(days=1))
    elsewhere = join(seeded, patient, department="Dermatology")
    freed = book(seeded, james, doctor.user_id, at(DAY, 10, 0))
    call(seeded, appointments.cancel_appointment, actor=james, appointment_id=freed)
    assert status(seeded, offered) == WaitlistStatus.OFFERED

    book(seeded, patient, doctor.user_id, at(DAY, 10, 0))

    assert [status(seeded, e) for e in (offered, waiting, elsewhere)] == [
        WaitlistStatus.BOOKED, WaitlistStatus.BOOKED, WaitlistStatus.WAITING]
    assert [r.department for r in call(seeded, appointments.my_waitlist, actor=patient)] == ["Dermatology"]


def test_an_offer_is_not_a_reservation(seeded, patient, doctor, patients):
    james, aisha, _, _ = patients
    freed = book(seeded, james, doctor.user_id, at(DAY, 10, 0))
    entry = join(seeded, patient, doctor=doctor.user_id)
    call(seeded, appointments.cancel_appointment, actor=james, appointment_id=freed)
    assert status(seeded, entry) == WaitlistStatus.OFFERED

    book(seeded, aisha, doctor.user_id, at(DAY, 10, 0))  # someone else is quicker

    with pytest.raises(Conflict) as raised:
        book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    assert raised.value.message == appointments.SLOT_TAKEN
    assert status(seeded, entry) == WaitlistStatus.OFFERED
