"""Issue 5 in a real browser: the lab takes the order made by the doctor's journey (or one
like it), enters a high value and uploads a PDF; the ordering doctor's results page shows
the flag and the patient downloads the report."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.helpers import assert_accessible, db_value, log_in, screenshot, wait_ready

PATIENT = "maria.garcia@patients.example"
DOCTOR = "mateo.rossi@hms.example"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _open_crp_order(db: str, data_dir) -> int:
    """The CRP order of the doctor's journey, or a new one like it when run alone."""
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (PATIENT,)).fetchone()[0]
        doctor = conn.execute("SELECT id FROM user WHERE email=?", (DOCTOR,)).fetchone()[0]
        test = conn.execute("SELECT id FROM lab_test WHERE code='CRP'").fetchone()[0]
        row = conn.execute("SELECT id FROM lab_order WHERE patient_id=? AND test_id=? AND status='requested'",
                           (patient, test)).fetchone()
        if row:
            return row[0]
        now = (datetime.now(UTC) - timedelta(minutes=30)).replace(tzinfo=None).isoformat(" ")
        key = (data_dir / "hms.key").read_bytes().splitlines()[0]
        note = Fernet(key).encrypt(b"").decode()  # the note column is encrypted at rest
        cursor = conn.execute(
            "INSERT INTO lab_order (patient_id, doctor_id, test_id, priority, status, note, ordered_at, updated_at) "
            "VALUES (?, ?, ?, 'urgent', 'requested', ?, ?, ?)", (patient, doctor, test, note, now, now))
        return cursor.lastrowid


def test_lab_result_flag_and_report_download(app_server, browser, screenshot_dir, tmp_path):
    db = app_server.database_url.removeprefix("sqlite:///")
    order_id = _open_crp_order(db, app_server.data_dir)
    report = tmp_path / "crp-report.pdf"
    report.write_bytes(PDF)
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True) for _ in range(3)]
    try:
        lab, doctor, patient = (ctx.new_page() for ctx in contexts)
        log_in(lab, app_server.url, "lab@hms.example")
        lab.wait_for_url(f"{app_server.url}/lab")
        lab.goto(f"{app_server.url}/lab/worklist")
        wait_ready(lab)
        row = lab.locator(f"tr[data-order='{order_id}']")
        row.get_by_role("button", name="Collect").click()
        row.get_by_role("button", name="Start").click()
        row.get_by_role("button", name="Enter result").click()
        # Before a value is typed: the unit, this patient's range and the critical limits.
        expect(lab.locator("#lab-guide-unit")).to_have_text("mg/L")
        expect(lab.locator("#lab-guide-range")).to_have_text("up to 5 mg/L")
        expect(lab.locator("#lab-guide-critical")).to_have_text("none")
        expect(lab.locator("#lab-value")).to_have_value("")
        screenshot(lab, screenshot_dir, "lab-result-entry-guide")
        lab.fill("#lab-value", "85")
        lab.fill("#lab-comment", "Repeat in a week")
        lab.get_by_role("button", name="Save result").click()
        lab.get_by_text("Flag: High").wait_for()
        lab.locator("input[type=file]").set_input_files(str(report))
        lab.get_by_role("button", name="Upload").click()
        lab.get_by_text("Report file attached").first.wait_for()
        screenshot(lab, screenshot_dir, "lab-result-entry")
        assert_accessible(lab)
        with sqlite3.connect(db) as conn:
            flag, value = conn.execute("SELECT flag, value_numeric FROM lab_result WHERE order_id=?", (order_id,)).fetchone()
            assert (flag, value) == ("high", 85.0)
            assert conn.execute("SELECT count(*) FROM lab_report_file WHERE order_id=?", (order_id,)).fetchone()[0] == 1

        log_in(doctor, app_server.url, DOCTOR)
        doctor.wait_for_url(f"{app_server.url}/doctor")
        doctor.goto(f"{app_server.url}/doctor/results")
        wait_ready(doctor)
        result = doctor.locator(f"tr[data-result='{order_id}']")
        result.locator(".result-flag[data-flag='high']").wait_for()
        screenshot(doctor, screenshot_dir, "doctor-results")
        assert_accessible(doctor)
        # High, so held until the ordering doctor marks it reviewed.
        result.get_by_role("button", name="Mark reviewed: C-reactive protein").click()
        doctor.get_by_role("button", name="Mark reviewed and release").click()
        expect(result).to_contain_text("Reviewed")

        log_in(patient, app_server.url, PATIENT)
        patient.wait_for_url(f"{app_server.url}/patient")
        patient.goto(f"{app_server.url}/patient/results")
        wait_ready(patient)
        mine = patient.locator(f"tr[data-result='{order_id}']")
        with patient.expect_download() as download:
            mine.get_by_role("button", name="PDF report of").click()
        assert download.value.path().read_bytes().startswith(b"%PDF")
        with patient.expect_download() as download:
            mine.get_by_role("button", name="Lab file for").click()
        assert download.value.path().read_bytes() == PDF
        screenshot(patient, screenshot_dir, "patient-results")
        assert_accessible(patient)
        with sqlite3.connect(db) as conn:
            downloads = conn.execute("SELECT count(*) FROM audit_event WHERE action LIKE 'lab_result.download%' "
                                     "OR (action LIKE '%download%' AND entity_id=?)", (str(order_id),)).fetchone()[0]
        assert downloads >= 2
    finally:
        for ctx in contexts:
            ctx.close()


def test_cancelling_an_order_asks_to_confirm_what_is_cancelled(app_server, browser, screenshot_dir, tmp_path):
    db = app_server.database_url.removeprefix("sqlite:///")
    order_id = _open_crp_order(db, app_server.data_dir)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        lab = context.new_page()
        log_in(lab, app_server.url, "lab@hms.example")
        lab.wait_for_url(f"{app_server.url}/lab")
        lab.goto(f"{app_server.url}/lab/worklist")
        wait_ready(lab)
        lab.locator(f"tr[data-order='{order_id}']").get_by_role("button", name="Details").click()
        lab.get_by_role("button", name="Cancel this order…").click()
        lab.get_by_label("Reason for cancelling").fill("Sample haemolysed")
        lab.get_by_role("button", name="Continue…").click()
        confirmation = lab.locator("#lab-cancel-confirmation")
        expect(confirmation).to_contain_text("Cancel C-reactive protein (CRP) for Maria Garcia")
        expect(confirmation).to_contain_text("Reason: Sample haemolysed")
        screenshot(lab, screenshot_dir, "lab-cancel-confirmation")
        assert_accessible(lab)
        # Nothing is cancelled until the explicit yes; "Keep the order" backs out.
        assert db_value(app_server.database_url, "SELECT status FROM lab_order WHERE id=?", (order_id,)) == "requested"
        lab.get_by_role("button", name="Keep the order").click()
        expect(confirmation).to_have_count(0)
        assert db_value(app_server.database_url, "SELECT status FROM lab_order WHERE id=?", (order_id,)) == "requested"
        lab.get_by_role("button", name="Cancel this order…").click()
        lab.get_by_label("Reason for cancelling").fill("Sample haemolysed")
        lab.get_by_role("button", name="Continue…").click()
        lab.get_by_role("button", name="Yes, cancel this order").click()
        expect(lab.get_by_text("Order cancelled").first).to_be_visible()
        assert db_value(app_server.database_url, "SELECT status FROM lab_order WHERE id=?", (order_id,)) == "cancelled"

        # The worklist lists cancelled orders over dates when asked; open ones by default.
        expect(lab.locator(f"tr[data-order='{order_id}']")).to_have_count(0)
        lab.get_by_label("Show").select_option("cancelled")
        lab.get_by_role("button", name="Apply filters").click()
        expect(lab.locator(f"tr[data-order='{order_id}']")).to_contain_text("cancelled")
        screenshot(lab, screenshot_dir, "lab-worklist-cancelled")
        lab.get_by_label("To", exact=True).fill("2020-01-01")
        lab.get_by_label("From (completed or cancelled)").fill("2019-12-01")
        lab.get_by_role("button", name="Apply filters").click()
        expect(lab.get_by_text("No orders match in these dates")).to_be_visible()
    finally:
        context.close()
