"""Working hours, slot length, leave, and the free slots derived from them."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.enums import Role
from hms_app.services.booking import appointments, scheduling
from hms_app.services.core import localtime
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from tests.services.appointment_helpers import (
    DAY,
    FALL_BACK,
    NOW,
    OTHER_DOCTOR_EMAIL,
    PATIENT_EMAIL,
    SPRING_FORWARD,
    at,
    book,
    call,
    department_id,
    doctors_of,
    free_starts,
    freeze,
    insert_appointment,
    user_id,
)
from tests.services.helpers import assert_refused

pytestmark = pytest.mark.db

DASH = "\N{EN DASH}"  # the product writes time ranges with an en dash

DAY_HOURS = [(time(9, 0), time(12, 0)), (time(13, 0), time(17, 0))]
NIGHT = [(time(0, 0), time(4, 0))]


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    return freeze(monkeypatch)


@pytest.fixture
def amelia(actors):
    return actors[Role.DOCTOR].user_id


@pytest.fixture
def rohan(seeded):
    return user_id(seeded, OTHER_DOCTOR_EMAIL)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _assert_contiguous_and_ordered(slots):
    assert [s.starts_at for s in slots] == sorted({s.starts_at for s in slots})
    for before, after in itertools.pairwise(slots):
        assert before.ends_at <= after.starts_at


def test_an_ordinary_day_is_cut_into_slots_of_the_working_blocks():
    slots = scheduling.wall_clock_slots(DAY, DAY_HOURS, 20)

    assert len(slots) == 9 + 12
    assert slots[0].starts_at == utc(2027, 3, 24, 9, 0)  # GMT: local equals UTC
    assert slots[8].ends_at == utc(2027, 3, 24, 12, 0)
    assert slots[9].starts_at == utc(2027, 3, 24, 13, 0)  # nothing in the lunch break
    assert slots[-1].starts_at == utc(2027, 3, 24, 16, 40)
    assert all(s.ends_at - s.starts_at == timedelta(minutes=20) for s in slots)
    _assert_contiguous_and_ordered(slots)


def test_blocks_given_out_of_order_still_give_ordered_slots_and_a_short_tail_is_dropped():
    slots = scheduling.wall_clock_slots(DAY, [(time(14, 0), time(15, 10)), (time(9, 0), time(10, 0))], 30)

    assert [s.label for s in slots] == ["09:00", "09:30", "14:00", "14:30"]  # 15:00-15:30 would overrun


def test_summer_time_hours_map_to_utc_an_hour_earlier():
    slots = scheduling.wall_clock_slots(SPRING_FORWARD, DAY_HOURS, 20)

    assert len(slots) == 21
    assert slots[0].starts_at == utc(2027, 3, 28, 8, 0)
    assert slots[0].label == "09:00"
    assert slots[-1].starts_at == utc(2027, 3, 28, 15, 40)


def test_spring_forward_skips_the_wall_clock_times_that_do_not_exist():
    # 00:00-04:00 on the wall is only three real hours: 01:00-01:59 never shows on the clock.
    slots = scheduling.wall_clock_slots(SPRING_FORWARD, NIGHT, 20)

    assert [s.starts_at for s in slots] == [
        utc(2027, 3, 28, 0, 0), utc(2027, 3, 28, 0, 20),
        # 00:40-01:00 ends at a wall time that does not exist, and 01:00-01:40 start in the gap
        utc(2027, 3, 28, 1, 0), utc(2027, 3, 28, 1, 20), utc(2027, 3, 28, 1, 40),  # 02:00-02:40 BST
        utc(2027, 3, 28, 2, 0), utc(2027, 3, 28, 2, 20), utc(2027, 3, 28, 2, 40),  # 03:00-03:40 BST
    ]
    assert [s.label for s in slots] == ["00:00", "00:20", "02:00", "02:20", "02:40", "03:00", "03:20", "03:40"]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=20) for s in slots)
    _assert_contiguous_and_ordered(slots)


def test_fall_back_cuts_the_repeated_hour_once_and_covers_the_night_without_overlap():
    # 00:00-04:00 on the wall is five real hours: 01:00-01:59 happens twice.
    slots = scheduling.wall_clock_slots(FALL_BACK, NIGHT, 20)

    assert len(slots) == 12  # one slot per 20 wall-clock minutes, none doubled
    assert slots[0].starts_at == utc(2027, 10, 30, 23, 0)  # 00:00 BST
    assert slots[3].starts_at == utc(2027, 10, 31, 0, 0)  # 01:00, first time round (BST)
    assert slots[6].starts_at == utc(2027, 10, 31, 2, 0)  # 02:00 GMT
    assert slots[-1].ends_at == utc(2027, 10, 31, 4, 0)
    for before, after in itertools.pairwise(slots):
        assert before.ends_at == after.starts_at  # no overlap and no hole
    # The 01:40 slot runs to 02:00 on the wall, which is 80 real minutes that night.
    assert slots[5].label == "01:40"
    assert slots[5].ends_at - slots[5].starts_at == timedelta(minutes=80)


def test_winter_time_hours_after_fall_back_equal_utc():
    slots = scheduling.wall_clock_slots(FALL_BACK, DAY_HOURS, 20)

    assert len(slots) == 21
    assert slots[0].starts_at == utc(2027, 10, 31, 9, 0)


def test_day_span_covers_23_and_25_hour_days():
    start, end = scheduling.day_span_utc(SPRING_FORWARD)
    assert (start, end - start) == (utc(2027, 3, 28, 0, 0), timedelta(hours=23))
    start, end = scheduling.day_span_utc(FALL_BACK)
    assert (start, end - start) == (utc(2027, 10, 30, 23, 0), timedelta(hours=25))


def test_free_slots_follow_the_weekly_hours(seeded, amelia):
    assert len(free_starts(seeded, amelia, DAY)) == 21
    assert free_starts(seeded, amelia, DAY + timedelta(days=3)) == []  # Saturday: no hours
    assert free_starts(seeded, 999_999, DAY) == []  # no such doctor


def test_sunday_hours_on_the_spring_forward_day_are_offered_in_summer_time(seeded, actors, amelia):
    call(seeded, scheduling.add_hours, actor=actors[Role.DOCTOR], doctor_id=amelia, weekday=6,
         start="09:00", end="10:00")

    offered = call(seeded, appointments.free_slots, actor=actors[Role.PATIENT],
                   department_id=department_id(seeded, "Cardiology"), doctor_id=amelia,
                   day=SPRING_FORWARD.isoformat())

    assert [(o.label, o.starts_at) for o in offered] == [
        ("09:00", "2027-03-28T08:00:00+00:00"), ("09:20", "2027-03-28T08:20:00+00:00"),
        ("09:40", "2027-03-28T08:40:00+00:00"),
    ]
    assert free_starts(seeded, amelia, SPRING_FORWARD - timedelta(days=7))[0] == utc(2027, 3, 21, 9, 0)


def test_an_appointment_from_the_evening_before_still_blocks_the_slots_it_runs_into(seeded, actors, amelia):
    call(seeded, scheduling.add_hours, actor=actors[Role.DOCTOR], doctor_id=amelia, weekday=DAY.weekday(),
         start="00:00", end="04:00")
    insert_appointment(seeded, patient_id=user_id(seeded, PATIENT_EMAIL), doctor_id=amelia,
                       starts_at=at(DAY - timedelta(days=1), 23, 0), minutes=240)  # 23:00 to 03:00

    night = [s for s in free_starts(seeded, amelia, DAY) if s < at(DAY, 4, 0)]

    assert night == [at(DAY, 3, 0), at(DAY, 3, 20), at(DAY, 3, 40)]


def test_free_slots_of_any_doctor_take_as_many_queries_as_of_one(seeded, actors, amelia):
    cardiology = department_id(seeded, "Cardiology")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries(doctor_id: object) -> int:
        statements.clear()
        sa.event.listen(seeded, "before_cursor_execute", count)
        try:
            call(seeded, appointments.free_slots, actor=actors[Role.PATIENT], department_id=cardiology,
                 doctor_id=doctor_id, day=DAY.isoformat())
        finally:
            sa.event.remove(seeded, "before_cursor_execute", count)
        return len(statements)

    assert len(doctors_of(seeded, "Cardiology")) > 1
    assert queries("any") == queries(amelia)


def test_slots_that_have_started_or_passed_are_not_free(seeded, amelia):
    starts = free_starts(seeded, amelia, DAY, now=at(DAY, 10, 5))
    assert starts[0] == at(DAY, 10, 20)  # 10:00 began five minutes ago
    assert len(starts) == 21 - 4

    starts = free_starts(seeded, amelia, DAY, now=at(DAY, 10, 20))
    assert starts[0] == at(DAY, 10, 40)  # a slot starting right now is gone too

    assert free_starts(seeded, amelia, DAY, now=at(DAY, 17, 0)) == []


def test_whole_day_leave_removes_every_slot_of_those_days(seeded, actors, amelia):
    call(seeded, scheduling.add_leave, actor=actors[Role.ADMIN], doctor_id=amelia, date_from=DAY.isoformat(),
         date_to=(DAY + timedelta(days=1)).isoformat(), reason="Conference")

    assert free_starts(seeded, amelia, DAY) == []
    assert free_starts(seeded, amelia, DAY + timedelta(days=1)) == []
    assert len(free_starts(seeded, amelia, DAY - timedelta(days=1))) == 21
    assert len(free_starts(seeded, amelia, DAY + timedelta(days=2))) == 21


def test_leave_by_the_hour_removes_the_slots_it_touches(seeded, actors, amelia):
    call(seeded, scheduling.add_leave, actor=actors[Role.DOCTOR], doctor_id=amelia, date_from=DAY.isoformat(),
         start="10:10", end="10:30", reason="Dentist")

    starts = free_starts(seeded, amelia, DAY)
    assert at(DAY, 10, 0) not in starts
    assert at(DAY, 10, 20) not in starts
    assert at(DAY, 9, 40) in starts
    assert at(DAY, 10, 40) in starts
    assert len(starts) == 19


def test_leave_by_the_hour_in_summer_time_is_stored_in_utc(seeded, actors, amelia):
    monday = SPRING_FORWARD + timedelta(days=1)
    call(seeded, scheduling.add_leave, actor=actors[Role.DOCTOR], doctor_id=amelia, date_from=monday.isoformat(),
         start="09:00", end="10:00")

    starts = free_starts(seeded, amelia, monday)
    assert starts[0] == utc(2027, 3, 29, 9, 0)  # 10:00 BST
    assert len(starts) == 18


def test_booked_slots_are_not_free_and_a_cancelled_one_is_free_again(seeded, actors, amelia):
    appointment_id = book(seeded, actors[Role.PATIENT], amelia, at(DAY, 9, 20))
    assert at(DAY, 9, 20) not in free_starts(seeded, amelia, DAY)
    assert len(free_starts(seeded, amelia, DAY)) == 20

    call(seeded, appointments.cancel_appointment, actor=actors[Role.PATIENT], appointment_id=appointment_id)
    assert at(DAY, 9, 20) in free_starts(seeded, amelia, DAY)


def test_a_longer_slot_length_hides_the_new_slots_that_overlap_a_booking(seeded, actors, amelia):
    book(seeded, actors[Role.PATIENT], amelia, at(DAY, 9, 20))  # 09:20-09:40

    call(seeded, scheduling.set_slot_minutes, actor=actors[Role.DOCTOR], doctor_id=amelia, minutes=30)

    starts = free_starts(seeded, amelia, DAY)
    assert at(DAY, 9, 0) not in starts
    assert at(DAY, 9, 30) not in starts
    assert starts[0] == at(DAY, 10, 0)
    assert len(starts) == 6 + 8 - 2
    assert all(b - a >= timedelta(minutes=30) for a, b in itertools.pairwise(starts))


def test_a_doctor_edits_their_own_hours(seeded, actors, amelia):
    doctor = actors[Role.DOCTOR]
    saturday = DAY + timedelta(days=3)

    block = call(seeded, scheduling.add_hours, actor=doctor, doctor_id=amelia, weekday=5, start="09:00", end="11:00")
    assert len(free_starts(seeded, amelia, saturday)) == 6
    schedule = call(seeded, scheduling.get_schedule, actor=doctor, doctor_id=amelia)
    assert ("Saturday", "09:00", "11:00") in [(h.weekday_name, h.start, h.end) for h in schedule.hours]

    call(seeded, scheduling.remove_hours, actor=doctor, doctor_id=amelia, block_id=block)
    assert free_starts(seeded, amelia, saturday) == []


def test_admin_edits_any_doctors_schedule(seeded, actors, rohan):
    admin = actors[Role.ADMIN]
    call(seeded, scheduling.set_slot_minutes, actor=admin, doctor_id=rohan, minutes=15)
    call(seeded, scheduling.add_leave, actor=admin, doctor_id=rohan, date_from=DAY.isoformat(), reason="Course")

    schedule = call(seeded, scheduling.get_schedule, actor=admin, doctor_id=rohan)
    assert schedule.slot_minutes == 15
    assert schedule.department == "Cardiology"
    assert [row.reason for row in schedule.leave] == ["Course"]
    assert free_starts(seeded, rohan, DAY) == []
    assert len(free_starts(seeded, rohan, DAY + timedelta(days=1))) == 12 + 16


@pytest.mark.parametrize(("action", "edit"), [
    ("schedule.hours.add", lambda s, a, d: scheduling.add_hours(
        session=s, actor=a, doctor_id=d, weekday=5, start="09:00", end="10:00")),
    ("schedule.slot_length", lambda s, a, d: scheduling.set_slot_minutes(session=s, actor=a, doctor_id=d, minutes=30)),
    ("schedule.leave.add", lambda s, a, d: scheduling.add_leave(
        session=s, actor=a, doctor_id=d, date_from=DAY.isoformat())),
    ("schedule.view", lambda s, a, d: scheduling.get_schedule(session=s, actor=a, doctor_id=d)),
])
def test_a_doctor_cannot_touch_another_doctors_schedule(seeded, actors, rohan, action, edit):
    doctor = actors[Role.DOCTOR]
    assert_refused(seeded, doctor, action, lambda s: edit(s, doctor, rohan))


@pytest.mark.parametrize("role", [Role.PATIENT, Role.LAB, Role.PHARMACY, Role.ACCOUNTS])
def test_other_roles_cannot_edit_schedules(seeded, actors, amelia, role):
    assert_refused(seeded, actors[role], "schedule.hours.add", lambda s: scheduling.add_hours(
        session=s, actor=actors[role], doctor_id=amelia, weekday=5, start="09:00", end="10:00"))


def test_admin_editing_a_schedule_of_someone_who_is_not_a_doctor_gets_not_found(seeded, actors):
    patient_id = user_id(seeded, PATIENT_EMAIL)
    error = assert_refused(seeded, actors[Role.ADMIN], "schedule.slot_length", lambda s: scheduling.set_slot_minutes(
        session=s, actor=actors[Role.ADMIN], doctor_id=patient_id, minutes=30), error=NotFound)
    assert error.message == "That doctor does not exist."


def test_hours_of_one_weekday_may_not_overlap(seeded, actors, amelia):
    doctor = actors[Role.DOCTOR]
    with pytest.raises(Conflict, match=f"That overlaps the 09:00{DASH}12:00 block on Monday"):
        call(seeded, scheduling.add_hours, actor=doctor, doctor_id=amelia, weekday=0, start="11:30", end="12:30")
    with pytest.raises(Conflict, match=f"13:00{DASH}17:00 block on Friday"):
        call(seeded, scheduling.add_hours, actor=doctor, doctor_id=amelia, weekday=4, start="12:30", end="18:00")

    # Touching blocks do not overlap: the lunch hour can be added.
    call(seeded, scheduling.add_hours, actor=doctor, doctor_id=amelia, weekday=0, start="12:00", end="13:00")
    monday = DAY + timedelta(days=5)
    assert len(free_starts(seeded, amelia, monday)) == 24


@pytest.mark.parametrize(("weekday", "start", "end", "message"), [
    (7, "09:00", "10:00", "Choose a weekday."),
    ("x", "09:00", "10:00", "Choose a weekday."),
    (5, "10:00", "10:00", "The end time must be after the start time."),
    (5, "9am", "10:00", "Enter the start time as a time, like 09:00."),
    (5, "09:00:30", "10:00", "The start time must be whole minutes."),
])
def test_hours_are_validated(seeded, actors, amelia, weekday, start, end, message):
    with pytest.raises(ValidationError) as raised:
        call(seeded, scheduling.add_hours, actor=actors[Role.DOCTOR], doctor_id=amelia, weekday=weekday,
             start=start, end=end)
    assert raised.value.message == message


@pytest.mark.parametrize("minutes", [4, 241, "twenty", None])
def test_slot_length_is_bounded(seeded, actors, amelia, minutes):
    with pytest.raises(ValidationError, match="between 5 and 240 minutes"):
        call(seeded, scheduling.set_slot_minutes, actor=actors[Role.DOCTOR], doctor_id=amelia, minutes=minutes)


def test_leave_over_a_booked_appointment_is_refused_until_it_is_cancelled(seeded, actors, amelia):
    doctor = actors[Role.DOCTOR]
    appointment_id = book(seeded, actors[Role.PATIENT], amelia, at(DAY, 15, 0))

    with pytest.raises(Conflict, match=r"1 active appointment\(s\) fall in that period"):
        call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from=DAY.isoformat())
    with pytest.raises(Conflict):
        call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from=DAY.isoformat(),
             start="15:10", end="16:00")
    # Hours that do not touch the appointment are fine.
    call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from=DAY.isoformat(),
         start="15:20", end="16:00")

    call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=appointment_id, reason="Away")
    call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from=DAY.isoformat())
    assert free_starts(seeded, amelia, DAY) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"date_from": "24/03/2027"}, "Enter the first day as a date, like 2026-12-01."),
    ({"date_from": "2027-03-24", "date_to": "2027-03-23"}, "The last day must not be before the first day."),
    ({"date_from": "2027-03-24", "date_to": "2028-03-25"}, "Leave can cover at most a year at a time."),
    ({"date_from": "2027-03-24", "date_to": "2027-03-25", "start": "09:00", "end": "10:00"},
     "Leave by the hour must fall on one day."),
    ({"date_from": "2027-03-24", "start": "11:00", "end": "10:00"}, "The end time must be after the start time."),
    ({"date_from": "2027-03-14"}, "That leave is entirely in the past."),
])
def test_leave_is_validated(seeded, actors, amelia, kwargs, message):
    with pytest.raises(ValidationError) as raised:
        call(seeded, scheduling.add_leave, actor=actors[Role.DOCTOR], doctor_id=amelia, **kwargs)
    assert raised.value.message == message


def test_leave_is_removed_by_its_doctor_and_not_through_another(seeded, actors, amelia, rohan):
    admin = actors[Role.ADMIN]
    leave = call(seeded, scheduling.add_leave, actor=actors[Role.DOCTOR], doctor_id=amelia, date_from=DAY.isoformat())

    assert_refused(seeded, admin, "schedule.leave.remove", lambda s: scheduling.remove_leave(
        session=s, actor=admin, doctor_id=rohan, leave_id=leave), error=NotFound)
    assert free_starts(seeded, amelia, DAY) == []

    call(seeded, scheduling.remove_leave, actor=actors[Role.DOCTOR], doctor_id=amelia, leave_id=leave)
    assert len(free_starts(seeded, amelia, DAY)) == 21


def test_hours_of_another_doctor_cannot_be_removed_through_ones_own_id(seeded, actors, amelia, rohan):
    block = call(seeded, scheduling.add_hours, actor=actors[Role.ADMIN], doctor_id=rohan, weekday=5,
                 start="09:00", end="10:00")
    doctor = actors[Role.DOCTOR]
    assert_refused(seeded, doctor, "schedule.hours.remove", lambda s: scheduling.remove_hours(
        session=s, actor=doctor, doctor_id=amelia, block_id=block), error=NotFound)
    assert len(free_starts(seeded, rohan, DAY + timedelta(days=3))) == 3


def test_schedule_lists_only_leave_that_has_not_ended(seeded, actors, amelia, clock):
    doctor = actors[Role.DOCTOR]
    call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from="2027-03-16", reason="Tuesday off")
    call(seeded, scheduling.add_leave, actor=doctor, doctor_id=amelia, date_from=DAY.isoformat(), reason="Wednesday")

    clock.now = NOW + timedelta(days=2)  # Wednesday 17 March: Tuesday's leave is over
    schedule = call(seeded, scheduling.get_schedule, actor=doctor, doctor_id=amelia)
    assert [row.reason for row in schedule.leave] == ["Wednesday"]
    assert schedule.leave[0].period == f"Wed, 24 Mar 2027, 00:00 {DASH} Thu, 25 Mar 2027, 00:00"
    assert len(schedule.hours) == 10


def test_local_today_follows_the_hospital_time_zone(clock):
    clock.now = utc(2027, 6, 30, 23, 30)  # 00:30 BST on 1 July
    assert localtime.local_today() == date(2027, 7, 1)
    clock.now = utc(2027, 12, 31, 23, 30)  # GMT: still New Year's Eve
    assert localtime.local_today() == date(2027, 12, 31)


@pytest.mark.parametrize("text", ["", "tomorrow", "2027-03-24T09:00:00"])
def test_slot_start_must_be_an_instant_with_an_offset(text):
    with pytest.raises(ValidationError, match="Choose a time from the list of free slots"):
        scheduling.parse_instant(text)


def test_slot_start_with_an_offset_is_read_as_utc():
    assert scheduling.parse_instant("2027-03-29T10:00:00+01:00") == utc(2027, 3, 29, 9, 0)
