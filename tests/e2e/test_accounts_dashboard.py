"""The accounts dashboard in a real browser: the demo hospital's history in seven charts, each
with its table and a CSV export; a date range; and a payment a patient makes online in another
browser reaching the open dashboard, headline, chart table and all, without a reload."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import expect

from hms_app.services.accounting.finance import default_range
from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    expect_chart_drawn,
    log_in_to,
    screenshot,
    wait_charts_settled,
    wait_ready,
)

ACCOUNTS = "accounts@hms.example"
CHARTS = ("revenue-by-day", "revenue-by-month", "billed-by-department", "billed-by-kind", "collected-by-method",
          "receivables-by-age", "outstanding-by-payer")


def _cents(text: str) -> int:
    """ "£1,234.56" (or "−£5.00") as integer cents."""
    negative = text.startswith(("−", "-"))
    whole, _, fraction = text.lstrip("−-").lstrip("£").replace(",", "").partition(".")
    cents = int(whole) * 100 + int(fraction or 0)
    return -cents if negative else cents


def _money(cents: int) -> str:
    return f"£{cents / 100:,.2f}" if cents >= 0 else f"−£{-cents / 100:,.2f}"


def _self_paying_patient_with_an_open_invoice(db_url: str) -> tuple[str, int, int]:
    """(email, invoice id, cents due) of a demo patient without insurer who owes on an issued invoice."""
    rows = db_rows(db_url, "SELECT u.email, i.id, i.total_cents - i.paid_cents FROM invoice i "
                           "JOIN \"user\" u ON u.id = i.patient_id WHERE i.status IN ('issued', 'partly_paid') "
                           "AND i.insurer = '' AND i.number LIKE 'INV-%' ORDER BY i.id DESC")
    assert rows, "the demo history has open invoices of self-paying patients"
    return rows[0]


def test_accounts_dashboard_charts_ranges_exports_and_live_payments(app_server, browser, screenshot_dir):
    url, db_url = app_server.url, app_server.database_url
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True),
                browser.new_context(viewport={"width": 390, "height": 844})]
    try:
        accounts, patient = (ctx.new_page() for ctx in contexts)
        log_in_to(accounts, url, ACCOUNTS, "/accounts")
        expect(accounts.get_by_role("heading", level=1, name="Accounts dashboard")).to_be_visible()
        expect(accounts.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Dashboard")
               ).to_have_attribute("aria-current", "page")
        expect(accounts.locator("#range-shown")).to_contain_text("Revenue for ")
        for report in CHARTS:
            card = accounts.locator(f"#chart-{report}")
            expect(card.get_by_role("heading", level=2)).to_be_visible()
            expect(card.get_by_role("button", name="Export CSV")).to_be_visible()
        # The demo's last 30 days bill, collect and leave invoices open: those charts are drawn.
        for report in ("revenue-by-day", "revenue-by-month", "billed-by-department", "receivables-by-age",
                       "outstanding-by-payer"):
            expect(accounts.locator(f"#chart-{report} .js-plotly-plot")).to_have_count(1)
            expect_chart_drawn(accounts.locator(f"#chart-{report}"), traces=2 if report.startswith("revenue") else 1)
            expect(accounts.locator(f"#chart-{report} .chart-summary")).not_to_be_empty()
        expect(accounts.locator("#chart-receivables-by-age table")).to_contain_text("Over 90 days")

        # A range with nothing in it: every revenue chart says what to do instead of drawing nothing.
        accounts.fill("#range-start", "2024-01-01")
        accounts.fill("#range-end", "2024-01-31")
        accounts.get_by_role("button", name="Show", exact=True).click()
        expect(accounts.locator("#range-shown")).to_contain_text("1 Jan 2024 – 31 Jan 2024")
        expect(accounts.locator("#collected-total")).to_have_text("£0.00")
        expect(accounts.locator("#chart-revenue-by-day")).to_contain_text("Choose an earlier start date")
        expect(accounts.locator("#chart-revenue-by-day .js-plotly-plot")).to_have_count(0)
        expect(accounts.locator("#chart-receivables-by-age .js-plotly-plot")).to_have_count(1)  # as of today
        accounts.fill("#range-start", "2024-02-01")
        accounts.get_by_role("button", name="Show", exact=True).click()
        accounts.get_by_text("The start date must not be after the end date.").first.wait_for()
        expect(accounts.locator("#range-shown")).to_contain_text("1 Jan 2024 – 31 Jan 2024")
        for days in (90, 30):
            accounts.get_by_role("button", name=f"Last {days} days").click()
            start, end = default_range(days)
            expect(accounts.locator("#range-start")).to_have_value(start)
            expect(accounts.locator("#range-end")).to_have_value(end)
            expect(accounts.locator("#chart-revenue-by-day .js-plotly-plot")).to_have_count(1)

        # A patient pays online in another browser; the open dashboard follows, no reload.
        email, invoice_id, due = _self_paying_patient_with_an_open_invoice(db_url)
        collected = accounts.locator("#collected-total")
        before = _cents(collected.inner_text())
        day_total = accounts.locator("#chart-revenue-by-day tbody tr").last
        day_total_before = day_total.inner_text()
        accounts.evaluate("""() => {
            window.__sameDocument = true;
            const tile = document.querySelector('#collected-total');
            new MutationObserver(() => { window.__collectedChangedAt = window.__collectedChangedAt || Date.now(); })
                .observe(tile, {childList: true, characterData: true, subtree: true});
        }""")
        log_in_to(patient, url, email, "/patient")
        patient.goto(f"{url}/patient/invoices")
        wait_ready(patient)
        patient.locator(f"[data-invoice='{invoice_id}']").get_by_role("button", name="Pay").click()
        patient.fill("#card-number", "4242 4242 4242 4242")
        patient.fill("#card-expiry", "12/30")
        patient.fill("#card-cvc", "123")
        clicked_at = patient.evaluate("() => Date.now()")
        patient.get_by_role("button", name="Pay now").click()
        patient.get_by_text("Thank you").first.wait_for()

        expect(collected).to_have_text(_money(before + due), timeout=5_000)
        delay_ms = accounts.evaluate("() => window.__collectedChangedAt") - clicked_at
        print(f"payment click → accounts headline changed: {delay_ms} ms")
        assert delay_ms < 1_000, f"the dashboard took {delay_ms} ms to show the payment"
        assert accounts.evaluate("() => window.__sameDocument === true"), "the dashboard reloaded"
        expect(day_total).not_to_have_text(day_total_before)
        assert db_rows(db_url, "SELECT count(*) FROM payment WHERE invoice_id = ? AND method = 'card'",
                       (invoice_id,)) == [(1,)]

        # Export: what the chart shows, as CSV in cents, today's payment included.
        with accounts.expect_download() as download:
            accounts.get_by_role("button", name="Export CSV: Revenue by day").click()
        assert download.value.suggested_filename.startswith("accounts-revenue-by-day-")
        rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
        assert rows[0] == ["Period", "Billed (cents)", "Collected (cents)"]
        assert len(rows) == 31
        assert sum(int(r[2]) for r in rows[1:]) == before + due
        accounts.get_by_text("Revenue by day exported.").first.wait_for()

        accounts.locator("#chart-revenue-by-day summary").click()  # the day-by-day table, opened
        wait_charts_settled(accounts)  # Plotly's transitions over before the picture and the audit
        screenshot(accounts, screenshot_dir, "accounts-dashboard-charts")
        assert_accessible(accounts)
        wait_ready(accounts)
    finally:
        for ctx in contexts:
            ctx.close()
