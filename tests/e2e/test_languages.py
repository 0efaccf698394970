"""A patient reads HMS in Arabic and back in English: texts, direction and dates switch at once.

The choice is made in the menu without a reload, is kept on the user's row (so it follows them
to another device), and the page's own rows (a date written on the server) are loaded again in
the new language. A visitor's browser preference chooses the login page's language.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_value,
    log_in_to,
    routes_by_role,
    screenshot,
    wait_ready,
)

PATIENT = "aisha.khan@patients.example"
ARABIC_LETTERS = re.compile(r"[\u0600-\u06FF]")


@pytest.fixture(autouse=True)
def _patient_back_in_english(app_server):
    """Other journeys read this patient's pages in English: her choice is undone after each test,
    also when one fails half-way."""
    yield
    path = app_server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute('UPDATE "user" SET language = NULL WHERE email = ?', (PATIENT,))


def _html(page) -> tuple[str, str]:
    return tuple(page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]"))


def test_a_patient_switches_to_arabic_and_back(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, PATIENT, "/patient")
    page.goto(f"{app_server.url}/patient/appointments")
    wait_ready(page)
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("My appointments")
    english_dates = page.locator("table tbody tr").first.inner_text()
    page.evaluate("() => { window.__stayed = true; }")  # gone if the page reloads

    page.select_option("#nav-language", "ar")
    expect(heading).to_have_text("مواعيدي")
    page.wait_for_function("() => document.documentElement.dir === 'rtl' && document.documentElement.lang === 'ar'")
    assert page.evaluate("() => window.__stayed === true"), "the page reloaded"
    expect(page.get_by_role("link", name="لوحتي")).to_be_visible()
    expect(page.locator("#user-role")).to_have_text("المريض")  # written by the server, again
    # A date the server wrote is written again in Arabic (month names in Arabic letters).
    page.wait_for_function(
        "(before) => { const c = document.querySelector('table tbody tr'); return c && c.innerText !== before; }",
        arg=english_dates)
    assert ARABIC_LETTERS.search(page.locator("table tbody tr").first.inner_text())
    assert db_value(app_server.database_url, 'SELECT language FROM "user" WHERE email = ?', (PATIENT,)) == "ar"
    screenshot(page, screenshot_dir, "languages-appointments-ar")
    assert_accessible(page)

    page.select_option("#nav-language", "en")
    expect(heading).to_have_text("My appointments")
    page.wait_for_function("() => document.documentElement.dir === 'ltr' && document.documentElement.lang === 'en'")
    page.wait_for_function(
        "(before) => { const c = document.querySelector('table tbody tr'); return c && c.innerText === before; }",
        arg=english_dates)
    assert db_value(app_server.database_url, 'SELECT language FROM "user" WHERE email = ?', (PATIENT,)) == "en"


def test_a_visitor_gets_the_browser_preference_and_can_switch_on_the_login_page(new_context, app_server):
    page = new_context(locale="es-ES", extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"}).new_page()
    page.goto(f"{app_server.url}/login")
    wait_ready(page)
    page.wait_for_function("() => document.documentElement.lang === 'es'")
    expect(page.locator("#login-language")).to_have_value("es")
    page.select_option("#login-language", "ar")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    assert_accessible(page)


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESK = {"viewport": {"width": 1280, "height": 900}}


def _patient_in(new_context, app_server, language: str, device: dict):
    page = new_context(**device).new_page()
    log_in_to(page, app_server.url, PATIENT, "/patient")
    picker = "#nav-language" if device is DESK else "#menu-language"
    if device is PHONE:
        page.get_by_role("button", name=re.compile("Menu|القائمة|Menú")).click()
    page.select_option(picker, language)
    page.wait_for_function("(lang) => document.documentElement.lang === lang", arg=language)
    if device is PHONE:
        page.keyboard.press("Escape")
    return page


def test_patient_pages_in_spanish_and_arabic_at_a_desk_and_on_a_phone(new_context, app_server, screenshot_dir):
    """The README's screenshots, and every patient page passes axe with lang and dir set."""
    for language, title in (("es", "Mi panel"), ("ar", "لوحتي")):
        for device, suffix in ((DESK, ""), (PHONE, "-phone")):
            page = _patient_in(new_context, app_server, language, device)
            expect(page.get_by_role("heading", level=1)).to_have_text(title)
            assert _html(page) == (language, "rtl" if language == "ar" else "ltr")
            screenshot(page, screenshot_dir, f"languages-dashboard-{language}{suffix}")
            page.goto(f"{app_server.url}/patient/book")
            wait_ready(page)
            page.wait_for_function("(lang) => document.documentElement.lang === lang", arg=language)
            page.locator("#book-date").wait_for()
            screenshot(page, screenshot_dir, f"languages-booking-{language}{suffix}")
            assert_accessible(page)
            page.context.close()


def test_every_patient_page_passes_axe_in_arabic(new_context, app_server):
    page = _patient_in(new_context, app_server, "ar", DESK)
    for route in routes_by_role()["patient"]:
        page.goto(f"{app_server.url}{route}")
        wait_ready(page)
        page.wait_for_function("() => document.documentElement.dir === 'rtl'")
        assert_accessible(page)
