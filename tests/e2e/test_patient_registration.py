"""A patient registers at /register, gets a medical record number and logs in."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import expect

from hms_app.services.core.localtime import format_date
from tests.e2e.helpers import (
    assert_accessible,
    db_value,
    form_alert,
    log_in_to,
    wait_for_db,
    wait_ready,
)

PASSWORD = "Rainy-Harbour-42"


def _fill_registration(page, *, name: str, email: str, birth_date: str, phone: str, password: str,
                       confirm: str | None = None) -> None:
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Birth date").fill(birth_date)
    page.get_by_label("Phone").fill(phone)
    page.locator("#field-password").fill(password)
    page.locator("#field-password_confirm").fill(password if confirm is None else confirm)


def _users_with(app_server, email: str) -> int:
    return db_value(app_server.database_url, 'SELECT count(*) FROM "user" WHERE email = ?', (email,))


def test_new_patient_registers_and_sees_mrn(app_server, page):
    email = "nadia.brooks@patients.example"
    page.goto(f"{app_server.url}/register")
    wait_ready(page)
    expect(page.get_by_role("heading", level=1, name="Create your patient account")).to_be_visible()
    assert_accessible(page)
    _fill_registration(page, name="Nadia Brooks", email=email, birth_date="1991-03-14",
                       phone="+44 20 7946 3311", password=PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/login/?$"))
    expect(page.get_by_text("If this address can have an account here, it is ready")).to_be_visible()

    mrn = wait_for_db(app_server.database_url, 'SELECT p.mrn FROM patient_profile p JOIN "user" u '
                      "ON u.id = p.user_id WHERE u.email = ? AND u.role = 'patient'", (email,))
    assert db_value(app_server.database_url, "SELECT count(*) FROM audit_event WHERE action = 'patient.register' "
                    "AND actor_email = ?", (email,)) == 1

    log_in_to(page, app_server.url, email, "/patient", PASSWORD)
    expect(page.locator("#patient-mrn")).to_have_text(mrn)
    expect(page.locator("#patient-name")).to_have_text("Nadia Brooks")
    expect(page.get_by_text(format_date(date(1991, 3, 14)), exact=True)).to_be_visible()  # in the locale


def test_bad_registration_explains_and_writes_no_user(app_server, page):
    email = "oscar.reyes@patients.example"
    page.goto(f"{app_server.url}/register")
    wait_ready(page)

    _fill_registration(page, name="Oscar Reyes", email=email, birth_date="1985-07-02",
                       phone="+44 20 7946 4400", password="short-1")
    page.get_by_role("button", name="Create account").click()
    expect(form_alert(page)).to_have_text("The password must be at least 10 characters long.")

    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    _fill_registration(page, name="Oscar Reyes", email=email, birth_date=tomorrow,
                       phone="+44 20 7946 4400", password=PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(form_alert(page)).to_have_text("The birth date cannot be in the future.")

    _fill_registration(page, name="Oscar Reyes", email=email, birth_date="1985-07-02",
                       phone="+44 20 7946 4400", password=PASSWORD, confirm=PASSWORD + "x")
    page.get_by_role("button", name="Create account").click()
    expect(form_alert(page)).to_have_text("The two passwords do not match.")

    expect(page).to_have_url(re.compile(r"/register/?$"))
    assert_accessible(page)
    assert _users_with(app_server, email) == 0
