"""Issue 16, item 2 in a real browser: a troponin of 52 (high) waits for the ordering doctor.
The patient sees "Awaiting review by your doctor" with no value and nothing to download; the
doctor finds it through the dashboard's count, marks it reviewed with a note, and the patient's
open page shows the value and the note without a reload."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_value,
    log_in,
    screenshot,
    wait_for_db,
    wait_ready,
)

PATIENT = "maria.garcia@patients.example"
DOCTOR = "mateo.rossi@hms.example"
NOTE = "A little high: please book a repeat test next week."


def _held_troponin(db: str, data_dir) -> int:
    """A completed troponin order of the patient, resulted 52 ng/L (high) and held for review."""
    key = (data_dir / "hms.key").read_bytes().splitlines()[0]
    empty = Fernet(key).encrypt(b"").decode()  # encrypted columns hold a token even when empty
    ordered = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None).isoformat(" ")
    resulted = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None).isoformat(" ")
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (PATIENT,)).fetchone()[0]
        doctor = conn.execute("SELECT id FROM user WHERE email=?", (DOCTOR,)).fetchone()[0]
        lab = conn.execute("SELECT id FROM user WHERE email='lab@hms.example'").fetchone()[0]
        test = conn.execute("SELECT id FROM lab_test WHERE code='TROP'").fetchone()[0]
        order_id = conn.execute(
            "INSERT INTO lab_order (patient_id, doctor_id, test_id, priority, status, note, ordered_at, updated_at) "
            "VALUES (?, ?, ?, 'stat', 'completed', ?, ?, ?)", (patient, doctor, test, empty, ordered, resulted)
        ).lastrowid
        conn.execute(
            "INSERT INTO lab_result (order_id, value_numeric, value_text, unit, flag, range_low, range_high, comment, "
            "verified_by, resulted_at, turnaround_seconds, released_at) "
            "VALUES (?, 52, ?, 'ng/L', 'high', 0, 14, ?, ?, ?, 6900, NULL)",
            (order_id, empty, empty, lab, resulted))
    return order_id


def test_a_held_result_waits_for_the_doctor_and_reaches_the_patient_live(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    order_id = _held_troponin(db, app_server.data_dir)
    desk = {"viewport": {"width": 1366, "height": 900}, "accept_downloads": True}
    contexts = [browser.new_context(**desk), browser.new_context(**desk),
                browser.new_context(viewport={"width": 390, "height": 844})]
    try:
        patient, doctor, phone = (ctx.new_page() for ctx in contexts)
        log_in(patient, app_server.url, PATIENT)
        patient.wait_for_url(f"{app_server.url}/patient")
        patient.goto(f"{app_server.url}/patient/results")
        wait_ready(patient)
        mine = patient.locator(f"tr[data-result='{order_id}']")
        expect(mine).to_contain_text("Awaiting review by your doctor")
        expect(mine).not_to_contain_text("52")
        expect(mine.locator(".result-flag")).to_have_count(0)
        expect(mine.get_by_role("button", name="PDF report of")).to_have_count(0)
        screenshot(patient, screenshot_dir, "patient-results-awaiting-review")
        assert_accessible(patient)

        log_in(phone, app_server.url, PATIENT)
        phone.wait_for_url(f"{app_server.url}/patient")
        phone.goto(f"{app_server.url}/patient/results")
        wait_ready(phone)
        expect(phone.locator(f"tr[data-result='{order_id}']")).to_contain_text("Awaiting review by your doctor")
        screenshot(phone, screenshot_dir, "patient-results-awaiting-review-phone")
        phone.goto(f"{app_server.url}/patient/history")
        wait_ready(phone)
        expect(phone.get_by_text("awaiting review by your doctor").first).to_be_visible()

        log_in(doctor, app_server.url, DOCTOR)
        doctor.wait_for_url(f"{app_server.url}/doctor")
        wait_ready(doctor)
        to_review = doctor.locator("#desk-count-review")
        expect(to_review).not_to_have_text("0")
        doctor.get_by_role("link", name="Results to review").click()
        doctor.wait_for_url(f"{app_server.url}/doctor/results")
        wait_ready(doctor)
        row = doctor.locator(f"tr[data-result='{order_id}']")
        expect(row).to_contain_text("52")
        expect(row).to_contain_text("Held for your review")
        row.get_by_role("button", name="Mark reviewed: Troponin").click()
        doctor.get_by_label("Note to the patient (optional)").fill("x" * 1001)
        doctor.get_by_role("button", name="Mark reviewed and release").click()
        expect(doctor.get_by_text("must be at most 1000 characters").first).to_be_visible()
        assert db_value(app_server.database_url, "SELECT released_at FROM lab_result WHERE order_id=?",
                        (order_id,)) is None
        doctor.get_by_label("Note to the patient (optional)").fill(NOTE)
        screenshot(doctor, screenshot_dir, "doctor-review-dialog")
        doctor.get_by_role("button", name="Mark reviewed and release").click()
        expect(doctor.get_by_text("Reviewed: the patient can see the result now").first).to_be_visible()
        expect(row).to_contain_text("Reviewed")
        expect(row.get_by_role("button", name="Mark reviewed: Troponin")).to_have_count(0)

        # The patient's page, open all along, shows the value and the note without a reload.
        expect(mine).to_contain_text("52 ng/L")
        expect(mine).to_contain_text(NOTE)
        expect(mine.locator(".result-flag[data-flag='high']")).to_be_visible()
        with patient.expect_download() as download:
            mine.get_by_role("button", name="PDF report of").click()
        assert download.value.path().read_bytes().startswith(b"%PDF")
        screenshot(patient, screenshot_dir, "patient-results-reviewed")
        wait_for_db(app_server.database_url, "SELECT count(*) FROM audit_event WHERE action='lab_result.review' "
                    "AND entity_id=(SELECT id FROM lab_result WHERE order_id=?)", (order_id,))
        assert db_value(app_server.database_url, "SELECT released_at IS NOT NULL FROM lab_result WHERE order_id=?",
                        (order_id,)) == 1
    finally:
        for ctx in contexts:
            ctx.close()
