"""A patient on a phone: every page fits the screen, works by touch and passes axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import assert_accessible, db_value, log_in_to, screenshot, wait_ready

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

    nav = phone.get_by_role("navigation", name="Main navigation")
    for link, path, heading in (("Notifications", "/notifications", "Notifications"),
                                ("Change password", "/account/password", "Change password"),
                                ("My dashboard", "/patient", "My dashboard")):
        nav.get_by_role("link", name=link).tap()
        phone.wait_for_url(f"{app_server.url}{path}")
        expect(phone.get_by_role("heading", level=1, name=heading)).to_be_visible()
        _assert_no_sideways_scroll(phone)
        assert_accessible(phone)

    phone.get_by_role("button", name="Log out").tap()
    phone.wait_for_url(f"{app_server.url}/login")
