"""Issue 16 in a real browser: the doctor's desk.

Item 5: a pending request lists its day with its time ("Tomorrow 06:10–06:30", "Thu 10 Dec 06:10–06:30"),
never the time alone. Item 6: the doctor finds a patient on /doctor/patients by name, record number or
birth date typed in the locale's format, their own patients first and marked, anyone else opened only
through break-the-glass. Item 17 shows through both: dates and times as en-GB (``HMS_LOCALE``'s default)
writes them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hms_app.db.engine import create_engine
from hms_app.db.enums import AppointmentStatus
from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    log_in_to,
    screenshot,
    user_id,
    wait_ready,
)
from tests.services.appointment_helpers import insert_appointment

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
DOCTOR = "amelia.hart@hms.example"
PATIENT = "daniel.cohen@patients.example"
STRANGER = "aisha.khan@patients.example"


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def _request_at_6_10(database_url: str, *days: date) -> None:
    """Daniel Cohen asks Dr Hart for 06:10 on each of ``days`` (written to the database directly)."""
    engine = create_engine(database_url)
    try:
        for day in days:
            insert_appointment(engine, patient_id=user_id(database_url, PATIENT), doctor_id=user_id(database_url, DOCTOR),
                               starts_at=_local(day, 6, 10), status=AppointmentStatus.REQUESTED)
    finally:
        engine.dispose()


def test_pending_requests_carry_their_day(app_server, new_context, screenshot_dir):
    today = datetime.now(LONDON).date()
    tomorrow, next_week = today + timedelta(days=1), today + timedelta(days=8)
    _request_at_6_10(app_server.database_url, tomorrow, next_week)
    page = new_context(viewport={"width": 1366, "height": 900}).new_page()
    log_in_to(page, app_server.url, DOCTOR, "/doctor")
    page.goto(f"{app_server.url}/doctor/appointments")
    wait_ready(page)
    pending = page.get_by_role("table", name="Pending requests")
    # Written out here by hand, not by the app's formatter: en-GB's short weekday, day and month.
    month = f"{next_week:%b}".replace("Sep", "Sept")  # CLDR's en-GB abbreviation
    later = f"{next_week:%a} {next_week.day} {month} 06:10–06:30"
    pending.get_by_role("rowheader", name="Tomorrow 06:10–06:30", exact=True).wait_for()
    pending.get_by_role("rowheader", name=later, exact=True).wait_for()
    assert pending.get_by_role("rowheader", name="06:10–06:30", exact=True).count() == 0
    screenshot(page, screenshot_dir, "doctor-pending-requests")
    assert_accessible(page)


def test_doctor_finds_patients_own_first_and_others_through_break_the_glass(app_server, new_context, screenshot_dir):
    db = app_server.database_url
    doctor_id, stranger_id = user_id(db, DOCTOR), user_id(db, STRANGER)
    assert not db_value(db, "SELECT 1 FROM appointment WHERE doctor_id = ? AND patient_id = ?", (doctor_id, stranger_id))
    name, mrn, born = db_rows(db, 'SELECT u.full_name, p.mrn, p.birth_date FROM "user" u '
                                  "JOIN patient_profile p ON p.user_id = u.id WHERE u.id = ?", (stranger_id,))[0]
    born = date.fromisoformat(born[:10])
    own_total = db_value(db, "SELECT COUNT(DISTINCT patient_id) FROM appointment WHERE doctor_id = ?", (doctor_id,))

    page = new_context(viewport={"width": 1366, "height": 900}).new_page()
    log_in_to(page, app_server.url, DOCTOR, "/doctor")
    page.get_by_role("navigation").get_by_role("link", name="Patients").click()
    page.wait_for_url(f"{app_server.url}/doctor/patients")
    wait_ready(page)
    table = page.get_by_role("table", name="Patients found, your own first")
    # No search yet: the doctor's own patients, each marked, and the count says how many.
    table.get_by_text("Your patient").first.wait_for()
    assert table.locator("tbody tr").count() == min(own_total, 20)
    assert table.get_by_text("Your patient").count() == table.locator("tbody tr").count()
    page.get_by_text(re.compile(rf"^{own_total} in all")).wait_for()
    screenshot(page, screenshot_dir, "doctor-patients")
    assert_accessible(page)

    search = page.get_by_label("Search patients")
    # By birth date, typed as a British doctor writes it: the stranger, with the birth year only.
    search.fill(f"{born:%d/%m/%Y}")
    row = table.locator(f"tr[data-patient='{stranger_id}']")
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == str(born.year)
    assert row.get_by_text("Your patient").count() == 0
    # By record number: the same row, alone.
    search.fill(mrn.lower())
    page.get_by_text(re.compile(r"^1 in all")).wait_for()
    row.wait_for()
    screenshot(page, screenshot_dir, "doctor-patients-search")
    # Nothing matches: the empty state says what to do.
    search.fill("zzqx no such patient")
    page.get_by_text("No patient matches").wait_for()
    assert_accessible(page)
    # Back to the stranger by name; the chart opens only by breaking the glass.
    search.fill(name)
    row.get_by_role("link", name=f"Break the glass for the chart of {name}").click()
    page.wait_for_url(f"{app_server.url}/doctor/patient?id={stranger_id}")
    page.get_by_text("This patient is not under your care").first.wait_for()
    page.fill("#break-glass-reason", "Collapsed in the waiting room, no history available")
    page.get_by_role("button", name="Break the glass and open the chart").click()
    page.get_by_text("Opened by breaking the glass").first.wait_for()
    assert db_value(db, "SELECT COUNT(*) FROM audit_event WHERE action = 'patient.search' AND actor_id = ?",
                    (doctor_id,)) >= 4


def test_the_patients_list_carries_the_day_too_on_a_phone(app_server, new_context, screenshot_dir):
    """The same rule wherever an appointment is listed: the patient's own list, at 390×844."""
    tomorrow = datetime.now(LONDON).date() + timedelta(days=1)
    db = app_server.database_url
    patient_id = user_id(db, PATIENT)
    if not db_value(db, "SELECT COUNT(*) FROM appointment WHERE patient_id = ? AND status = 'requested'", (patient_id,)):
        _request_at_6_10(db, tomorrow)
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in_to(page, app_server.url, PATIENT, "/patient")
    page.goto(f"{app_server.url}/patient/appointments")
    wait_ready(page)
    # On a phone the rows are cards, which keep the text but not the table's roles.
    page.get_by_text("Tomorrow 06:10–06:30", exact=True).first.wait_for()
    screenshot(page, screenshot_dir, "patient-appointments-phone")
