"""A patient on a phone: every page fits the screen, works by touch and passes axe.

At 390×844 the navigation is behind a Menu button (a sheet that closes on a choice or Escape),
table rows are cards with every cell labelled by its column, and dialogs fit the screen: no link
or button of any patient page lies outside the screen, and nothing scrolls sideways.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_value,
    demo_account,
    log_in_to,
    routes_by_role,
    screenshot,
    wait_ready,
)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.fixture
def phone(new_context):
    return new_context(**PHONE).new_page()


def _assert_no_sideways_scroll(page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, f"{page.url}: the page is {widths[0]}px wide on a {widths[1]}px screen"


def _assert_in_viewport(page, locator) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["viewport"]["width"] + 1, box


def test_patient_pages_fit_a_phone(app_server, phone, screenshot_dir):
    email = "aisha.khan@patients.example"
    mrn = db_value(app_server.database_url, 'SELECT p.mrn FROM patient_profile p JOIN "user" u '
                   "ON u.id = p.user_id WHERE u.email = ?", (email,))
    phone.goto(f"{app_server.url}/login")
    wait_ready(phone)
    _assert_no_sideways_scroll(phone)
    assert_accessible(phone)

    log_in_to(phone, app_server.url, email, "/patient")
    expect(phone.locator("#patient-mrn")).to_have_text(mrn)
    expect(phone.get_by_text("Aisha Khan").first).to_be_visible()
    _assert_no_sideways_scroll(phone)
    _assert_in_viewport(phone, phone.get_by_role("button", name="Log out"))
    _assert_in_viewport(phone, phone.locator("#patient-mrn"))
    screenshot(phone, screenshot_dir, "dashboard-patient-phone")
    assert_accessible(phone)

    for link, path, heading in (("Notifications", "/notifications", "Notifications"),
                                ("Change password", "/account/password", "Change password"),
                                ("My dashboard", "/patient", "My dashboard")):
        phone.get_by_role("button", name="Menu").tap()
        phone.get_by_role("dialog", name="Menu").get_by_role("link", name=link).tap()
        phone.wait_for_url(f"{app_server.url}{path}")
        expect(phone.get_by_role("heading", level=1, name=heading)).to_be_visible()
        _assert_no_sideways_scroll(phone)
        assert_accessible(phone)

    phone.get_by_role("button", name="Log out").tap()
    phone.wait_for_url(f"{app_server.url}/login")


_CONTROLS_OFF_SCREEN = """() => [...document.querySelectorAll('a, button')]
    .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
    .map(e => [e.getBoundingClientRect(), (e.getAttribute('aria-label') || e.textContent).trim().slice(0, 50)])
    .filter(([r]) => r.width > 1 && (r.left < -1 || r.right > window.innerWidth + 1))
    .map(([r, name]) => `${name}: ${Math.round(r.left)} to ${Math.round(r.right)}px`)"""


def _assert_every_control_on_screen(page) -> None:
    """No link or button lies left or right of the screen (in a table's sideways scroll, say)."""
    off = page.evaluate(_CONTROLS_OFF_SCREEN)
    assert not off, f"{page.url}: off screen on a {PHONE['viewport']['width']}px phone: {off}"


def _patient_routes() -> list[str]:
    routes = routes_by_role()
    return routes["patient"] + routes.get("", [])


def test_every_patient_page_fits_a_phone(app_server, phone, screenshot_dir):
    log_in_to(phone, app_server.url, demo_account(app_server.database_url, "patient"), "/patient")
    for route in _patient_routes():
        phone.goto(app_server.url + route)
        wait_ready(phone)
        expect(phone.get_by_role("button", name="Menu")).to_be_visible()
        expect(phone.locator("nav[aria-label='Main navigation']")).to_be_hidden()  # the sidebar gave way
        _assert_no_sideways_scroll(phone)
        _assert_every_control_on_screen(phone)
        screenshot(phone, screenshot_dir, "phone" + route.replace("/", "-"))


def test_table_rows_are_labelled_cards_on_a_phone(app_server, phone, screenshot_dir):
    log_in_to(phone, app_server.url, demo_account(app_server.database_url, "patient"), "/patient")
    phone.goto(f"{app_server.url}/patient/appointments")
    wait_ready(phone)
    table = phone.get_by_role("region", name="Past and cancelled appointments")
    expect(table).to_be_visible()
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    first_row = table.locator("tbody tr").first
    cells = first_row.locator(":scope > td, :scope > th")
    assert cells.count() == len(headers)
    row_width = first_row.bounding_box()["width"]
    for i, header in enumerate(headers):
        cell = cells.nth(i)
        label = cell.evaluate("c => getComputedStyle(c, '::before').content")
        assert label == (f'"{header}"' if header else "none"), (i, label, header)
        box = cell.bounding_box()
        if box:  # an empty cell (no action left on a past visit) is not shown at all
            assert box["width"] >= row_width * 0.8, f"{header}: each cell should be a full-width line of its card"
    _assert_every_control_on_screen(phone)
    screenshot(phone, screenshot_dir, "phone-appointment-cards")


def test_the_menu_opens_and_closes_by_touch_and_keyboard(app_server, phone, screenshot_dir):
    log_in_to(phone, app_server.url, demo_account(app_server.database_url, "patient"), "/patient")
    menu = phone.get_by_role("button", name="Menu")
    sheet = phone.get_by_role("dialog", name="Menu")
    menu.focus()
    phone.keyboard.press("Enter")
    expect(sheet).to_be_visible()
    expect(sheet.get_by_role("link", name="My dashboard")).to_have_attribute("aria-current", "page")
    sheet.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # slid in
    box = sheet.bounding_box()
    assert box["x"] == 0, box
    assert box["x"] + box["width"] <= PHONE["viewport"]["width"], box
    screenshot(phone, screenshot_dir, "phone-menu-open")
    assert_accessible(phone)
    phone.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    expect(menu).to_be_focused()

    menu.tap()
    sheet.get_by_role("link", name="My invoices").tap()
    phone.wait_for_url(f"{app_server.url}/patient/invoices")
    expect(sheet).to_be_hidden()
    expect(phone.get_by_role("heading", level=1, name="My invoices")).to_be_visible()


def test_the_invoice_dialog_fits_a_phone(app_server, phone, screenshot_dir):
    log_in_to(phone, app_server.url, demo_account(app_server.database_url, "patient"), "/patient")
    phone.goto(f"{app_server.url}/patient/invoices")
    wait_ready(phone)
    phone.get_by_role("button", name="Details of invoice").first.tap()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Close")).to_be_visible()
    phone.wait_for_timeout(300)  # the dialog's opening animation
    box = dialog.bounding_box()
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["viewport"]["width"], box
    assert box["y"] >= 0, box
    assert box["y"] + box["height"] <= PHONE["viewport"]["height"], box
    _assert_no_sideways_scroll(phone)
    _assert_every_control_on_screen(phone)
    dialog.get_by_role("button", name="Close").scroll_into_view_if_needed()
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    screenshot(phone, screenshot_dir, "phone-invoice-dialog")
    assert_accessible(phone)


def test_a_sortable_table_sorts_from_its_sort_control_on_a_phone(app_server, phone, screenshot_dir):
    # The headers that sort are hidden with the rest of the header row on a phone; a labelled
    # control stands in for them (here on the admin's list of users, which sorts by column).
    log_in_to(phone, app_server.url, "admin@hms.example", "/admin")
    phone.goto(f"{app_server.url}/admin/users")
    wait_ready(phone)
    sort_by = phone.get_by_label("Sort by")
    expect(sort_by).to_be_visible()
    emails = phone.get_by_role("region", name="User accounts").locator("tbody td[data-label='Email']")
    first, last = (db_value(app_server.database_url, f'SELECT {f}(email) FROM "user"') for f in ("min", "max"))
    sort_by.select_option(label="Email")
    expect(emails.first).to_have_text(first)
    phone.get_by_role("button", name="Sorted ascending: sort descending").tap()
    expect(emails.first).to_have_text(last)
    expect(phone.get_by_role("button", name="Sorted descending: sort ascending")).to_be_visible()
    _assert_no_sideways_scroll(phone)
    _assert_every_control_on_screen(phone)
    screenshot(phone, screenshot_dir, "phone-admin-users-sorted")
