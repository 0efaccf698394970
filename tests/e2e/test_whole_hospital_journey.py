"""The whole hospital in one journey, in real browsers: a patient books, the doctor confirms,
writes the visit up, prescribes and orders a test; the lab enters the result and uploads a
report; the pharmacy dispenses; accounts issue the invoice; the patient sees the report and
an invoice with all three charges, downloads its PDF and pays; the accountant's open revenue
dashboard and invoice list show the payment without a reload."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    log_in_to,
    screenshot,
    user_id,
    wait_ready,
)

PATIENT = "elena.petrova@patients.example"  # no other journey uses her
DOCTOR = "olivia.chen@hms.example"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _weekday_ahead(days: int) -> date:
    day = date.today() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _let_time_pass(db: str, appointment_id: int) -> None:
    """Move the confirmed appointment to ten minutes ago: booking refuses the past, and a
    visit can only be completed once it has started."""
    start = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=10)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE appointment SET starts_at=?, ends_at=? WHERE id=?",
                     (start.isoformat(" "), (start + timedelta(minutes=20)).isoformat(" "), appointment_id))


def test_book_treat_test_dispense_bill_and_pay(app_server, browser, screenshot_dir, tmp_path):
    url, db_url = app_server.url, app_server.database_url
    db = db_url.removeprefix("sqlite:///")
    report = tmp_path / "crp.pdf"
    report.write_bytes(PDF)
    wide = {"viewport": {"width": 1280, "height": 900}, "accept_downloads": True}
    contexts = [browser.new_context(**wide) for _ in range(5)] + [
        browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)]
    try:
        doctor, lab, pharmacy, accounts, ledger, patient = (ctx.new_page() for ctx in contexts)

        # The patient books a General Medicine visit with Dr Chen.
        log_in_to(patient, url, PATIENT, "/patient")
        patient.goto(f"{url}/patient/book")
        wait_ready(patient)
        patient.select_option("#book-department", label="General Medicine")
        patient.select_option("#book-doctor", label="Dr. Olivia Chen")
        patient.fill("#book-date", _weekday_ahead(9).isoformat())
        patient.get_by_role("group", name="Free times").get_by_role("button").first.click()
        patient.fill("#book-reason", "Fever and a sore throat")
        patient.get_by_role("button", name="Request appointment").click()
        patient.wait_for_url(f"{url}/patient/appointments")
        appointment_id = int(patient.locator("tr[data-appointment]").first.get_attribute("data-appointment"))

        # The doctor confirms; the visit takes place.
        log_in_to(doctor, url, DOCTOR, "/doctor")
        doctor.goto(f"{url}/doctor/appointments")
        wait_ready(doctor)
        doctor.locator(f"tr[data-appointment='{appointment_id}']").first.get_by_role("button", name="Confirm").click()
        patient.locator(f"tr[data-appointment='{appointment_id}']").get_by_text("Confirmed").wait_for(timeout=5_000)
        _let_time_pass(db, appointment_id)
        doctor.goto(f"{url}/doctor/encounter?appointment={appointment_id}")
        wait_ready(doctor)
        doctor.get_by_text("Elena Petrova").first.wait_for()
        doctor.fill("#enc-subjective", "Fever for two days, sore throat.")
        doctor.fill("#enc-assessment", "Viral pharyngitis likely; check inflammation markers.")
        doctor.fill("#enc-diagnosis", "Acute pharyngitis")
        doctor.get_by_role("button", name="Save notes and vitals").click()
        doctor.get_by_text("Notes and vitals saved").first.wait_for()
        doctor.select_option("#rx-medicine", label="Paracetamol 500 mg (tablet)")
        doctor.fill("#rx-dose", "2 tablets")
        doctor.select_option("#rx-frequency", value="four times daily")
        doctor.fill("#rx-days", "3")
        doctor.get_by_role("button", name="Sign prescription").click()
        doctor.get_by_text("Prescription signed").first.wait_for()
        doctor.get_by_text("C-reactive protein").first.click()
        doctor.get_by_role("button", name="Order tests").click()
        doctor.get_by_text("test(s) ordered").first.wait_for()
        doctor.get_by_role("button", name="Complete encounter").click()
        doctor.wait_for_url(f"{url}/doctor/appointments")

        patient_id = user_id(db_url, PATIENT)
        order_id = db_value(db_url, "SELECT id FROM lab_order WHERE patient_id=? ORDER BY id DESC", (patient_id,))
        prescription_id = db_value(db_url, "SELECT id FROM prescription WHERE patient_id=? ORDER BY id DESC",
                                   (patient_id,))

        # The lab works the order.
        log_in_to(lab, url, "lab@hms.example", "/lab")
        lab.goto(f"{url}/lab/worklist")
        wait_ready(lab)
        row = lab.locator(f"tr[data-order='{order_id}']")
        row.get_by_role("button", name="Collect").click()
        row.get_by_role("button", name="Start").click()
        row.get_by_role("button", name="Enter result").click()
        lab.fill("#lab-value", "3")
        lab.get_by_role("button", name="Save result").click()
        lab.get_by_text("Flag: Normal").wait_for()
        lab.locator("input[type=file]").set_input_files(str(report))
        lab.get_by_role("button", name="Upload").click()
        lab.get_by_text("Report file attached").first.wait_for()

        # The pharmacy verifies and dispenses all of it.
        log_in_to(pharmacy, url, "pharmacy@hms.example", "/pharmacy")
        pharmacy.goto(f"{url}/pharmacy/queue")
        wait_ready(pharmacy)
        rx_row = pharmacy.locator(f"tr[data-prescription='{prescription_id}']")
        rx_row.get_by_role("button", name="Verify").click()
        pharmacy.get_by_text("Prescription verified").first.wait_for()
        rx_row.get_by_role("button", name="Dispense").click()
        pharmacy.get_by_role("button", name="Dispense", exact=True).click()
        pharmacy.get_by_text("now dispensed").first.wait_for()

        # Accounts issue the draft that gathered the three charges.
        invoice_id = db_value(db_url, "SELECT id FROM invoice WHERE patient_id=? AND status='draft'", (patient_id,))
        assert db_rows(db_url, "SELECT kind FROM invoice_line WHERE invoice_id=? ORDER BY kind", (invoice_id,)) == [
            ("consultation",), ("lab",), ("medicine",)]
        log_in_to(accounts, url, "accounts@hms.example", "/accounts")
        collected = accounts.locator("#collected-total")
        collected.wait_for()
        collected_before = collected.inner_text()
        log_in_to(ledger, url, "accounts@hms.example", "/accounts")
        ledger.goto(f"{url}/accounts/invoices")
        wait_ready(ledger)
        ledger.select_option("#invoice-show", value="draft")
        invoice_row = ledger.locator(f"tr[data-invoice='{invoice_id}']")
        invoice_row.get_by_role("button", name="Open").click()
        ledger.get_by_role("button", name="Issue invoice").click()
        ledger.get_by_text("issued; the patient is told").first.wait_for()
        number = db_value(db_url, "SELECT number FROM invoice WHERE id=?", (invoice_id,))
        assert number.startswith(f"INV-{date.today().year}-")
        screenshot(ledger, screenshot_dir, "accounts-invoice")
        assert_accessible(ledger)
        ledger.keyboard.press("Escape")
        ledger.select_option("#invoice-show", value="open")
        invoice_row.locator(".invoice-status").filter(has_text="issued").wait_for()
        total = db_value(db_url, "SELECT total_cents FROM invoice WHERE id=?", (invoice_id,))
        lines = db_value(db_url, "SELECT sum(amount_cents) FROM invoice_line WHERE invoice_id=?", (invoice_id,))
        assert total == lines > 0

        # The patient reads the report, then the invoice; downloads both PDFs; pays by card.
        patient.goto(f"{url}/patient/results")
        wait_ready(patient)
        result = patient.locator(f"tr[data-result='{order_id}']")
        with patient.expect_download() as download:
            result.get_by_role("button", name="Lab file for").click()
        assert download.value.path().read_bytes() == PDF
        patient.goto(f"{url}/patient/invoices")
        wait_ready(patient)
        card = patient.locator(f"[data-invoice='{invoice_id}']")
        card.get_by_role("button", name="Details").click()
        for text in ("Consultation with Dr. Olivia Chen", "Lab test: C-reactive protein", "Paracetamol 500 mg"):
            patient.get_by_role("dialog").get_by_text(text).first.wait_for()
        patient.keyboard.press("Escape")
        with patient.expect_download() as download:
            card.get_by_role("button", name="Download PDF").click()
        assert download.value.path().read_bytes().startswith(b"%PDF")
        card.get_by_role("button", name="Pay").click()
        patient.fill("#card-number", "4000 0000 0000 0002")
        patient.fill("#card-expiry", "12/30")
        patient.fill("#card-cvc", "123")
        patient.get_by_role("button", name="Pay now").click()
        patient.get_by_text("The card was declined").first.wait_for()
        assert db_value(db_url, "SELECT count(*) FROM payment WHERE invoice_id=?", (invoice_id,)) == 0
        patient.fill("#card-number", "4242 4242 4242 4242")
        screenshot(patient, screenshot_dir, "patient-pay")
        assert_accessible(patient)
        patient.get_by_role("button", name="Pay now").dblclick()  # a double click charges once
        patient.get_by_text("Thank you").first.wait_for()
        card.locator(".invoice-status").filter(has_text="paid").wait_for()
        screenshot(patient, screenshot_dir, "patient-invoices")
        assert_accessible(patient)
        assert db_rows(db_url, "SELECT count(*), sum(amount_cents) FROM payment WHERE invoice_id=?",
                       (invoice_id,)) == [(1, total)]
        assert db_value(db_url, "SELECT status FROM invoice WHERE id=?", (invoice_id,)) == "paid"

        # Accounts' open pages show it without a reload.
        ledger.select_option("#invoice-show", value="")
        invoice_row.locator(".invoice-status").filter(has_text="paid").wait_for(timeout=5_000)
        accounts.wait_for_function("([el, before]) => el.innerText !== before",
                                   arg=[collected.element_handle(), collected_before], timeout=5_000)
        screenshot(accounts, screenshot_dir, "accounts-dashboard")
    finally:
        for ctx in contexts:
            ctx.close()
