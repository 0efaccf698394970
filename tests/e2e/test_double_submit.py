"""Issue 16, item 9 in a real browser: a double click on a submit button shows one success and no
error, and writes once. Booking ("That slot was just taken"), dispensing ("That prescription does
not exist") and accounts' cash payment ("more than the balance") each showed a false error next
to their success before the forms carried a request key."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.e2e.helpers import db_rows, db_value, log_in_to, screenshot, user_id, wait_ready

SETTLE_MS = 2_000
"""How long the page is watched after the first answer for a second one (both clicks' answers
arrive within a few hundred milliseconds of each other)."""


def _watch_toasts(page) -> None:
    """Keep every toast the page shows from now on, also once it has faded away."""
    page.evaluate("""() => {
        window.__toasts = [];
        new MutationObserver(records => records.forEach(r => r.addedNodes.forEach(node => {
            if (node.nodeType === 1) {
                [node, ...node.querySelectorAll('[data-sonner-toast]')]
                    .filter(n => n.hasAttribute('data-sonner-toast')).forEach(n => window.__toasts.push(n));
            }
        }))).observe(document.body, {childList: true, subtree: true});
    }""")


def _toasts(page) -> list[tuple[str, str]]:
    return [tuple(t) for t in page.evaluate(
        "() => window.__toasts.map(t => [t.getAttribute('data-type'), t.innerText.trim()])")]


def _one_success_no_error(page, text: str) -> None:
    """Exactly one success toast, saying ``text``, and no error, however long the page is watched."""
    page.wait_for_function("() => window.__toasts.some(t => t.getAttribute('data-type') === 'success')")
    page.wait_for_timeout(SETTLE_MS)
    toasts = _toasts(page)
    assert [kind for kind, _ in toasts] == ["success"], toasts
    assert text in toasts[0][1], toasts


def _double_click(button) -> None:
    """Two clicks in one go, as a quick double click lands: the second before the page has heard
    anything back from the first (Playwright's own ``dblclick`` waits between its clicks long
    enough for the button to be disabled, so the second never reaches the server)."""
    _watch_toasts(button.page)
    button.evaluate("b => { b.click(); b.click(); }")


def _weekday_ahead(days: int) -> date:
    day = date.today() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_a_double_click_books_one_appointment(app_server, browser, screenshot_dir):
    email, url, db = "sofia.rossi@patients.example", app_server.url, app_server.database_url
    day = _weekday_ahead(12)
    patient_id = user_id(db, email)
    count = "SELECT count(*) FROM appointment WHERE patient_id = ?"
    before = db_value(db, count, (patient_id,))
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, email, "/patient")
        page.goto(f"{url}/patient/book")
        wait_ready(page)
        # The day first (after the page's own loader has set today), then the department: the
        # free times appear once, for both, so the first one is never a stale time of today's.
        page.fill("#book-date", day.isoformat())
        expect(page.locator("#book-date")).to_have_value(day.isoformat())
        page.select_option("#book-department", label="Orthopedics")
        slot = page.get_by_role("group", name="Free times").get_by_role("button").first
        slot.click()
        page.fill("#book-reason", "Knee pain after running")
        expect(page.get_by_role("button", name="Request appointment")).to_be_enabled()

        _double_click(page.get_by_role("button", name="Request appointment"))

        page.wait_for_url(f"{url}/patient/appointments")
        _one_success_no_error(page, "Appointment requested")
        assert db_value(db, count, (patient_id,)) == before + 1
        screenshot(page, screenshot_dir, "double-click-booking")
    finally:
        ctx.close()


def verified_prescription(app_server, patient_email: str, units: int) -> tuple[int, int]:
    """(prescription id, medicine id): a verified prescription of a stocked medicine, not amoxicillin."""
    db = app_server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (patient_email,)).fetchone()[0]
        doctor = conn.execute("SELECT id FROM user WHERE email='olivia.chen@hms.example'").fetchone()[0]
        medicine = conn.execute(
            "SELECT m.id FROM medicine m JOIN stock_batch b ON b.medicine_id = m.id WHERE m.name != 'Amoxicillin' "
            "AND b.expiry_date > date('now', '+30 days') GROUP BY m.id HAVING sum(b.quantity_on_hand) >= 100 "
            "ORDER BY m.id LIMIT 1").fetchone()[0]
        now = (datetime.now(UTC) - timedelta(minutes=30)).replace(tzinfo=None).isoformat(" ")
        key = (app_server.data_dir / "hms.key").read_bytes().splitlines()[0]
        empty = Fernet(key).encrypt(b"").decode()  # instructions, warnings, override: encrypted at rest
        prescription = conn.execute(
            "INSERT INTO prescription (patient_id, doctor_id, status, status_reason, created_at, updated_at) "
            "VALUES (?, ?, 'verified', '', ?, ?)", (patient, doctor, now, now)).lastrowid
        conn.execute(
            "INSERT INTO prescription_item (prescription_id, medicine_id, dose, route, frequency, days, quantity, "
            "instructions, warnings, override_reason, dispensed_quantity) "
            "VALUES (?, ?, '1 tablet', 'oral', 'once daily', ?, ?, ?, ?, ?, 0)",
            (prescription, medicine, units, units, empty, empty, empty))
        return prescription, medicine


def test_a_double_click_dispenses_once(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    prescription, medicine = verified_prescription(app_server, "ana.silva@patients.example", 4)
    on_hand = "SELECT sum(quantity_on_hand) FROM stock_batch WHERE medicine_id = ?"
    stock = db_value(db, on_hand, (medicine,))
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, "pharmacy@hms.example", "/pharmacy")
        page.goto(f"{url}/pharmacy/queue")
        wait_ready(page)
        page.get_by_label("Search prescriptions").fill("Ana Silva")
        page.locator(f"[data-prescription='{prescription}']").get_by_role("button", name="Dispense").click()
        dialog = page.get_by_role("dialog", name="Dispense prescription")
        expect(dialog).to_be_visible()

        _double_click(dialog.get_by_role("button", name="Dispense", exact=True))

        _one_success_no_error(page, "The prescription is now dispensed")
        assert db_rows(db, "SELECT sum(quantity) FROM dispensation WHERE prescription_id = ?",
                       (prescription,)) == [(4,)]
        assert db_value(db, on_hand, (medicine,)) == stock - 4
        assert db_value(db, "SELECT status FROM prescription WHERE id = ?", (prescription,)) == "dispensed"
        screenshot(page, screenshot_dir, "double-click-dispense")
    finally:
        ctx.close()


def test_a_double_click_records_one_cash_payment(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    invoice_id, number, balance = db_rows(
        db, "SELECT id, number, total_cents - paid_cents FROM invoice WHERE status = 'issued' AND paid_cents = 0 "
            "AND insurer = '' AND number LIKE 'INV-%' ORDER BY id LIMIT 1")[0]
    payments = "SELECT count(*), coalesce(sum(amount_cents), 0) FROM payment WHERE invoice_id = ?"
    assert db_rows(db, payments, (invoice_id,)) == [(0, 0)]
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, "accounts@hms.example", "/accounts")
        page.goto(f"{url}/accounts/invoices")
        wait_ready(page)
        page.get_by_label("Search invoices").fill(number)
        page.locator(f"[data-invoice='{invoice_id}']").get_by_role("button", name="Open").click()
        dialog = page.get_by_role("dialog", name=f"Invoice {number}")
        expect(dialog.locator("#pay-amount")).not_to_have_value("")  # the balance, as the form offers it
        dialog.locator("#pay-method").select_option("cash")

        _double_click(dialog.get_by_role("button", name="Record payment"))

        _one_success_no_error(page, "Payment recorded; the invoice is paid")
        assert db_rows(db, payments, (invoice_id,)) == [(1, balance)]
        assert db_value(db, "SELECT status FROM invoice WHERE id = ?", (invoice_id,)) == "paid"
        screenshot(page, screenshot_dir, "double-click-payment")
    finally:
        ctx.close()
