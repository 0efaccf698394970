"""The admin's departments, permission matrix and audit trail."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    assert_apart,
    db_rows,
    db_value,
    form_alert,
    log_in,
    log_in_to,
    wait_for_db,
)


def _open_admin_page(page, base_url: str, link: str, path: str) -> None:
    log_in_to(page, base_url, "admin@hms.example", "/admin")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name=link).click()
    page.wait_for_url(f"{base_url}{path}")
    expect(page.get_by_role("heading", level=1, name=link)).to_be_visible()


def _department_row(page, name: str):
    return page.get_by_role("table", name="Departments").get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=name, exact=True))


def test_admin_creates_renames_and_deactivates_a_department(app_server, page):
    url = app_server.database_url
    _open_admin_page(page, app_server.url, "Departments", "/admin/departments")
    expect(_department_row(page, "Cardiology")).to_contain_text("Active")

    page.get_by_label("New department").fill("Neurology")
    page.get_by_role("button", name="Create department").click()
    row = _department_row(page, "Neurology")
    expect(row).to_contain_text("Active")
    expect(page.get_by_label("New department")).to_have_value("")
    department_id = db_value(url, "SELECT id FROM department WHERE name = 'Neurology' AND is_active")
    assert department_id is not None

    # The same name again is refused with a message by the form.
    page.get_by_label("New department").fill("Cardiology")
    page.get_by_role("button", name="Create department").click()
    expect(form_alert(page)).to_have_text("A department named Cardiology already exists.")

    page.get_by_role("button", name="Rename Neurology").click()
    rename = page.get_by_role("textbox", name="New name")
    expect(rename).to_have_value("Neurology")
    rename.fill("Neurosciences")
    page.get_by_role("button", name="Save").click()
    expect(_department_row(page, "Neurosciences")).to_be_visible()
    expect(_department_row(page, "Neurology")).to_have_count(0)
    assert db_value(url, "SELECT name FROM department WHERE id = ?", (department_id,)) == "Neurosciences"

    page.get_by_role("button", name="Deactivate Neurosciences").click()
    expect(_department_row(page, "Neurosciences")).to_contain_text("Inactive")
    expect(page.get_by_role("button", name="Reactivate Neurosciences")).to_be_visible()
    assert db_value(url, "SELECT is_active FROM department WHERE id = ?", (department_id,)) == 0
    assert [a for (a,) in db_rows(url, "SELECT action FROM audit_event WHERE entity_type = 'department' "
                                  "AND entity_id = ? ORDER BY id", (str(department_id),))] == [
        "department.create", "department.rename", "department.deactivate"]
    assert_accessible(page)

    # A deactivated department is not offered for new doctors.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users").click()
    page.wait_for_url(f"{app_server.url}/admin/users")
    page.get_by_role("button", name="New staff account").click()
    departments = page.get_by_role("dialog").get_by_label("Department")
    expect(departments.locator("option", has_text="Cardiology")).to_have_count(1)
    expect(departments.locator("option", has_text="Neurosciences")).to_have_count(0)


def _has_permission(app_server, role: str, permission: str) -> bool:
    return bool(db_value(app_server.database_url, "SELECT count(*) FROM role_permission WHERE role = ? AND "
                         "permission = ?", (role, permission)))


def test_permission_matrix_protects_admin_and_persists_a_toggle(app_server, page):
    _open_admin_page(page, app_server.url, "Permissions", "/admin/permissions")
    protected = page.get_by_role("checkbox", name="users.manage for admin")
    expect(protected).to_be_checked()
    expect(protected).to_be_disabled()
    expect(page.get_by_role("checkbox", name="permissions.manage for admin")).to_be_disabled()
    expect(page.get_by_role("checkbox", name="users.manage for accounts")).to_be_enabled()
    assert_accessible(page)

    box = page.get_by_role("checkbox", name="reports.view for lab")
    assert not _has_permission(app_server, "lab", "reports.view")
    expect(box).not_to_be_checked()
    box.click()
    expect(box).to_be_checked()
    wait_for_db(app_server.database_url, "SELECT count(*) FROM role_permission WHERE role = 'lab' AND "
                "permission = 'reports.view'")

    page.reload()  # what the table shows comes from the database, not the click
    expect(page.get_by_role("checkbox", name="reports.view for lab")).to_be_checked()

    box = page.get_by_role("checkbox", name="reports.view for lab")
    box.click()
    expect(box).not_to_be_checked()
    wait_for_db(app_server.database_url, "SELECT count(*) FROM role_permission WHERE role = 'lab' AND "
                "permission = 'reports.view'", until=lambda n: n == 0)
    actions = [a for (a,) in db_rows(app_server.database_url, "SELECT action FROM audit_event "
                                     "WHERE entity_id = 'lab:reports.view' ORDER BY id")]
    assert actions == ["permission.grant", "permission.revoke"]


def _audit_rows(page):
    return page.get_by_role("table", name="Audit events, newest first").locator("tbody tr")


def _audit_pager(page, number: int = 1, *, size_note: bool = False):
    """The keyset pager's label: the page number, and for the unfiltered trail what is known of its
    size, labelled as an estimate (PostgreSQL) or an upper bound (SQLite); never a count."""
    if not size_note:
        return page.get_by_text(f"Page {number}", exact=True)
    return page.get_by_text(re.compile(
        rf"^Page {number} · (about [\d,]+ events in all \(the database's estimate\)"
        rf"|at most [\d,]+ events in all \(from the first and last ids\))$"))


def test_audit_trail_filters_exports_and_verifies(app_server, page, new_context):
    url = app_server.database_url
    # A failed login of our own, so the "failed" filter has something to find.
    stranger = new_context().new_page()
    log_in(stranger, app_server.url, "audit.probe@nowhere.example", "Whatever-123")
    wait_for_db(url, "SELECT count(*) FROM audit_event WHERE actor_email = 'audit.probe@nowhere.example'")

    _open_admin_page(page, app_server.url, "Audit trail", "/admin/audit")
    expect(_audit_rows(page).first).to_be_visible()
    assert_apart(page.get_by_label("User (email or id)"), page.get_by_label("Patient (MRN or id)"))
    everything = db_value(url, "SELECT count(*) FROM audit_event")
    assert everything > 25
    expect(_audit_rows(page)).to_have_count(25)
    if app_server.database_url.startswith("sqlite"):
        expect(_audit_pager(page, size_note=True)).to_be_visible()
    else:  # the estimate exists once PostgreSQL has analysed the table, which a fresh one may not have
        expect(_audit_pager(page).or_(_audit_pager(page, size_note=True))).to_be_visible()
    newest = _audit_rows(page).first.inner_text()
    page.get_by_role("button", name="Older page").click()
    expect(_audit_pager(page, 2, size_note=True).or_(_audit_pager(page, 2))).to_be_visible()
    expect(_audit_rows(page).first).not_to_have_text(newest)
    expect(page.get_by_role("button", name="Newer page")).to_be_enabled()
    page.get_by_role("button", name="Newer page").click()
    expect(page.get_by_role("button", name="Newer page")).to_be_disabled()
    expect(_audit_rows(page).nth(1)).to_be_visible()

    page.get_by_label("Action starts with").fill("login.")
    page.get_by_label("Outcome").select_option("failed")
    page.get_by_role("button", name="Apply filters").click()
    expected = db_value(url, "SELECT count(*) FROM audit_event WHERE action LIKE 'login.%' AND outcome = 'failed'")
    assert 0 < expected < 25
    expect(_audit_rows(page)).to_have_count(expected)
    expect(_audit_pager(page)).to_be_visible()  # filtered: no figure for the whole trail
    expect(page.get_by_role("button", name="Older page")).to_be_disabled()
    for row in _audit_rows(page).all():
        expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^login\."))
        expect(row.locator("td").nth(6)).to_have_text("failed")
    expect(_audit_rows(page).first).to_contain_text("audit.probe@nowhere.example")

    page.get_by_label("User (email or id)").fill("audit.probe@")
    page.get_by_role("button", name="Apply filters").click()
    expect(_audit_rows(page)).to_have_count(1)
    expect(_audit_pager(page)).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename == "audit-trail.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert rows[0][:5] == ["id", "occurred_at_utc", "actor_id", "actor_email", "action"]
    assert len(rows) == 2, rows
    assert rows[1][3:5] == ["audit.probe@nowhere.example", "login.failed"]
    assert rows[1][9] == "failed"
    wait_for_db(url, "SELECT count(*) FROM audit_event WHERE action = 'audit.export' AND detail LIKE '1 rows;%'")

    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_text(re.compile(r"^Intact: \d+ rows checked\.$")).first).to_be_visible()
    assert_accessible(page)

    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_label("Action starts with")).to_have_value("")
    expect(_audit_rows(page)).to_have_count(25)
    expect(page.get_by_role("button", name="Older page")).to_be_enabled()
