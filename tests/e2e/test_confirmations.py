"""Issue 16, item 10 in a real browser: destructive actions ask first, in one shared dialog that
names what will happen, with Cancel focused; Escape or Cancel changes nothing, confirming does it.
Voiding an invoice, deactivating a user, rejecting a prescription, a patient cancelling a visit."""

from __future__ import annotations

from datetime import date, timedelta

from playwright.sync_api import expect

from tests.e2e.helpers import db_value, log_in_to, screenshot, user_id, wait_ready
from tests.e2e.test_double_submit import verified_prescription

CANNOT = "This cannot be undone."


def _ask(page, trigger, question: str):
    """Click what asks; the confirmation must name the action and have Cancel focused."""
    trigger.click()
    alert = page.get_by_role("alertdialog", name=question)
    expect(alert).to_be_visible()
    expect(alert.get_by_role("button", name="Cancel").or_(alert.get_by_role("button", name="Keep it"))).to_be_focused()
    return alert


def _declined_twice(page, trigger, question: str, unchanged) -> None:
    """Escape, then Cancel: the question closes each time and nothing changes."""
    alert = _ask(page, trigger, question)
    page.keyboard.press("Escape")
    expect(alert).to_be_hidden()
    alert = _ask(page, trigger, question)
    page.keyboard.press("Enter")  # Cancel has the focus: Enter keeps things as they are too
    expect(alert).to_be_hidden()
    page.wait_for_timeout(500)
    unchanged()


def test_voiding_an_invoice_asks_first(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    invoice_id = db_value(db, "SELECT id FROM invoice WHERE status = 'issued' AND paid_cents = 0 "
                              "AND number LIKE 'INV-%' ORDER BY id DESC LIMIT 1")
    number = db_value(db, "SELECT number FROM invoice WHERE id = ?", (invoice_id,))
    status = "SELECT status FROM invoice WHERE id = ?"
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, "accounts@hms.example", "/accounts")
        page.goto(f"{url}/accounts/invoices")
        wait_ready(page)
        page.get_by_label("Search invoices").fill(number)
        page.locator(f"[data-invoice='{invoice_id}']").get_by_role("button", name="Open").click()
        dialog = page.get_by_role("dialog", name=f"Invoice {number}")
        dialog.locator("#void-reason").fill("Billed to the wrong patient")
        trigger = dialog.get_by_role("button", name="Void invoice")
        question = f"Void invoice {number}?"

        def unchanged():
            assert db_value(db, status, (invoice_id,)) == "issued"
            expect(page.locator("[data-sonner-toast][data-type='success']")).to_have_count(0)

        _declined_twice(page, trigger, question, unchanged)
        alert = _ask(page, trigger, question)
        expect(alert).to_contain_text(CANNOT)
        screenshot(page, screenshot_dir, "confirm-void-invoice")
        alert.get_by_role("button", name="Void invoice").click()

        page.locator("[data-sonner-toast][data-type='success']").filter(has_text="Invoice voided.").wait_for()
        assert db_value(db, status, (invoice_id,)) == "void"
        assert db_value(db, "SELECT void_reason FROM invoice WHERE id = ?", (invoice_id,)) == (
            "Billed to the wrong patient")
    finally:
        ctx.close()


def test_deactivating_a_user_asks_first(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    email, name = "john.obrien@patients.example", "John O'Brien"
    active = "SELECT is_active FROM user WHERE id = ?"
    who = user_id(db, email)
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, "admin@hms.example", "/admin")
        page.goto(f"{url}/admin/users")
        wait_ready(page)
        page.get_by_label("Search users").fill("obrien")
        # The search answers after a pause; a question opened on the row before would go with the row.
        expect(page.get_by_role("table", name="User accounts").locator("tbody tr")).to_have_count(1)
        trigger = page.get_by_role("button", name=f"Deactivate {name}")

        def unchanged():
            assert db_value(db, active, (who,)) == 1

        _declined_twice(page, trigger, f"Deactivate {name}?", unchanged)
        alert = _ask(page, trigger, f"Deactivate {name}?")
        expect(alert).to_contain_text("They can no longer log in")
        screenshot(page, screenshot_dir, "confirm-deactivate-user")
        alert.get_by_role("button", name="Deactivate").click()

        page.locator("[data-sonner-toast][data-type='success']").filter(has_text="Account deactivated").wait_for()
        assert db_value(db, active, (who,)) == 0
        expect(page.get_by_role("button", name=f"Reactivate {name}")).to_be_visible()
    finally:
        ctx.close()


def test_rejecting_a_prescription_asks_first(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    prescription, _ = verified_prescription(app_server, "wei.zhang@patients.example", 3)
    status = "SELECT status FROM prescription WHERE id = ?"
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        log_in_to(page, url, "pharmacy@hms.example", "/pharmacy")
        page.goto(f"{url}/pharmacy/queue")
        wait_ready(page)
        page.get_by_label("Search prescriptions").fill("Wei Zhang")
        page.locator(f"[data-prescription='{prescription}']").get_by_role("button", name="Reject").click()
        dialog = page.get_by_role("dialog", name="Reject prescription")
        dialog.locator("#reject-reason").fill("Dose exceeds the maximum daily dose")
        trigger = dialog.get_by_role("button", name="Reject prescription")
        question = "Reject the prescription for Wei Zhang?"

        def unchanged():
            assert db_value(db, status, (prescription,)) == "verified"

        _declined_twice(page, trigger, question, unchanged)
        expect(dialog.locator("#reject-reason")).to_have_value("Dose exceeds the maximum daily dose")
        alert = _ask(page, trigger, question)
        screenshot(page, screenshot_dir, "confirm-reject-prescription")
        alert.get_by_role("button", name="Reject prescription").click()

        page.locator("[data-sonner-toast][data-type='success']").filter(has_text="Prescription rejected").wait_for()
        assert db_value(db, status, (prescription,)) == "rejected"
    finally:
        ctx.close()


def test_a_patient_cancelling_a_visit_is_asked_first(app_server, browser, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    email = "ana.silva@patients.example"
    day = date.today() + timedelta(days=15)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = ctx.new_page()
        log_in_to(page, url, email, "/patient")
        page.goto(f"{url}/patient/book")
        wait_ready(page)
        # The day first (after the page's own loader has set today), then the department: the
        # free times appear once, for both, so the first one is never a stale time of today's.
        page.fill("#book-date", day.isoformat())
        expect(page.locator("#book-date")).to_have_value(day.isoformat())
        page.select_option("#book-department", label="General Medicine")
        page.get_by_role("group", name="Free times").get_by_role("button").first.click()
        page.fill("#book-reason", "Annual check-up")
        page.get_by_role("button", name="Request appointment").click()
        page.wait_for_url(f"{url}/patient/appointments")
        appointment = db_value(db, "SELECT max(id) FROM appointment WHERE patient_id = ?", (user_id(db, email),))
        row = page.locator(f"tr[data-appointment='{appointment}']")
        trigger = row.get_by_role("button", name="Cancel the appointment")
        status = "SELECT status FROM appointment WHERE id = ?"
        question = page.get_by_role("alertdialog")

        trigger.click()
        expect(question).to_contain_text("Cancel your appointment on")
        expect(question.get_by_role("button", name="Keep it")).to_be_focused()
        page.keyboard.press("Escape")
        expect(question).to_be_hidden()
        trigger.click()
        screenshot(page, screenshot_dir, "confirm-cancel-appointment-phone")
        question.get_by_role("button", name="Keep it").click()
        expect(question).to_be_hidden()
        assert db_value(db, status, (appointment,)) == "requested"

        trigger.click()
        question.get_by_role("button", name="Cancel appointment").click()
        page.get_by_text("Appointment cancelled").first.wait_for()
        assert db_value(db, status, (appointment,)) == "cancelled"
    finally:
        ctx.close()
