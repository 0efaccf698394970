"""Booking, the appointment life cycle, notifications and the appointment lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus, Permission, Role
from hms_app.db.models import Appointment, AuditEvent
from hms_app.services.administration import departments, permissions
from hms_app.services.booking import appointments, scheduling
from hms_app.services.booking.appointments import SLOT_TAKEN, AppointmentFilter
from hms_app.services.core import audit
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.messaging import notifications
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    DAY,
    NOW,
    OTHER_DOCTOR_EMAIL,
    OTHER_PATIENT_EMAIL,
    active_at,
    appointment,
    at,
    book,
    call,
    department_id,
    doctors_of,
    free_starts,
    freeze,
    insert_appointment,
    iso,
    last_notification_id,
    notifications_since,
)
from tests.services.helpers import assert_refused, audit_events, snapshot

pytestmark = pytest.mark.db

DASH = "\N{EN DASH}"  # the product writes time ranges with an en dash

STAFF_WITHOUT_APPOINTMENTS = [Role.LAB, Role.PHARMACY, Role.ACCOUNTS]


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
def other_patient(seeded):
    return login_as(seeded, OTHER_PATIENT_EMAIL)


@pytest.fixture
def other_doctor(seeded):
    return login_as(seeded, OTHER_DOCTOR_EMAIL)


@pytest.fixture
def requested(seeded, patient, doctor):
    """Maria's request to see Dr Hart on DAY at 10:00."""
    return book(seeded, patient, doctor.user_id, at(DAY, 10, 0))


@pytest.fixture
def confirmed(seeded, doctor, requested):
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=requested)
    return requested


def status_of(engine, appointment_id) -> AppointmentStatus:
    return AppointmentStatus(appointment(engine, appointment_id).status)


def test_a_patient_picks_a_department_then_a_doctor(seeded, patient):
    found = call(seeded, appointments.booking_departments, actor=patient)
    assert [o.label for o in found] == sorted(["Cardiology", "Orthopedics", "Pediatrics", "General Medicine",
                                               "Dermatology"])
    cardiology = next(o.value for o in found if o.label == "Cardiology")
    doctors = call(seeded, appointments.booking_doctors, actor=patient, department_id=cardiology)
    assert [o.label for o in doctors] == ["Dr. Amelia Hart", "Dr. Rohan Mehta"]
    assert [int(o.value) for o in doctors] == doctors_of(seeded, "Cardiology")
    with pytest.raises(ValidationError, match="Choose a department from the list"):
        call(seeded, appointments.booking_doctors, actor=patient, department_id="cardiology")


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN, *STAFF_WITHOUT_APPOINTMENTS])
def test_only_patients_look_for_slots(seeded, actors, role):
    for action, attempt in [
        ("booking.departments", lambda s: appointments.booking_departments(session=s, actor=actors[role])),
        ("booking.slots", lambda s: appointments.free_slots(session=s, actor=actors[role], department_id=1,
                                                            doctor_id="any", day=DAY.isoformat())),
    ]:
        assert_refused(seeded, actors[role], action, attempt)


@pytest.mark.parametrize("doctor_id", ["abc", 999_999])
def test_free_slots_need_a_doctor_of_the_department(seeded, patient, doctor_id):
    with pytest.raises(ValidationError, match="Choose a doctor of that department"):
        call(seeded, appointments.free_slots, actor=patient, department_id=department_id(seeded, "Cardiology"),
             doctor_id=doctor_id, day=DAY.isoformat())


def test_a_non_patient_granted_booking_still_cannot_book(seeded, actors, doctor):
    call(seeded, permissions.grant_permission, actor=actors[Role.ADMIN], role="doctor",
         permission=Permission.APPOINTMENTS_BOOK.value)
    granted = login_as(seeded, doctor.email)
    assert granted.can(Permission.APPOINTMENTS_BOOK)
    cardiology = department_id(seeded, "Cardiology")

    error = assert_refused(seeded, granted, "appointment.book", lambda s: appointments.book_appointment(
        session=s, actor=granted, department_id=cardiology, doctor_id="any", starts_at=iso(at(DAY, 10, 0)),
        reason="Self-referral"))
    assert error.message == "Only patients book appointments for themselves."


def test_a_patient_books_a_free_slot_and_the_doctor_is_told(seeded, patient, doctor):
    mark = last_notification_id(seeded)

    appointment_id = book(seeded, patient, doctor.user_id, at(DAY, 10, 0), reason="  Chest   pain ")

    row = appointment(seeded, appointment_id)
    assert (row.patient_id, row.doctor_id, row.status, row.reason) == (
        patient.user_id, doctor.user_id, AppointmentStatus.REQUESTED, "Chest pain")
    assert (row.starts_at, row.ends_at) == (at(DAY, 10, 0), at(DAY, 10, 20))
    assert notifications_since(seeded, mark) == [
        (doctor.user_id, "New appointment request", "Maria Garcia asks for Wed, 24 Mar 2027, 10:00.")]
    assert at(DAY, 10, 0) not in free_starts(seeded, doctor.user_id, DAY)
    [event] = audit_events(seeded, action="appointment.book")
    assert (event.actor_id, event.patient_id, event.entity_id) == (patient.user_id, patient.user_id, str(appointment_id))


def test_free_slots_for_any_doctor_count_the_doctors_free_at_each_time(seeded, patient, doctor):
    cardiology = department_id(seeded, "Cardiology")

    def options():
        return {o.starts_at: o.doctors for o in call(seeded, appointments.free_slots, actor=patient,
                                                     department_id=cardiology, doctor_id="any", day=DAY.isoformat())}

    assert len(options()) == 21
    assert set(options().values()) == {2}
    book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    assert options()[iso(at(DAY, 10, 0))] == 1


@pytest.mark.parametrize(("day", "message"), [
    ("2027-03-14", "Choose today or a later date."),
    ("2027-07-14", "Appointments can be booked up to 120 days ahead."),
    ("soon", "Enter the date as a date, like 2026-12-01."),
])
def test_free_slots_only_for_bookable_days(seeded, patient, day, message):
    with pytest.raises(ValidationError) as raised:
        call(seeded, appointments.free_slots, actor=patient, department_id=department_id(seeded, "Cardiology"),
             doctor_id="any", day=day)
    assert raised.value.message == message


@pytest.mark.parametrize(("change", "message"), [
    ({"reason": "   "}, "Say briefly why you want to see the doctor."),
    ({"reason": "x" * 501}, "Keep the reason under 500 characters."),
    ({"starts_at": iso(at(NOW.date(), 7, 0))}, "That time has already passed. Choose a later slot."),
    ({"starts_at": iso(at(DAY, 10, 10))}, "That time is not a free slot. Choose one from the list."),
    ({"starts_at": iso(at(DAY, 12, 20))}, "That time is not a free slot. Choose one from the list."),
    ({"starts_at": iso(at(DAY + timedelta(days=3), 10, 0))}, "That time is not a free slot. Choose one from the list."),
    ({"starts_at": "2027-03-24T10:00:00"}, "Choose a time from the list of free slots."),
    ({"starts_at": iso(at(NOW.date() + timedelta(days=126), 10, 0))},
     "Appointments can be booked up to 120 days ahead."),
    ({"doctor_id": "other"}, "Choose a doctor of that department."),
    ({"doctor_id": "abc"}, "Choose a doctor of that department."),
    ({"department_id": 999}, "Choose a department from the list."),
])
def test_booking_is_validated_and_writes_nothing(seeded, patient, doctor, change, message):
    kwargs = {"department_id": department_id(seeded, "Cardiology"), "doctor_id": doctor.user_id,
              "starts_at": iso(at(DAY, 10, 0)), "reason": "Chest pain"} | change
    if kwargs["doctor_id"] == "other":
        kwargs["doctor_id"] = doctors_of(seeded, "Dermatology")[0]
    before = snapshot(seeded)

    with pytest.raises(ValidationError) as raised:
        call(seeded, appointments.book_appointment, actor=patient, **kwargs)

    assert raised.value.message == message
    assert snapshot(seeded) == before


def test_an_inactive_department_takes_no_bookings(seeded, actors, patient, doctor):
    cardiology = department_id(seeded, "Cardiology")
    call(seeded, departments.set_department_active, actor=actors[Role.ADMIN], department_id=cardiology, active=False)
    with pytest.raises(ValidationError, match="Choose a department from the list"):
        book(seeded, patient, doctor.user_id, at(DAY, 10, 0))


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DOCTOR, *STAFF_WITHOUT_APPOINTMENTS])
def test_only_patients_book(seeded, actors, doctor, role):
    cardiology = department_id(seeded, "Cardiology")
    assert_refused(seeded, actors[role], "appointment.book", lambda s: appointments.book_appointment(
        session=s, actor=actors[role], department_id=cardiology, doctor_id=doctor.user_id,
        starts_at=iso(at(DAY, 10, 0)), reason="Chest pain"))


def test_a_taken_slot_cannot_be_booked_again(seeded, patient, other_patient, doctor, requested):
    with pytest.raises(Conflict) as raised:
        book(seeded, other_patient, doctor.user_id, at(DAY, 10, 0))
    assert raised.value.message == SLOT_TAKEN
    assert [a.id for a in active_at(seeded, doctor.user_id, at(DAY, 10, 0))] == [requested]


def test_a_patient_cannot_hold_two_overlapping_appointments(seeded, patient, doctor, other_doctor, requested):
    with pytest.raises(Conflict, match="You already have an appointment at that time"):
        book(seeded, patient, other_doctor.user_id, at(DAY, 10, 0))
    # Another department, another doctor, the same time: still one patient.
    with pytest.raises(Conflict, match="You already have an appointment at that time"):
        book(seeded, patient, doctors_of(seeded, "Dermatology")[0], at(DAY, 10, 0), department="Dermatology")
    # Back to back is fine.
    book(seeded, patient, other_doctor.user_id, at(DAY, 10, 20))


def test_a_cancelled_appointment_does_not_block_the_patient(seeded, patient, other_doctor, requested):
    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=requested)
    new_id = book(seeded, patient, other_doctor.user_id, at(DAY, 10, 0))
    assert status_of(seeded, new_id) == AppointmentStatus.REQUESTED


def test_any_doctor_goes_to_the_one_with_fewer_appointments_that_day(seeded, patient, other_patient):
    first, second = doctors_of(seeded, "Cardiology")
    book(seeded, other_patient, first, at(DAY, 9, 0))  # the lower id is now the busier one

    appointment_id = book(seeded, patient, "any", at(DAY, 11, 0))

    assert appointment(seeded, appointment_id).doctor_id == second


def test_any_doctor_breaks_a_tie_by_the_lower_id(seeded, patient, other_patient):
    first, second = doctors_of(seeded, "Cardiology")
    book(seeded, other_patient, second, at(DAY, 9, 0))
    book(seeded, other_patient, first, at(DAY, 9, 20))  # one each that day

    assert appointment(seeded, book(seeded, patient, "", at(DAY, 11, 0))).doctor_id == first


def test_any_doctor_counts_only_that_days_active_appointments(seeded, patient, other_patient):
    first, _second = doctors_of(seeded, "Cardiology")
    book(seeded, other_patient, first, at(DAY - timedelta(days=1), 9, 0))  # another day
    cancelled = book(seeded, other_patient, first, at(DAY, 9, 0))
    call(seeded, appointments.cancel_appointment, actor=other_patient, appointment_id=cancelled)

    assert appointment(seeded, book(seeded, patient, "any", at(DAY, 11, 0))).doctor_id == first


def test_any_doctor_skips_the_less_busy_doctor_when_they_are_not_free(seeded, actors, patient, other_patient):
    first, second = doctors_of(seeded, "Cardiology")
    book(seeded, other_patient, second, at(DAY, 9, 0))
    book(seeded, other_patient, second, at(DAY, 9, 20))
    call(seeded, scheduling.add_leave, actor=actors[Role.ADMIN],
         doctor_id=first, date_from=DAY.isoformat(), start="11:00", end="12:00")

    assert appointment(seeded, book(seeded, patient, "any", at(DAY, 11, 0))).doctor_id == second


def test_any_doctor_when_nobody_is_free_says_the_slot_is_taken(seeded, patient, other_patient):
    first, second = doctors_of(seeded, "Cardiology")
    book(seeded, other_patient, first, at(DAY, 9, 0))
    third = login_as(seeded, "aisha.khan@patients.example")
    book(seeded, third, second, at(DAY, 9, 0))

    with pytest.raises(Conflict) as raised:
        book(seeded, patient, "any", at(DAY, 9, 0))
    assert raised.value.message == SLOT_TAKEN


def test_the_doctor_confirms_a_request_and_the_patient_is_told(seeded, patient, doctor, requested):
    mark = last_notification_id(seeded)
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=requested)

    assert status_of(seeded, requested) == AppointmentStatus.CONFIRMED
    assert notifications_since(seeded, mark) == [(patient.user_id, "Appointment confirmed", "Wed, 24 Mar 2027, 10:00")]


def test_confirm_only_from_requested(seeded, doctor, confirmed):
    with pytest.raises(Conflict) as raised:
        call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=confirmed)
    assert raised.value.message == "A confirmed appointment cannot be confirmed."


def test_a_request_whose_time_has_passed_cannot_be_confirmed(seeded, doctor, requested, clock):
    clock.now = at(DAY, 10, 0)
    with pytest.raises(Conflict, match="time has passed; it can no longer be confirmed"):
        call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=requested)
    assert status_of(seeded, requested) == AppointmentStatus.REQUESTED


def test_decline_needs_a_reason_which_the_patient_sees(seeded, patient, doctor, requested):
    for blank in ("", "   ", None):
        with pytest.raises(ValidationError, match="Give a reason for the decline; the patient will see it"):
            call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=requested, reason=blank)
    with pytest.raises(ValidationError, match="Keep the reason under 500 characters"):
        call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=requested, reason="x" * 501)
    assert status_of(seeded, requested) == AppointmentStatus.REQUESTED

    mark = last_notification_id(seeded)
    call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=requested, reason="Not cardiac")

    row = appointment(seeded, requested)
    assert (row.status, row.status_reason) == (AppointmentStatus.DECLINED, "Not cardiac")
    assert notifications_since(seeded, mark) == [
        (patient.user_id, "Appointment request declined", "Wed, 24 Mar 2027, 10:00 — Not cardiac")]
    assert at(DAY, 10, 0) in free_starts(seeded, doctor.user_id, DAY)


def test_a_confirmed_appointment_cannot_be_declined(seeded, doctor, confirmed):
    with pytest.raises(Conflict, match="A confirmed appointment cannot be declined"):
        call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=confirmed, reason="Busy")


@pytest.mark.parametrize("state", ["requested", "confirmed"])
def test_the_patient_cancels_before_the_start_without_a_reason(request, seeded, patient, doctor, state):
    appointment_id = request.getfixturevalue(state)
    mark = last_notification_id(seeded)

    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=appointment_id)

    assert status_of(seeded, appointment_id) == AppointmentStatus.CANCELLED
    assert notifications_since(seeded, mark) == [(doctor.user_id, "Appointment cancelled", "Wed, 24 Mar 2027, 10:00")]
    assert at(DAY, 10, 0) in free_starts(seeded, doctor.user_id, DAY)


def test_the_patient_cannot_cancel_once_it_has_started(seeded, patient, confirmed, clock):
    clock.now = at(DAY, 10, 0)
    with pytest.raises(Conflict, match="already started and can no longer be cancelled"):
        call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=confirmed)
    assert status_of(seeded, confirmed) == AppointmentStatus.CONFIRMED


def test_the_doctor_cancels_only_with_a_reason(seeded, patient, doctor, confirmed):
    with pytest.raises(ValidationError, match="Give a reason for the cancellation"):
        call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=confirmed)
    assert status_of(seeded, confirmed) == AppointmentStatus.CONFIRMED

    mark = last_notification_id(seeded)
    call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=confirmed, reason="Called to theatre")

    row = appointment(seeded, confirmed)
    assert (row.status, row.status_reason) == (AppointmentStatus.CANCELLED, "Called to theatre")
    assert notifications_since(seeded, mark) == [
        (patient.user_id, "Appointment cancelled", "Wed, 24 Mar 2027, 10:00 — Called to theatre")]


@pytest.mark.parametrize(("first", "then", "message"), [
    ("cancel", "cancel", "A cancelled appointment cannot be cancelled."),
    ("cancel", "confirm", "A cancelled appointment cannot be confirmed."),
    ("cancel", "reschedule", "A cancelled appointment cannot be rescheduled."),
    ("decline", "cancel", "A declined appointment cannot be cancelled."),
    ("decline", "decline", "A declined appointment cannot be declined."),
    ("decline", "complete", "A declined appointment cannot be completed."),
    ("none", "complete", "A pending appointment cannot be completed."),
    ("none", "no_show", "A pending appointment cannot be marked as a no-show."),
])
def test_illegal_transitions_are_conflicts(seeded, doctor, requested, first, then, message):
    actions = {
        "cancel": lambda: call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=requested,
                               reason="Away"),
        "decline": lambda: call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=requested,
                                reason="Not cardiac"),
        "confirm": lambda: call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=requested),
        "reschedule": lambda: call(seeded, appointments.reschedule_appointment, actor=doctor,
                                   appointment_id=requested, starts_at=iso(at(DAY, 11, 0))),
        "complete": lambda: call(seeded, appointments.complete_appointment, actor=doctor, appointment_id=requested),
        "no_show": lambda: call(seeded, appointments.mark_no_show, actor=doctor, appointment_id=requested),
    }
    if first != "none":
        actions[first]()
    before = snapshot(seeded)

    with pytest.raises(Conflict) as raised:
        actions[then]()

    assert raised.value.message == message
    assert snapshot(seeded) == before


@pytest.mark.parametrize(("close", "status", "title"), [
    (appointments.complete_appointment, AppointmentStatus.COMPLETED, "Appointment completed"),
    (appointments.mark_no_show, AppointmentStatus.NO_SHOW, "Appointment marked as missed"),
])
def test_complete_or_no_show_only_once_started_and_only_once(seeded, patient, doctor, confirmed, clock, close, status,
                                                             title):
    with pytest.raises(Conflict) as raised:
        call(seeded, close, actor=doctor, appointment_id=confirmed)
    assert "has not started yet" in raised.value.message
    assert "from Wed, 24 Mar 2027, 10:00" in raised.value.message

    clock.now = at(DAY, 10, 0)
    mark = last_notification_id(seeded)
    call(seeded, close, actor=doctor, appointment_id=confirmed)
    assert status_of(seeded, confirmed) == status
    assert notifications_since(seeded, mark) == [(patient.user_id, title, "Wed, 24 Mar 2027, 10:00")]

    for again in (appointments.complete_appointment, appointments.mark_no_show):
        with pytest.raises(Conflict, match=f"A {status.label.lower()} appointment cannot be"):
            call(seeded, again, actor=doctor, appointment_id=confirmed)


def test_a_past_confirmed_appointment_written_directly_can_be_completed(seeded, patient, doctor):
    appointment_id = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id,
                                        starts_at=at(NOW.date() - timedelta(days=1), 9, 0))
    call(seeded, appointments.complete_appointment, actor=doctor, appointment_id=appointment_id)
    assert status_of(seeded, appointment_id) == AppointmentStatus.COMPLETED


def test_a_past_requested_appointment_cannot_be_confirmed_or_cancelled(seeded, patient, doctor):
    appointment_id = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id,
                                        starts_at=at(NOW.date() - timedelta(days=1), 9, 0),
                                        status=AppointmentStatus.REQUESTED)
    with pytest.raises(Conflict, match="can no longer be confirmed"):
        call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=appointment_id)
    with pytest.raises(Conflict, match="can no longer be cancelled"):
        call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=appointment_id)


@pytest.mark.parametrize(("action", "attempt"), [
    ("appointment.confirm", lambda s, a, i: appointments.confirm_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.decline", lambda s, a, i: appointments.decline_appointment(
        session=s, actor=a, appointment_id=i, reason="No")),
    ("appointment.cancel", lambda s, a, i: appointments.cancel_appointment(
        session=s, actor=a, appointment_id=i, reason="No")),
    ("appointment.complete", lambda s, a, i: appointments.complete_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.no_show", lambda s, a, i: appointments.mark_no_show(session=s, actor=a, appointment_id=i)),
    ("appointment.reschedule", lambda s, a, i: appointments.reschedule_appointment(
        session=s, actor=a, appointment_id=i, starts_at=iso(at(DAY, 11, 0)))),
])
def test_another_doctor_gets_not_found_and_is_audited(seeded, other_doctor, requested, action, attempt):
    error = assert_refused(seeded, other_doctor, action, lambda s: attempt(s, other_doctor, requested), error=NotFound)
    assert error.message == "That appointment does not exist."


@pytest.mark.parametrize(("action", "attempt"), [
    ("appointment.cancel", lambda s, a, i: appointments.cancel_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.reschedule", lambda s, a, i: appointments.reschedule_appointment(
        session=s, actor=a, appointment_id=i, starts_at=iso(at(DAY, 11, 0)))),
])
def test_another_patient_gets_not_found_and_is_audited(seeded, other_patient, requested, action, attempt):
    assert_refused(seeded, other_patient, action, lambda s: attempt(s, other_patient, requested), error=NotFound)


@pytest.mark.parametrize("missing", [999_999, "abc", None])
def test_a_missing_appointment_answers_like_a_forbidden_one(seeded, doctor, missing):
    assert_refused(seeded, doctor, "appointment.confirm", lambda s: appointments.confirm_appointment(
        session=s, actor=doctor, appointment_id=missing), error=NotFound)


@pytest.mark.parametrize(("action", "attempt"), [
    ("appointment.confirm", lambda s, a, i: appointments.confirm_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.decline", lambda s, a, i: appointments.decline_appointment(
        session=s, actor=a, appointment_id=i, reason="No")),
    ("appointment.complete", lambda s, a, i: appointments.complete_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.no_show", lambda s, a, i: appointments.mark_no_show(session=s, actor=a, appointment_id=i)),
])
def test_the_patient_cannot_do_the_doctors_part(seeded, patient, requested, action, attempt):
    assert_refused(seeded, patient, action, lambda s: attempt(s, patient, requested))


@pytest.mark.parametrize("role", [*STAFF_WITHOUT_APPOINTMENTS, Role.ADMIN])
@pytest.mark.parametrize(("action", "attempt"), [
    ("appointment.confirm", lambda s, a, i: appointments.confirm_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.decline", lambda s, a, i: appointments.decline_appointment(
        session=s, actor=a, appointment_id=i, reason="No")),
    ("appointment.cancel", lambda s, a, i: appointments.cancel_appointment(
        session=s, actor=a, appointment_id=i, reason="No")),
    ("appointment.complete", lambda s, a, i: appointments.complete_appointment(session=s, actor=a, appointment_id=i)),
    ("appointment.no_show", lambda s, a, i: appointments.mark_no_show(session=s, actor=a, appointment_id=i)),
    ("appointment.reschedule", lambda s, a, i: appointments.reschedule_appointment(
        session=s, actor=a, appointment_id=i, starts_at=iso(at(DAY, 11, 0)))),
])
def test_other_roles_are_refused(seeded, actors, requested, role, action, attempt):
    error = assert_refused(seeded, actors[role], action, lambda s: attempt(s, actors[role], requested))
    assert error.message == "You do not have permission to do that."


def test_a_patient_granted_the_doctors_permission_still_cannot_confirm_their_own(seeded, actors, patient,
                                                                               requested):
    call(seeded, permissions.grant_permission, actor=actors[Role.ADMIN], role="patient",
         permission=Permission.APPOINTMENTS_MANAGE.value)
    granted = login_as(seeded, patient.email)

    error = assert_refused(seeded, granted, "appointment.confirm", lambda s: appointments.confirm_appointment(
        session=s, actor=granted, appointment_id=requested))
    assert error.message == "Only the appointment's doctor can do that."


def test_the_patient_moves_a_confirmed_appointment_back_to_requested(seeded, patient, doctor, confirmed):
    mark = last_notification_id(seeded)

    call(seeded, appointments.reschedule_appointment, actor=patient, appointment_id=confirmed,
         starts_at=iso(at(DAY, 14, 0)))

    row = appointment(seeded, confirmed)
    assert (row.starts_at, row.ends_at, row.status) == (at(DAY, 14, 0), at(DAY, 14, 20), AppointmentStatus.REQUESTED)
    free = free_starts(seeded, doctor.user_id, DAY)
    assert at(DAY, 10, 0) in free
    assert at(DAY, 14, 0) not in free
    assert notifications_since(seeded, mark) == [
        (doctor.user_id, "Appointment moved", "Wed, 24 Mar 2027, 10:00 → Wed, 24 Mar 2027, 14:00")]
    with seeded.connect() as conn:  # moved, not copied
        assert conn.execute(sa.select(sa.func.count()).select_from(Appointment)
                            .where(Appointment.patient_id == patient.user_id)).scalar_one() == 1
    [event] = audit_events(seeded, action="appointment.reschedule")
    assert event.detail == f"{at(DAY, 10, 0).isoformat()} -> {at(DAY, 14, 0).isoformat()}"


def test_the_doctor_moves_a_confirmed_appointment_and_it_stays_confirmed(seeded, patient, doctor, confirmed):
    mark = last_notification_id(seeded)
    next_day = DAY + timedelta(days=1)

    call(seeded, appointments.reschedule_appointment, actor=doctor, appointment_id=confirmed,
         starts_at=iso(at(next_day, 9, 0)))

    row = appointment(seeded, confirmed)
    assert (row.starts_at, row.status) == (at(next_day, 9, 0), AppointmentStatus.CONFIRMED)
    assert at(DAY, 10, 0) in free_starts(seeded, doctor.user_id, DAY)
    assert notifications_since(seeded, mark) == [
        (patient.user_id, "Appointment moved", "Wed, 24 Mar 2027, 10:00 → Thu, 25 Mar 2027, 09:00")]


def test_a_move_that_fails_part_way_leaves_the_appointment_where_it_was(seeded, patient, doctor, confirmed,
                                                                       monkeypatch):
    # The move, the notification, the audit row and the waitlist offer are one transaction.
    def broken_notify(*args, **kwargs):
        raise RuntimeError("notification store unavailable")

    monkeypatch.setattr(notifications, "notify", broken_notify)
    before = snapshot(seeded)

    with pytest.raises(RuntimeError):
        call(seeded, appointments.reschedule_appointment, actor=patient, appointment_id=confirmed,
             starts_at=iso(at(DAY, 14, 0)))

    assert snapshot(seeded) == before
    free = free_starts(seeded, doctor.user_id, DAY)
    assert at(DAY, 10, 0) not in free
    assert at(DAY, 14, 0) in free


@pytest.mark.parametrize(("target", "error", "message"), [
    (lambda d: at(d, 10, 0), ValidationError, "Choose a different time."),
    (lambda d: at(d, 10, 10), ValidationError, "That time is not a free slot of this doctor. Choose one from the list."),
    (lambda d: at(d, 11, 0), ValidationError, "That time is not a free slot of this doctor. Choose one from the list."),
    (lambda d: at(d, 12, 0), ValidationError, "That time is not a free slot of this doctor. Choose one from the list."),
    (lambda d: at(d + timedelta(days=126), 10, 0), ValidationError,
     "Appointments can be booked up to 120 days ahead."),
])
def test_rescheduling_is_validated_and_changes_nothing(seeded, patient, other_patient, doctor, confirmed,
                                                       target, error, message):
    book(seeded, other_patient, doctor.user_id, at(DAY, 11, 0))
    before = snapshot(seeded)

    with pytest.raises(error) as raised:
        call(seeded, appointments.reschedule_appointment, actor=patient, appointment_id=confirmed,
             starts_at=iso(target(DAY)))

    assert raised.value.message == message
    assert snapshot(seeded) == before


def test_rescheduling_onto_another_appointment_of_the_patient_is_a_conflict(seeded, patient, other_doctor, confirmed):
    book(seeded, patient, other_doctor.user_id, at(DAY, 15, 0))
    before = snapshot(seeded)

    with pytest.raises(Conflict, match="The patient already has an appointment at that time"):
        call(seeded, appointments.reschedule_appointment, actor=patient, appointment_id=confirmed,
             starts_at=iso(at(DAY, 15, 0)))
    assert snapshot(seeded) == before


def test_an_appointment_that_has_started_cannot_be_moved(seeded, doctor, confirmed, clock):
    clock.now = at(DAY, 10, 5)
    with pytest.raises(Conflict, match="already started and can no longer be moved"):
        call(seeded, appointments.reschedule_appointment, actor=doctor, appointment_id=confirmed,
             starts_at=iso(at(DAY, 14, 0)))


def test_every_change_notifies_the_other_party_and_never_the_actor(seeded, patient, doctor, clock):
    changes = []

    def record(actor, other, do):
        mark = last_notification_id(seeded)
        do()
        changes.append(([n[0] for n in notifications_since(seeded, mark)], other.user_id))
        assert actor.user_id not in changes[-1][0]

    first = book(seeded, patient, doctor.user_id, at(DAY, 9, 0))
    second = book(seeded, patient, doctor.user_id, at(DAY, 9, 40))
    third = book(seeded, patient, doctor.user_id, at(DAY, 14, 0))
    fourth = book(seeded, patient, doctor.user_id, at(DAY, 16, 0))
    record(doctor, patient, lambda: call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=first))
    record(patient, doctor, lambda: call(seeded, appointments.reschedule_appointment, actor=patient,
                                         appointment_id=first, starts_at=iso(at(DAY, 9, 20))))
    record(doctor, patient, lambda: call(seeded, appointments.reschedule_appointment, actor=doctor,
                                         appointment_id=first, starts_at=iso(at(DAY, 11, 0))))
    record(doctor, patient, lambda: call(seeded, appointments.decline_appointment, actor=doctor,
                                         appointment_id=second, reason="Wrong clinic"))
    record(patient, doctor, lambda: call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=third))
    record(doctor, patient, lambda: call(seeded, appointments.cancel_appointment, actor=doctor,
                                         appointment_id=fourth, reason="Away"))
    clock.now = at(DAY, 11, 30)
    record(doctor, patient, lambda: call(seeded, appointments.complete_appointment, actor=doctor,
                                         appointment_id=first))

    assert changes == [([other], other) for _, other in changes]
    assert len(changes) == 7


def test_the_patient_sees_their_upcoming_and_past_appointments(seeded, patient, doctor, other_doctor):
    soon = book(seeded, patient, doctor.user_id, at(DAY, 10, 0))
    later = book(seeded, patient, other_doctor.user_id, at(DAY + timedelta(days=1), 9, 0))
    cancelled = book(seeded, patient, doctor.user_id, at(DAY + timedelta(days=2), 9, 0))
    call(seeded, appointments.cancel_appointment, actor=patient, appointment_id=cancelled)
    yesterday = at(NOW.date() - timedelta(days=1), 9, 0)
    last_week = at(NOW.date() - timedelta(days=7), 9, 0)
    past = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id, starts_at=yesterday,
                              status=AppointmentStatus.COMPLETED)
    older = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id, starts_at=last_week,
                               status=AppointmentStatus.NO_SHOW)

    upcoming = call(seeded, appointments.patient_appointments, actor=patient, upcoming=True)
    assert [r.id for r in upcoming.rows] == [soon, later]
    assert upcoming.total == 2
    assert upcoming.rows[0].can_cancel
    assert (upcoming.rows[0].doctor, upcoming.rows[0].department) == ("Dr. Amelia Hart", "Cardiology")

    history = call(seeded, appointments.patient_appointments, actor=patient, upcoming=False)
    assert [r.id for r in history.rows] == [cancelled, past, older]
    assert [r.status_label for r in history.rows] == ["Cancelled", "Completed", "No-show"]
    assert not any(r.can_cancel for r in history.rows)

    paged = call(seeded, appointments.patient_appointments, actor=patient, upcoming=False, page=2, page_size=2)
    assert ([r.id for r in paged.rows], paged.total, paged.page_count) == ([older], 3, 2)


def test_a_patient_lists_only_their_own(seeded, other_patient, requested):
    assert call(seeded, appointments.patient_appointments, actor=other_patient, upcoming=True).rows == []


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN, *STAFF_WITHOUT_APPOINTMENTS])
def test_only_patients_list_their_own_appointments(seeded, actors, role):
    with pytest.raises(PermissionDenied):
        call(seeded, appointments.patient_appointments, actor=actors[role], upcoming=True)


def test_the_doctors_day_and_week(seeded, doctor, other_patient, requested, clock):
    thursday = NOW.date() + timedelta(days=3)  # the demo has Fatima Ali asking for 15:00 that day
    declined = book(seeded, other_patient, doctor.user_id, at(DAY, 9, 0))
    call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=declined, reason="Not cardiac")

    day = call(seeded, appointments.doctor_schedule, actor=doctor, first_day=DAY.isoformat())
    assert [(r.id, r.time, r.patient, r.status) for r in day] == [(requested, f"10:00{DASH}10:20", "Maria Garcia", "requested")]

    week = call(seeded, appointments.doctor_schedule, actor=doctor, first_day=NOW.date().isoformat(), days=7)
    assert [(r.patient, r.when) for r in week] == [("Fatima Ali", "Thu 18 Mar 15:00–15:20")]
    week = call(seeded, appointments.doctor_schedule, actor=doctor, first_day=(DAY - timedelta(days=2)).isoformat(),
                days=7)
    assert [r.id for r in week] == [requested]

    clock.now = at(thursday, 8, 0)  # no date given: today
    assert [r.patient for r in call(seeded, appointments.doctor_schedule, actor=doctor, first_day="")] == ["Fatima Ali"]


def test_a_closed_appointment_stays_on_the_doctors_day(seeded, doctor, confirmed, clock):
    clock.now = at(DAY, 10, 30)
    [row] = call(seeded, appointments.doctor_schedule, actor=doctor, first_day=DAY.isoformat())
    assert row.can_close
    assert not row.can_cancel
    call(seeded, appointments.mark_no_show, actor=doctor, appointment_id=confirmed)
    [row] = call(seeded, appointments.doctor_schedule, actor=doctor, first_day=DAY.isoformat())
    assert (row.status_label, row.can_close) == ("No-show", False)


def test_pending_requests_are_the_doctors_future_requests(seeded, doctor, other_doctor, other_patient, requested):
    confirmed_id = book(seeded, other_patient, doctor.user_id, at(DAY, 11, 0))
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=confirmed_id)
    elsewhere = book(seeded, other_patient, other_doctor.user_id, at(DAY, 11, 40))
    insert_appointment(seeded, patient_id=other_patient.user_id, doctor_id=doctor.user_id,
                       starts_at=at(NOW.date() - timedelta(days=1), 9, 0), status=AppointmentStatus.REQUESTED)

    pending = call(seeded, appointments.pending_requests, actor=doctor)

    assert [(r.patient, r.when) for r in pending.rows] == [
        ("Fatima Ali", "Thu 18 Mar 15:00–15:20"), ("Maria Garcia", "Wed 24 Mar 10:00–10:20")]
    assert all(r.can_confirm for r in pending.rows)
    assert [r.id for r in call(seeded, appointments.pending_requests, actor=other_doctor).rows] == [elsewhere]


@pytest.mark.parametrize("role", [Role.PATIENT, Role.ADMIN, *STAFF_WITHOUT_APPOINTMENTS])
def test_only_doctors_see_a_schedule_or_pending_requests(seeded, actors, role):
    with pytest.raises(PermissionDenied):
        call(seeded, appointments.doctor_schedule, actor=actors[role], first_day=DAY.isoformat())
    with pytest.raises(PermissionDenied):
        call(seeded, appointments.pending_requests, actor=actors[role])


def test_admin_filters_every_appointment(seeded, actors, patient, doctor, other_doctor, requested):
    admin = actors[Role.ADMIN]
    cardiology = department_id(seeded, "Cardiology")
    book(seeded, patient, other_doctor.user_id, at(DAY + timedelta(days=1), 9, 0))

    def ids(**filters):
        page = call(seeded, appointments.all_appointments, actor=admin, filters=AppointmentFilter(**filters),
                    page_size=100)
        return page.total, [r.id for r in page.rows]

    total, _ = ids()
    assert total == 7 + 2  # the demo's seven and ours
    assert ids(department_id=str(cardiology))[0] == 2 + 3  # the demo's three with Dr Hart
    total, found = ids(doctor_id=str(doctor.user_id), status="requested")
    assert total == 2
    assert requested in found
    assert ids(date_from=DAY.isoformat(), date_to=DAY.isoformat()) == (1, [requested])
    assert ids(date_from=DAY.isoformat())[0] == 2
    assert ids(status="completed")[0] == 2
    first = call(seeded, appointments.all_appointments, actor=admin, filters=AppointmentFilter(), sort="when",
                 descending=True, page_size=1)
    assert first.rows[0].starts_at == at(DAY + timedelta(days=1), 9, 0).isoformat()  # latest first
    with pytest.raises(ValidationError, match="Choose a status from the list"):
        ids(status="lost")


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR, *STAFF_WITHOUT_APPOINTMENTS])
def test_only_admin_lists_every_appointment(seeded, actors, role):
    assert_refused(seeded, actors[role], "appointment.list_all", lambda s: appointments.all_appointments(
        session=s, actor=actors[role], filters=AppointmentFilter()))


def test_booking_and_refusals_leave_the_audit_chain_intact(seeded, patient, doctor, other_doctor, requested):
    with pytest.raises(NotFound):
        call(seeded, appointments.confirm_appointment, actor=other_doctor, appointment_id=requested)
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=requested)
    with session_scope(write=False, engine=seeded) as s:
        assert audit.verify_chain(s).ok
        denied = s.execute(sa.select(AuditEvent).where(AuditEvent.action == "appointment.confirm")
                           .order_by(AuditEvent.id)).scalars().all()
    assert [(e.actor_id, str(e.outcome)) for e in denied] == [
        (other_doctor.user_id, "denied"), (doctor.user_id, "success")]


def test_admin_filter_options_list_departments_and_doctors(seeded, actors):
    found_departments, found_doctors = call(seeded, appointments.appointment_filter_options, actor=actors[Role.ADMIN])
    assert len(found_departments) == 5
    assert len(found_doctors) == 10
    assert found_doctors[0].label == "Dr. Amelia Hart"
    with pytest.raises(PermissionDenied):
        call(seeded, appointments.appointment_filter_options, actor=actors[Role.DOCTOR])
