"""E-mail in the browser: the admin sees that it is off, a patient turns reminders off and on."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import assert_accessible, log_in_to, user_id, wait_for_db

PATIENT = "fatima.ali@patients.example"  # used by no other journey


def test_the_admin_dashboard_says_email_is_off_without_an_smtp_url(app_server, page):
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    expect(page.locator("#mail-status")).to_contain_text("Off: HMS_SMTP_URL is not set")
    assert_accessible(page)


def test_a_patient_turns_email_reminders_off_and_on(app_server, page):
    log_in_to(page, app_server.url, PATIENT, "/patient")
    switch = page.get_by_role("switch", name="E-mail me a reminder the day before each appointment")
    expect(switch).to_have_attribute("aria-checked", "true")
    assert_accessible(page)
    query = "SELECT reminders FROM email_preference WHERE user_id = ?"
    patient = (user_id(app_server.database_url, PATIENT),)
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    wait_for_db(app_server.database_url, query, patient, until=lambda v: v == 0)
    page.reload()
    expect(page.get_by_role("switch", name="E-mail me a reminder the day before each appointment")
           ).to_have_attribute("aria-checked", "false")
    page.get_by_role("switch", name="E-mail me a reminder the day before each appointment").click()
    wait_for_db(app_server.database_url, query, patient, until=lambda v: v == 1)
