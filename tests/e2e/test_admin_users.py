"""The admin's user list, staff accounts, deactivation with an open tab, and password reset."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    form_alert,
    log_in,
    log_in_to,
    user_id,
    wait_for_db,
    wait_ready,
)

PAGE_SIZE = 20
LOGIN_URL = re.compile(r"/login/?(\?.*)?$")


def _open_users(page, base_url: str) -> None:
    log_in_to(page, base_url, "admin@hms.example", "/admin")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users").click()
    page.wait_for_url(f"{base_url}/admin/users")
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()


def _rows(page):
    return page.get_by_role("table", name="User accounts").locator("tbody tr")


def _pager(page, total: int, current: int, pages: int):
    return page.get_by_text(f"{total} in all · page {current} of {pages}", exact=True)


def _search(page, text: str) -> None:
    page.get_by_label("Search users").fill(text)


def test_users_list_searches_filters_sorts_and_pages(app_server, page):
    url = app_server.database_url
    _open_users(page, app_server.url)
    total = db_value(url, 'SELECT count(*) FROM "user"')
    assert total >= 34  # the demo hospital: 4 staff, 10 doctors, 20 patients
    pages = -(-total // PAGE_SIZE)
    expect(_pager(page, total, 1, pages)).to_be_visible()
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    first_names = [r[0] for r in db_rows(url, 'SELECT full_name FROM "user" ORDER BY full_name, id LIMIT 2')]
    expect(_rows(page).nth(0).locator("th")).to_have_text(first_names[0])
    expect(_rows(page).nth(1).locator("th")).to_have_text(first_names[1])

    # Paging.
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(_pager(page, total, 2, pages)).to_be_visible()
    expect(_rows(page)).to_have_count(min(PAGE_SIZE, total - PAGE_SIZE))
    if pages == 2:
        expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(_pager(page, total, 1, pages)).to_be_visible()

    # Sorting: the name column is sorted ascending; a click turns it round.
    name_header = page.get_by_role("columnheader", name="Name")
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    name_header.get_by_role("button").click()
    expect(name_header).to_have_attribute("aria-sort", "descending")
    last_name = db_value(url, 'SELECT full_name FROM "user" ORDER BY full_name DESC, id LIMIT 1')
    expect(_rows(page).nth(0).locator("th")).to_have_text(last_name)
    email_header = page.get_by_role("columnheader", name="Email")
    email_header.get_by_role("button").click()
    expect(email_header).to_have_attribute("aria-sort", "ascending")
    expect(name_header).to_have_attribute("aria-sort", "none")
    first_email = db_value(url, 'SELECT email FROM "user" ORDER BY email, id LIMIT 1')
    expect(_rows(page).nth(0).locator("td").nth(0)).to_have_text(first_email)

    # Role filter.
    page.get_by_label("Role", exact=True).select_option("lab")
    expect(_pager(page, 1, 1, 1)).to_be_visible()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).nth(0)).to_contain_text("Lee Laboratory")
    doctors = db_value(url, "SELECT count(*) FROM \"user\" WHERE role = 'doctor'")
    page.get_by_label("Role", exact=True).select_option("doctor")
    expect(_pager(page, doctors, 1, -(-doctors // PAGE_SIZE))).to_be_visible()
    for row in _rows(page).all():
        expect(row.locator("td").nth(1)).to_have_text("Doctor")

    # Search, within the role filter, then across every role.
    _search(page, "hart")
    expect(_pager(page, 1, 1, 1)).to_be_visible()
    expect(_rows(page).nth(0)).to_contain_text("amelia.hart@hms.example")
    expect(_rows(page).nth(0)).to_contain_text("Cardiology")
    page.get_by_label("Role", exact=True).select_option("all")
    _search(page, "patients.example")
    patients = db_value(url, "SELECT count(*) FROM \"user\" WHERE email LIKE '%patients.example'")
    expect(_pager(page, patients, 1, -(-patients // PAGE_SIZE))).to_be_visible()
    _search(page, "no such person")
    expect(page.get_by_text("No accounts match.")).to_be_visible()
    expect(_pager(page, 0, 1, 1)).to_be_visible()
    assert_accessible(page)


def test_admin_creates_a_doctor_who_must_choose_a_password(app_server, page, new_context):
    url = app_server.database_url
    email = "theo.marsh@hms.example"
    temporary = "Temporary-Pass-2026"
    _open_users(page, app_server.url)
    page.get_by_role("button", name="New staff account").click()
    dialog = page.get_by_role("dialog", name="New staff account")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Full name").fill("Dr. Theo Marsh")
    dialog.get_by_label("Email").fill(email)
    expect(dialog.get_by_label("Role")).to_have_value("doctor")
    dialog.get_by_label("Temporary password").fill(temporary)
    dialog.get_by_label("Department").select_option(label="Orthopedics")
    dialog.get_by_label("Specialty").fill("Hand surgery")
    dialog.get_by_label("Consultation fee").fill("95.50")
    dialog.get_by_label("Slot length in minutes").fill("30")
    assert_accessible(page)
    dialog.get_by_role("button", name="Create account").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Account created for Dr. Theo Marsh.", exact=False)).to_be_visible()

    row = db_rows(url, 'SELECT u.role, u.must_change_password, d.name, p.consultation_fee_cents, p.slot_minutes, '
                  'p.specialty FROM "user" u JOIN doctor_profile p ON p.user_id = u.id '
                  "JOIN department d ON d.id = p.department_id WHERE u.email = ?", (email,))
    assert row == [("doctor", 1, "Orthopedics", 9550, 30, "Hand surgery")]

    # The new doctor logs in with the temporary password and must replace it first.
    doctor = new_context().new_page()
    log_in(doctor, app_server.url, email, temporary)
    doctor.wait_for_url(f"{app_server.url}/account/password")
    wait_ready(doctor)
    expect(doctor.get_by_text("Your password was set by an administrator.")).to_be_visible()
    doctor.goto(f"{app_server.url}/doctor")  # no way round it
    doctor.wait_for_url(f"{app_server.url}/account/password")
    wait_ready(doctor)
    doctor.get_by_label("Current password").fill(temporary)
    doctor.locator("#field-new_password").fill("Steady-Hands-2027")
    doctor.locator("#field-new_password_confirm").fill("Steady-Hands-2027")
    doctor.get_by_role("button", name="Change password").click()
    doctor.wait_for_url(f"{app_server.url}/doctor")
    expect(doctor.get_by_role("heading", level=1, name="Doctor's dashboard")).to_be_visible()
    expect(doctor.locator("#staff-department")).to_have_text("Orthopedics")
    expect(doctor.get_by_text("£95.50", exact=True)).to_be_visible()
    assert db_value(url, 'SELECT must_change_password FROM "user" WHERE email = ?', (email,)) == 0


def test_deactivating_a_user_ends_their_open_tab(app_server, page, new_context):
    url = app_server.database_url
    email = "kenji.tanaka@patients.example"
    patient = new_context().new_page()
    log_in_to(patient, app_server.url, email, "/patient")
    expect(patient.get_by_role("heading", level=1, name="My dashboard")).to_be_visible()

    _open_users(page, app_server.url)
    _search(page, "kenji")
    expect(_rows(page)).to_have_count(1)
    page.get_by_role("button", name="Deactivate Kenji Tanaka").click()
    page.get_by_role("alertdialog", name="Deactivate Kenji Tanaka?").get_by_role("button", name="Deactivate").click()
    expect(_rows(page).nth(0)).to_contain_text("Deactivated")
    expect(page.get_by_role("button", name="Reactivate Kenji Tanaka")).to_be_visible()
    assert db_value(url, 'SELECT is_active FROM "user" WHERE email = ?', (email,)) == 0
    assert db_value(url, "SELECT count(*) FROM auth_session WHERE user_id = ? AND revoked_at IS NULL",
                    (user_id(url, email),)) == 0

    # The patient's tab is still open on the dashboard; its next action meets the login page.
    patient.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Notifications").click()
    patient.wait_for_url(LOGIN_URL)
    expect(patient.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    expect(patient.get_by_role("heading", level=1, name="Notifications")).to_have_count(0)

    # A deactivated account cannot log in again either.
    log_in(patient, app_server.url, email)
    wait_for_db(url, "SELECT count(*) FROM audit_event WHERE action = 'login.failed' AND actor_email = ? "
                "AND detail = 'account disabled'", (email,))
    expect(form_alert(patient)).to_be_visible()
    expect(patient).to_have_url(LOGIN_URL)


def test_reset_password_shows_the_temporary_password_once(app_server, page, new_context):
    url = app_server.database_url
    email = "ingrid.larsen@patients.example"
    hash_before = db_value(url, 'SELECT password_hash FROM "user" WHERE email = ?', (email,))
    _open_users(page, app_server.url)
    _search(page, "ingrid")
    expect(_rows(page)).to_have_count(1)
    page.get_by_role("button", name="Reset password of Ingrid Larsen").click()
    page.get_by_role("alertdialog", name="Reset the password of Ingrid Larsen?").get_by_role(
        "button", name="Reset password").click()
    dialog = page.get_by_role("alertdialog", name="Temporary password")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Give this password to Ingrid Larsen in person.")
    temporary = page.locator("#temporary-password").inner_text().strip()
    assert re.fullmatch(r"[\w-]{6}-[\w-]{6}-[\w-]{6}", temporary), temporary
    assert_accessible(page)
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert temporary not in page.content()

    page.reload()
    wait_ready(page)
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()
    expect(page.locator("#temporary-password")).to_have_count(0)
    assert db_value(url, 'SELECT password_hash FROM "user" WHERE email = ?', (email,)) != hash_before
    assert db_value(url, 'SELECT must_change_password FROM "user" WHERE email = ?', (email,)) == 1

    # The temporary password works, once, on the way to choosing a new one.
    patient = new_context().new_page()
    log_in(patient, app_server.url, email, temporary)
    patient.wait_for_url(f"{app_server.url}/account/password")
    expect(patient.get_by_role("heading", level=1, name="Change password")).to_be_visible()
