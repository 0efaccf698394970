"""Each of the six demo roles logs in and lands on a dashboard of its own."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    assert_apart,
    db_value,
    log_in_to,
    screenshot,
    wait_ready,
)


def test_login_page_is_accessible(app_server, page, screenshot_dir):
    page.goto(f"{app_server.url}/login")
    wait_ready(page)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("link", name="Create your account")).to_have_attribute("href", "/register")
    screenshot(page, screenshot_dir, "login")
    assert_accessible(page)


def _card(page, element_id: str):
    return page.locator(".rt-Card").filter(has=page.locator(f"#{element_id}"))


def test_admin_lands_on_administration(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    expect(page.locator("#user-name")).to_have_text("Alex Admin")
    expect(page.locator("#user-role")).to_have_text("Administrator")
    users = db_value(app_server.database_url, 'SELECT count(*) FROM "user"')
    departments = db_value(app_server.database_url, "SELECT count(*) FROM department WHERE is_active")
    expect(page.locator("#stat-users")).to_have_text(str(users))
    expect(page.locator("#stat-departments")).to_have_text(str(departments))
    assert_apart(_card(page, "stat-users"), _card(page, "stat-logins"))
    per_role = page.get_by_role("table", name="Active and deactivated accounts per role")
    expect(per_role.get_by_role("row", name="Doctor")).to_contain_text("Doctor")
    expect(per_role.locator("tbody tr")).to_have_count(6)
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Audit trail")).to_be_visible()
    screenshot(page, screenshot_dir, "dashboard-admin")
    assert_accessible(page)


STAFF = [
    # email, landing page, h1, role label, unit shown on the dashboard, screenshot name
    ("amelia.hart@hms.example", "/doctor", "Doctor's dashboard", "Doctor", "Cardiology", "dashboard-doctor"),
    ("lab@hms.example", "/lab", "Laboratory dashboard", "Lab staff", "Laboratory", "dashboard-lab"),
]


@pytest.mark.parametrize(("email", "home", "title", "role_label", "unit", "shot"), STAFF,
                         ids=[row[1].strip("/") for row in STAFF])
def test_staff_member_lands_on_own_dashboard(app_server, page, screenshot_dir, email, home, title, role_label,
                                             unit, shot):
    log_in_to(page, app_server.url, email, home)
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    expect(page.locator("#user-role")).to_have_text(role_label)
    expect(page.locator("#staff-role")).to_have_text(role_label)
    expect(page.locator("#staff-department")).to_have_text(unit)
    assert_apart(_card(page, "staff-role"), _card(page, "staff-department"))
    expect(page.get_by_text(email, exact=True)).to_be_visible()
    if home == "/doctor":
        expect(page.get_by_text("Interventional cardiology")).to_be_visible()
        expect(page.get_by_text("£150.00")).to_be_visible()  # the fee, from 15000 cents
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    screenshot(page, screenshot_dir, shot)
    assert_accessible(page)


def test_pharmacist_lands_on_the_stock_and_queue_dashboard(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, "pharmacy@hms.example", "/pharmacy")
    expect(page.get_by_role("heading", level=1, name="Pharmacy dashboard")).to_be_visible()
    expect(page.locator("#user-role")).to_have_text("Pharmacy staff")
    for tile in ("to-verify", "to-dispense", "low", "expiring", "expired"):
        expect(page.locator(f"#tile-{tile}")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#tile-stock-value")).to_have_text(re.compile(r"^£[\d,]+\.\d\d$"))
    # The demo's low and expired stock, as the alert lists name it.
    expect(page.get_by_role("heading", name="Low stock").locator("..")).to_contain_text("Salbutamol")
    expect(page.get_by_role("heading", name="Expired, blocked from dispensing").locator("..")).to_contain_text(
        "Amoxicillin 500 mg capsule")
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    screenshot(page, screenshot_dir, "dashboard-pharmacy")
    assert_accessible(page)


def test_patient_lands_on_own_dashboard_with_mrn(app_server, page, screenshot_dir):
    email = "maria.garcia@patients.example"
    mrn = db_value(app_server.database_url, 'SELECT p.mrn FROM patient_profile p JOIN "user" u '
                   "ON u.id = p.user_id WHERE u.email = ?", (email,))
    assert mrn
    log_in_to(page, app_server.url, email, "/patient")
    expect(page.get_by_role("heading", level=1, name="My dashboard")).to_be_visible()
    expect(page.locator("#patient-mrn")).to_have_text(mrn)
    expect(page.locator("#patient-name")).to_have_text("Maria Garcia")
    assert_apart(_card(page, "patient-mrn"), _card(page, "patient-name"))
    expect(page.locator("#user-role")).to_have_text("Patient")
    expect(page.get_by_text(email, exact=True)).to_be_visible()
    expect(page.get_by_text("+44 20 7946 1000", exact=True)).to_be_visible()
    expect(page.get_by_text("10 Example Street, London", exact=True)).to_be_visible()
    screenshot(page, screenshot_dir, "dashboard-patient")
    assert_accessible(page)
