"""At a 1366×768 desk (issue 16, item 15): Admin → Users shows every account's actions on
screen, and the invoice list's dates stay on one line."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import log_in_to, screenshot, wait_ready

DESK = {"viewport": {"width": 1366, "height": 768}}


def test_every_users_actions_are_on_screen(app_server, new_context, screenshot_dir):
    page = new_context(**DESK).new_page()
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    page.goto(f"{app_server.url}/admin/users")
    wait_ready(page)
    table = page.get_by_role("region", name="User accounts")
    expect(table.locator("tbody tr").first).to_be_visible()
    buttons = table.locator("tbody button")
    assert buttons.count() >= 2
    for i in range(buttons.count()):
        box = buttons.nth(i).bounding_box()
        assert box["x"] >= 0, (buttons.nth(i).get_attribute("aria-label"), box)
        assert box["x"] + box["width"] <= DESK["viewport"]["width"], (buttons.nth(i).get_attribute("aria-label"), box)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, screenshot_dir, "desk-admin-users")


def test_invoice_dates_stay_on_one_line(app_server, new_context, screenshot_dir):
    page = new_context(**DESK).new_page()
    log_in_to(page, app_server.url, "accounts@hms.example", "/accounts")
    page.goto(f"{app_server.url}/accounts/invoices")
    wait_ready(page)
    page.locator("#invoice-show").select_option("")  # all invoices, drafts (no dates) too
    table = page.get_by_role("region", name="Invoices")
    expect(table.locator("tbody tr").first).to_be_visible()
    dates = table.locator("tbody td[data-label='Issued'], tbody td[data-label='Due']")
    assert dates.count() > 0
    # Every cell's text and lines measured in one pass in the page, so that a live re-render of the
    # table between two cells cannot pair one cell's text with another moment's layout. One client
    # rect per line the text takes.
    measured = dates.evaluate_all("cells => cells.map(c => { const r = document.createRange(); "
                                  "r.selectNodeContents(c); return [c.innerText.trim(), r.getClientRects().length]; })")
    assert any(text for text, _ in measured)
    for text, lines in measured:
        if text:
            assert lines == 1, f"{text!r} wraps over {lines} lines"
    screenshot(page, screenshot_dir, "desk-accounts-invoices")
