"""Each of the six demo roles logs in and lands on a dashboard of its own."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect

from hms_app import settings
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


def _appointment(db: str, email: str, doctor_email: str, start: datetime, status: str, reason: str) -> int:
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (email,)).fetchone()[0]
        doctor, department = conn.execute(
            "SELECT u.id, d.department_id FROM user u JOIN doctor_profile d ON d.user_id=u.id WHERE u.email=?",
            (doctor_email,)).fetchone()
        utc = start.astimezone(UTC).replace(tzinfo=None)
        return conn.execute(
            "INSERT INTO appointment (patient_id, doctor_id, department_id, starts_at, ends_at, status, reason, "
            "status_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
            (patient, doctor, department, utc.isoformat(" "), (utc + timedelta(minutes=20)).isoformat(" "), status,
             reason, utc.isoformat(" "), utc.isoformat(" "))).lastrowid


def test_the_doctors_dashboard_shows_today_and_what_waits_live(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    doctor_email = "mateo.rossi@hms.example"
    today_start = datetime.now(settings.TIMEZONE).replace(hour=0, minute=7, second=0, microsecond=0)
    visit = _appointment(db, "maria.garcia@patients.example", doctor_email, today_start, "confirmed",
                         "Chest pain follow-up")
    request = _appointment(db, "maria.garcia@patients.example", doctor_email,
                           today_start + timedelta(days=6, hours=10, minutes=13), "requested", "Check-up")
    contexts = [browser.new_context(viewport={"width": 1366, "height": 900}) for _ in range(2)]
    try:
        desk, other_tab = (ctx.new_page() for ctx in contexts)
        log_in_to(desk, app_server.url, doctor_email, "/doctor")
        row = desk.locator(f"tr[data-visit='{visit}']")
        expect(row).to_contain_text("00:07")
        expect(row).to_contain_text("Maria Garcia")
        expect(row).to_contain_text("Confirmed")
        expect(row).to_contain_text("Chest pain follow-up")
        requests = db_value(app_server.database_url, "SELECT count(*) FROM appointment a JOIN user u ON u.id=a.doctor_id "
                            "WHERE u.email=? AND a.status='requested' AND a.starts_at >= datetime('now')", (doctor_email,))
        expect(desk.locator("#desk-count-requests")).to_have_text(str(requests))
        expect(desk.get_by_role("link", name=re.compile(r"^Appointment requests"))).to_have_attribute(
            "href", "/doctor/appointments")
        expect(desk.get_by_role("link", name=re.compile(r"^Results to review"))).to_have_attribute("href", "/doctor/results")
        expect(desk.get_by_role("link", name=re.compile(r"^Critical values"))).to_have_attribute("href", "/doctor/results")
        screenshot(desk, screenshot_dir, "dashboard-doctor-desk")
        assert_accessible(desk)
        # Confirming the request in another tab lowers the count here, live.
        log_in_to(other_tab, app_server.url, doctor_email, "/doctor")
        other_tab.goto(f"{app_server.url}/doctor/appointments")
        wait_ready(other_tab)
        other_tab.locator(f"[data-appointment='{request}']").get_by_role("button", name="Confirm").click()
        expect(desk.locator("#desk-count-requests")).to_have_text(str(requests - 1))
    finally:
        for ctx in contexts:
            ctx.close()


def _requested_lab_order(db: str, data_dir) -> int:
    key = (data_dir / "hms.key").read_bytes().splitlines()[0]
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email='maria.garcia@patients.example'").fetchone()[0]
        doctor = conn.execute("SELECT id FROM user WHERE email='mateo.rossi@hms.example'").fetchone()[0]
        test = conn.execute("SELECT id FROM lab_test WHERE code='NA'").fetchone()[0]
        return conn.execute(
            "INSERT INTO lab_order (patient_id, doctor_id, test_id, priority, status, note, ordered_at, updated_at) "
            "VALUES (?, ?, ?, 'stat', 'requested', ?, ?, ?)",
            (patient, doctor, test, Fernet(key).encrypt(b"").decode(), now, now)).lastrowid


def test_the_labs_dashboard_counts_open_orders_live(app_server, browser, screenshot_dir):
    order_id = _requested_lab_order(app_server.database_url.removeprefix("sqlite:///"), app_server.data_dir)
    contexts = [browser.new_context(viewport={"width": 1366, "height": 900}) for _ in range(2)]
    try:
        desk, worklist = (ctx.new_page() for ctx in contexts)
        log_in_to(desk, app_server.url, "lab@hms.example", "/lab")
        for status in ("requested", "collected", "in_progress"):
            count = db_value(app_server.database_url, "SELECT count(*) FROM lab_order WHERE status=?", (status,))
            expect(desk.locator(f"#desk-count-{status}")).to_have_text(str(count))
        for priority in ("stat", "urgent", "routine"):
            count = db_value(app_server.database_url, "SELECT count(*) FROM lab_order WHERE priority=? AND status IN "
                             "('requested', 'collected', 'in_progress')", (priority,))
            expect(desk.locator(f"#desk-count-{priority}")).to_have_text(str(count))
        expect(desk.locator("#desk-resulted-today")).to_have_text(re.compile(r"^\d+$"))
        screenshot(desk, screenshot_dir, "dashboard-lab-desk")
        assert_accessible(desk)
        # Collecting a sample in another tab moves the counts here, live.
        requested = db_value(app_server.database_url, "SELECT count(*) FROM lab_order WHERE status='requested'")
        log_in_to(worklist, app_server.url, "lab@hms.example", "/lab")
        worklist.goto(f"{app_server.url}/lab/worklist")
        wait_ready(worklist)
        worklist.locator(f"tr[data-order='{order_id}']").get_by_role("button", name="Collect").click()
        expect(desk.locator("#desk-count-requested")).to_have_text(str(requested - 1))
    finally:
        for ctx in contexts:
            ctx.close()
