"""Issue 6 in a real browser: the pharmacist verifies and dispenses the prescription the
doctor's journey signed (or one like it when this file runs alone) while the patient watches
its status change live; usable stock drops by the quantity, from the first-expiring usable
lot, and the expired lot is left alone. Then the pharmacist receives a delivery and writes
off damaged units, and the ledger still sums to what is on hand."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    log_in_to,
    screenshot,
    wait_ready,
)

PATIENT = "maria.garcia@patients.example"
DOCTOR = "mateo.rossi@hms.example"
AMOXICILLIN = "SELECT id FROM medicine WHERE name='Amoxicillin' AND strength='500 mg'"


def _amoxicillin_prescription(db: str, data_dir) -> tuple[int, int]:
    """(prescription id, quantity) of the doctor journey's amoxicillin, or of a new one like it."""
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (PATIENT,)).fetchone()[0]
        medicine = conn.execute(AMOXICILLIN).fetchone()[0]
        row = conn.execute(
            "SELECT p.id, i.quantity FROM prescription p JOIN prescription_item i ON i.prescription_id = p.id "
            "WHERE p.patient_id=? AND i.medicine_id=? AND p.status='issued' ORDER BY p.id DESC",
            (patient, medicine)).fetchone()
        if row:
            return row
        doctor = conn.execute("SELECT id FROM user WHERE email=?", (DOCTOR,)).fetchone()[0]
        now = (datetime.now(UTC) - timedelta(minutes=20)).replace(tzinfo=None).isoformat(" ")
        key = (data_dir / "hms.key").read_bytes().splitlines()[0]
        empty = Fernet(key).encrypt(b"").decode()  # instructions, warnings, override: encrypted at rest
        prescription = conn.execute(
            "INSERT INTO prescription (patient_id, doctor_id, status, status_reason, created_at, updated_at) "
            "VALUES (?, ?, 'issued', '', ?, ?)", (patient, doctor, now, now)).lastrowid
        conn.execute(
            "INSERT INTO prescription_item (prescription_id, medicine_id, dose, route, frequency, days, quantity, "
            "instructions, warnings, override_reason, dispensed_quantity) "
            "VALUES (?, ?, '1 capsule', 'oral', 'three times daily', 7, 21, ?, ?, ?, 0)",
            (prescription, medicine, empty, empty, empty))
        return prescription, 21


def _reject(page) -> None:
    """Reject, and confirm it in the question that follows (issue 16, item 10)."""
    page.get_by_role("dialog").get_by_role("button", name="Reject prescription", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Reject prescription").click()


def _stock(db_url: str) -> dict[str, int]:
    return dict(db_rows(db_url, "SELECT lot, quantity_on_hand FROM stock_batch WHERE medicine_id=(" + AMOXICILLIN + ")"))


def _ledger_mismatches(db_url: str) -> list[tuple]:
    return db_rows(db_url, "SELECT b.id FROM stock_batch b LEFT JOIN (SELECT batch_id, sum(quantity) AS total "
                           "FROM stock_movement GROUP BY batch_id) m ON m.batch_id = b.id "
                           "WHERE b.quantity_on_hand != coalesce(m.total, 0)")


def test_pharmacist_verifies_and_dispenses_and_the_patient_sees_it_live(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    prescription_id, quantity = _amoxicillin_prescription(db, app_server.data_dir)
    before = _stock(app_server.database_url)
    expired_lot = next(lot for lot in before if lot.endswith("X"))
    first_usable = min((lot for lot in before if not lot.endswith("X")),
                       key=lambda lot: db_value(app_server.database_url,
                                                "SELECT expiry_date FROM stock_batch WHERE lot=?", (lot,)))
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}),
                browser.new_context(viewport={"width": 390, "height": 844})]
    try:
        pharmacist, patient = (ctx.new_page() for ctx in contexts)
        log_in_to(patient, app_server.url, PATIENT, "/patient")
        patient.goto(f"{app_server.url}/patient/prescriptions")
        wait_ready(patient)
        mine = patient.locator(f"[data-prescription='{prescription_id}'] .prescription-status")
        mine.filter(has_text="issued").wait_for()

        log_in_to(pharmacist, app_server.url, "pharmacy@hms.example", "/pharmacy")
        pharmacist.locator("#tile-expired").filter(has_text="1").wait_for()
        screenshot(pharmacist, screenshot_dir, "pharmacy-dashboard")
        assert_accessible(pharmacist)

        pharmacist.goto(f"{app_server.url}/pharmacy/queue")
        wait_ready(pharmacist)
        row = pharmacist.locator(f"tr[data-prescription='{prescription_id}']")
        row.get_by_role("button", name="Verify").click()
        pharmacist.get_by_text("Prescription verified").first.wait_for()
        mine.filter(has_text="verified").wait_for(timeout=5_000)  # live, no reload

        row.get_by_role("button", name="Dispense").click()
        amount = pharmacist.locator("input[name^='qty-']")
        amount.wait_for()
        assert amount.input_value() == str(quantity)
        # Part now, the rest later: the status says so, and no unit comes from the expired lot.
        amount.fill("5")
        screenshot(pharmacist, screenshot_dir, "pharmacy-dispense")
        assert_accessible(pharmacist)
        pharmacist.get_by_role("button", name="Dispense", exact=True).click()
        pharmacist.get_by_text("now partly dispensed").first.wait_for()
        mine.filter(has_text="partly dispensed").wait_for(timeout=5_000)
        assert amount.input_value() == str(quantity - 5)
        pharmacist.get_by_role("button", name="Dispense", exact=True).click()
        pharmacist.get_by_text("now dispensed").first.wait_for()
        mine.filter(has_text="dispensed").wait_for(timeout=5_000)
        assert "partly" not in mine.inner_text()
        screenshot(patient, screenshot_dir, "patient-prescriptions")
        assert_accessible(patient)

        after = _stock(app_server.database_url)
        assert after[first_usable] == before[first_usable] - quantity
        assert after[expired_lot] == before[expired_lot]
        assert sum(after.values()) == sum(before.values()) - quantity
        assert db_rows(app_server.database_url, "SELECT count(*), sum(quantity) FROM dispensation "
                                                "WHERE prescription_id=?", (prescription_id,)) == [(2, quantity)]

        # Stock: the on-hand figure shows the drop; receive a delivery, write off damaged units.
        pharmacist.goto(f"{app_server.url}/pharmacy/stock")
        wait_ready(pharmacist)
        pharmacist.fill("#search-search-medicines", "amoxicillin")
        medicine_id = db_value(app_server.database_url, AMOXICILLIN)
        pharmacist.locator("tr[data-medicine]").filter(has_text="Allopurinol").wait_for(state="detached")
        medicine = pharmacist.locator(f"tr[data-medicine='{medicine_id}']")
        medicine.locator(".on-hand").filter(
            has_text=str(sum(v for lot, v in after.items() if lot != expired_lot))).wait_for()
        medicine.get_by_role("button", name="Receive").click()
        pharmacist.fill("#receive-supplier", "Northbridge Pharma Wholesale")
        pharmacist.fill("#receive-lot", "amx-e2e-1")
        pharmacist.fill("#receive-expiry", (datetime.now(UTC) + timedelta(days=400)).date().isoformat())
        pharmacist.fill("#receive-quantity", "100")
        pharmacist.fill("#receive-cost", "0.03")
        pharmacist.get_by_role("button", name="Receive", exact=True).click()
        pharmacist.get_by_text("Received 100 units of lot AMX-E2E-1").first.wait_for()
        medicine.get_by_role("button", name="Batches").click()
        pharmacist.locator("tr[data-lot='AMX-E2E-1'] .batch-on-hand").filter(has_text="100").wait_for()
        pharmacist.select_option("#adjust-batch", label="AMX-E2E-1 (100 on hand)")
        pharmacist.select_option("#adjust-reason", value="damaged")
        pharmacist.fill("#adjust-change", "4")
        pharmacist.get_by_role("button", name="Record adjustment").click()
        pharmacist.get_by_text("can only be taken out").first.wait_for()  # refused, nothing changed
        assert _stock(app_server.database_url)["AMX-E2E-1"] == 100
        pharmacist.select_option("#adjust-batch", label="AMX-E2E-1 (100 on hand)")
        pharmacist.select_option("#adjust-reason", value="damaged")
        pharmacist.fill("#adjust-change", "-4")
        pharmacist.fill("#adjust-note", "carton crushed in delivery")
        pharmacist.get_by_role("button", name="Record adjustment").click()
        pharmacist.locator("tr[data-lot='AMX-E2E-1'] .batch-on-hand").filter(has_text="96").wait_for()
        screenshot(pharmacist, screenshot_dir, "pharmacy-batches")
        assert_accessible(pharmacist)
        pharmacist.keyboard.press("Escape")
        assert _ledger_mismatches(app_server.database_url) == []

        pharmacist.goto(f"{app_server.url}/pharmacy/ledger")
        wait_ready(pharmacist)
        pharmacist.locator("tr").filter(has_text="carton crushed").wait_for()
        screenshot(pharmacist, screenshot_dir, "pharmacy-ledger")
        assert_accessible(pharmacist)
    finally:
        for ctx in contexts:
            ctx.close()


def test_rejected_prescription_reaches_the_doctor(app_server, browser):
    db = app_server.database_url.removeprefix("sqlite:///")
    prescription_id, _ = _amoxicillin_prescription(db, app_server.data_dir)  # a fresh one: the first is dispensed
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in_to(page, app_server.url, "pharmacy@hms.example", "/pharmacy")
        page.goto(f"{app_server.url}/pharmacy/queue")
        wait_ready(page)
        page.locator(f"tr[data-prescription='{prescription_id}']").get_by_role("button", name="Reject").click()
        _reject(page)  # no reason: the browser asks for one
        assert db_value(app_server.database_url, "SELECT status FROM prescription WHERE id=?",
                        (prescription_id,)) == "issued"
        page.fill("#reject-reason", "x")
        _reject(page)
        page.get_by_text("Say why the prescription is rejected").first.wait_for()
        page.fill("#reject-reason", "Duplicate of a course dispensed this week")
        _reject(page)
        page.get_by_text("Prescription rejected").first.wait_for()
        assert db_value(app_server.database_url, "SELECT status FROM prescription WHERE id=?",
                        (prescription_id,)) == "rejected"
        doctor = db_value(app_server.database_url, "SELECT doctor_id FROM prescription WHERE id=?", (prescription_id,))
        assert db_value(app_server.database_url, "SELECT count(*) FROM notification WHERE user_id=? AND body LIKE ?",
                        (doctor, "%Duplicate of a course%")) == 1
    finally:
        context.close()
