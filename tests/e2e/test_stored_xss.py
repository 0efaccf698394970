"""Stored XSS: names, notes, reasons and file names holding HTML or script render as text.

``tests/e2e/xss_seed.py`` gives a new patient a record whose every free-text field is a payload
(``<img src=x onerror=alert(...)>``, ``<script>``, ``<svg onload>``, ``<iframe src=javascript:>``),
written into the running app's database through the services. Then every page that shows those
fields is opened as each role that sees them, and on each:

- no dialog opens (an ``alert`` from any payload would);
- no element the payloads would inject exists (``img[src=x]``, ``svg[onload]``, any
  ``onerror``/``onload`` attribute, a ``javascript:`` frame, a script holding ``alert('``);
- the payloads that page shows are there as visible text, angle brackets and all.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import log_in_to, wait_ready
from tests.e2e.xss_seed import seed_on

INJECTED = "img[src='x'], svg[onload], iframe[src^='javascript'], [onerror], [onload], [onmouseover]"


@pytest.fixture(scope="module")
def xss(app_server) -> dict[str, Any]:
    """The seeded patient: ids, credentials and the payloads as stored."""
    return seed_on(app_server)


_SETTLED_IMAGES = """
window.__settledImages = new WeakSet();
for (const kind of ["load", "error"]) {
    window.addEventListener(kind, (event) => {
        if (event.target instanceof HTMLImageElement) window.__settledImages.add(event.target);
    }, true);
}
"""
"""Marks every image whose load or error event has been dispatched (so its onerror, had a
payload become one, has run): the capture listener on the window sees the event first."""


def _watch(page) -> list[str]:
    """Every dialog the page opens (dismissed at once), to assert there were none."""
    opened: list[str] = []
    page.add_init_script(_SETTLED_IMAGES)

    def dismiss(dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def _assert_inert(page, opened: list[str], where: str) -> None:
    # An onerror fires once a broken image fails to load: wait until every image with a source
    # has had its load or error event.
    page.wait_for_function("() => [...document.images].every(i => !i.getAttribute('src') "
                           "|| window.__settledImages.has(i))")
    assert opened == [], f"{where}: a payload ran and opened {opened}"
    assert page.locator(INJECTED).count() == 0, f"{where}: a payload became an element"
    scripts = page.evaluate("() => [...document.scripts].map(s => s.text).filter(t => t.includes(\"alert('\"))")
    assert scripts == [], f"{where}: a payload became a script: {scripts}"


def _visit(page, base: str, path: str, shown: list[str], opened: list[str]) -> None:
    page.goto(f"{base}{path}")
    wait_ready(page)
    for text in shown:
        expect(page.get_by_text(text, exact=False).first).to_be_visible()
    _assert_inert(page, opened, path)


def test_the_patient_sees_their_own_payloads_as_text(app_server, page, xss):
    text, opened = xss["payloads"], _watch(page)
    log_in_to(page, app_server.url, xss["email"], "/patient", password=xss["password"])
    _assert_inert(page, opened, "/patient")
    _visit(page, app_server.url, "/patient/appointments",
           [text["booking_reason"], text["visit_reason"], text["decline_reason"]], opened)
    _visit(page, app_server.url, "/patient/history", [text["diagnosis"], text["document_title"]], opened)
    _visit(page, app_server.url, "/patient/prescriptions", [text["rejection_reason"]], opened)
    _visit(page, app_server.url, "/patient/invoices", [], opened)
    _visit(page, app_server.url, "/notifications", [text["decline_reason"], text["rejection_reason"]], opened)


def test_the_doctor_sees_the_patients_payloads_as_text(app_server, page, xss):
    text, opened = xss["payloads"], _watch(page)
    log_in_to(page, app_server.url, xss["doctor_email"], "/doctor")
    _visit(page, app_server.url, "/doctor/appointments", [], opened)
    _visit(page, app_server.url, f"/doctor/patient?id={xss['patient']}",
           [text["name"], text["allergy"], text["problem"], text["document_title"]], opened)
    _visit(page, app_server.url, f"/doctor/encounter?appointment={xss['visit']}", [text["name"]], opened)
    _visit(page, app_server.url, "/doctor/results", [], opened)


def test_pharmacy_lab_accounts_and_admin_see_the_payloads_as_text(app_server, new_context, xss):
    text = xss["payloads"]
    for email, home, visits in [
        ("pharmacy@hms.example", "/pharmacy", [("/pharmacy/queue", [text["name"]])]),
        ("lab@hms.example", "/lab", [("/lab/worklist", [text["name"], text["lab_note"]])]),
        ("accounts@hms.example", "/accounts", [("/accounts/invoices", [])]),
        ("admin@hms.example", "/admin", [("/admin/appointments", []), ("/admin/audit", []), ("/admin/users", [])]),
    ]:
        page = new_context().new_page()
        opened = _watch(page)
        log_in_to(page, app_server.url, email, home)
        _assert_inert(page, opened, home)
        for path, shown in visits:
            _visit(page, app_server.url, path, shown, opened)
