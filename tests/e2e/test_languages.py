"""A patient reads HMS in Arabic and back in English: texts, direction and dates switch at once.

The choice is made in the menu without a reload, is kept on the user's row (so it follows them
to another device), and the page's own rows (a date written on the server) are loaded again in
the new language. A visitor's browser preference chooses the login page's language.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import assert_accessible, db_value, log_in_to, screenshot, wait_ready

PATIENT = "aisha.khan@patients.example"
ARABIC_LETTERS = re.compile(r"[\u0600-\u06FF]")


def _html(page) -> tuple[str, str]:
    return tuple(page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]"))


def test_a_patient_switches_to_arabic_and_back(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, PATIENT, "/patient")
    page.goto(f"{app_server.url}/patient/appointments")
    wait_ready(page)
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("My appointments")
    english_dates = page.locator("table tbody tr td").first.inner_text()
    page.evaluate("() => { window.__stayed = true; }")  # gone if the page reloads

    page.select_option("#nav-language", "ar")
    expect(heading).to_have_text("مواعيدي")
    page.wait_for_function("() => document.documentElement.dir === 'rtl' && document.documentElement.lang === 'ar'")
    assert page.evaluate("() => window.__stayed === true"), "the page reloaded"
    expect(page.get_by_role("link", name="لوحتي")).to_be_visible()
    # A date the server wrote is written again in Arabic (month names in Arabic letters).
    page.wait_for_function(
        "(before) => { const c = document.querySelector('table tbody tr td'); return c && c.innerText !== before; }",
        arg=english_dates)
    assert ARABIC_LETTERS.search(page.locator("table tbody tr td").first.inner_text())
    assert db_value(app_server.database_url, 'SELECT language FROM "user" WHERE email = ?', (PATIENT,)) == "ar"
    screenshot(page, screenshot_dir, "languages-appointments-ar")
    assert_accessible(page)

    page.select_option("#nav-language", "en")
    expect(heading).to_have_text("My appointments")
    page.wait_for_function("() => document.documentElement.dir === 'ltr' && document.documentElement.lang === 'en'")
    page.wait_for_function(
        "(before) => { const c = document.querySelector('table tbody tr td'); return c && c.innerText === before; }",
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
