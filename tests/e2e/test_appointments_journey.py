"""Issue 3 in a real browser: a patient books with "any available doctor", the assigned
doctor confirms in a second browser context, the patient's page shows Confirmed without a
reload, the patient cancels and the slot is free again."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from tests.e2e.helpers import assert_accessible, log_in, screenshot, wait_ready

DOCTOR_EMAILS = {"Dr. Priya Nair": "priya.nair@hms.example", "Dr. Jonas Lindqvist": "jonas.lindqvist@hms.example"}


def _next_weekday(days_ahead: int = 7) -> date:
    day = date.today() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _appointment(db: str, appointment_id: int) -> tuple:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT a.status, u.full_name, a.starts_at FROM appointment a JOIN user u ON u.id = a.doctor_id "
            "WHERE a.id = ?", (appointment_id,)
        ).fetchone()


def test_book_confirm_live_and_cancel(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    day = _next_weekday()
    patient_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    doctor_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        patient = patient_ctx.new_page()
        log_in(patient, app_server.url, "daniel.cohen@patients.example")
        patient.wait_for_url(f"{app_server.url}/patient")
        patient.goto(f"{app_server.url}/patient/book")
        wait_ready(patient)
        patient.fill("#book-date", day.isoformat())
        patient.select_option("#book-department", label="Dermatology")
        first_slot = patient.get_by_role("group", name="Free times").get_by_role("button").first
        first_slot.wait_for()
        slot_label = first_slot.inner_text()
        first_slot.click()
        patient.fill("#book-reason", "Itchy rash on both arms")
        screenshot(patient, screenshot_dir, "patient-book")
        assert_accessible(patient)
        patient.get_by_role("button", name="Request appointment").click()
        patient.wait_for_url(f"{app_server.url}/patient/appointments")
        row = patient.locator("tr[data-appointment]").first
        row.get_by_text("Pending").wait_for()
        appointment_id = int(row.get_attribute("data-appointment"))
        status, doctor_name, _ = _appointment(db, appointment_id)
        assert status == "requested"
        assert doctor_name in DOCTOR_EMAILS

        doctor = doctor_ctx.new_page()
        log_in(doctor, app_server.url, DOCTOR_EMAILS[doctor_name])
        doctor.wait_for_url(f"{app_server.url}/doctor")
        doctor.goto(f"{app_server.url}/doctor/appointments")
        wait_ready(doctor)
        request = doctor.locator(f"tr[data-appointment='{appointment_id}']").first
        request.get_by_text("Daniel Cohen").wait_for()
        screenshot(doctor, screenshot_dir, "doctor-appointments")
        assert_accessible(doctor)
        request.get_by_role("button", name="Confirm").click()

        # The patient's page changes by itself: no reload, no navigation.
        patient_row = patient.locator(f"tr[data-appointment='{appointment_id}']")
        patient_row.get_by_text("Confirmed").wait_for(timeout=5_000)
        assert _appointment(db, appointment_id)[0] == "confirmed"
        screenshot(patient, screenshot_dir, "patient-appointments")
        assert_accessible(patient)

        patient_row.get_by_role("button", name="Cancel the appointment").click()
        patient.get_by_role("button", name="Cancel appointment").click()
        patient.get_by_text("Appointment cancelled").first.wait_for()
        assert _appointment(db, appointment_id)[0] == "cancelled"

        # The slot is offered again.
        patient.goto(f"{app_server.url}/patient/book")
        wait_ready(patient)
        patient.fill("#book-date", day.isoformat())
        patient.select_option("#book-department", label="Dermatology")
        patient.get_by_role("group", name="Free times").get_by_role("button", name=slot_label).first.wait_for()
    finally:
        patient_ctx.close()
        doctor_ctx.close()
