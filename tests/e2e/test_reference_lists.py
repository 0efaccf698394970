"""The reference lists in a browser: lab staff edit a test's range and price on /lab/catalog, and
accounts change a service's price on /accounts/prices; each with its toast, its audit row and an
accessible page. Screenshots at desk width go to /tmp/shots/reference/."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    log_in_to,
    screenshot,
    wait_for_db,
)

SHOTS = Path("/tmp/shots/reference")


def _nav(page, name: str):
    return page.get_by_role("navigation", name="Main navigation").get_by_role("link", name=name)


def _toast(page, text: str):
    return page.locator("[data-sonner-toast]").filter(has_text=text)


def test_lab_staff_edit_a_range_and_a_price_in_the_catalog(app_server, page):
    url = app_server.database_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in_to(page, app_server.url, "lab@hms.example", "/lab")
    _nav(page, "Lab catalog").click()
    page.wait_for_url(f"{app_server.url}/lab/catalog")
    expect(page.get_by_role("heading", level=1, name="Lab catalog")).to_be_visible()
    page.get_by_label("Search tests").fill("sodium")
    row = page.locator("tr[data-code='NA']")
    expect(row).to_contain_text("any 0-200: 133-146")
    assert_accessible(page)
    page.get_by_label("Search tests").fill("")
    expect(page.locator("tr[data-code='K']")).to_be_visible()
    screenshot(page, SHOTS, "lab-catalog-desk")
    page.get_by_label("Search tests").fill("sodium")

    page.get_by_role("button", name="Edit Sodium").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Code")).to_have_value("NA")
    # A second band that leaves the elderly uncovered is refused with the age and sex named.
    dialog.get_by_role("button", name="Add a range").click()
    dialog.locator("#age_max-0").fill("65")
    dialog.locator("#age_max-0").blur()
    dialog.locator("#age_min-1").fill("65")
    dialog.locator("#age_max-1").fill("100")
    dialog.locator("#low-1").fill("135")
    dialog.locator("#high-1").fill("147")
    dialog.get_by_role("button", name="Save test").click()
    expect(dialog.get_by_role("alert")).to_have_text("No range covers female patients aged 100 and over.")
    assert_accessible(page)
    screenshot(page, SHOTS, "lab-catalog-edit-dialog")

    dialog.locator("#age_max-1").fill("200")
    dialog.get_by_label("Price").fill("6.20")
    dialog.get_by_role("button", name="Save test").click()
    expect(_toast(page, "Sodium saved.")).to_be_visible()
    expect(dialog).to_have_count(0)
    expect(row).to_contain_text("any 0-65: 133-146; any 65-200: 135-147")
    expect(row).to_contain_text("£6.20")
    assert db_value(url, "SELECT price_cents FROM lab_test WHERE code = 'NA'") == 620
    [(detail,)] = db_rows(url, "SELECT detail FROM audit_event WHERE action = 'lab_test.update' ORDER BY id")
    assert detail.startswith("NA: price £5.00 → £6.20; ranges [any 0-200: 133-146] → [any 0-65: 133-146; ")


def test_accounts_change_a_service_price_on_the_price_list(app_server, page):
    url = app_server.database_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in_to(page, app_server.url, "accounts@hms.example", "/accounts")
    _nav(page, "Prices").click()
    page.wait_for_url(f"{app_server.url}/accounts/prices")
    expect(page.get_by_role("heading", level=1, name="Prices")).to_be_visible()

    page.get_by_role("button", name="Add service").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Code").fill("ecg")
    dialog.get_by_label("Price").fill("35")
    dialog.get_by_label("Name").fill("Electrocardiogram (12-lead)")
    dialog.get_by_label("Department").select_option(label="Cardiology")
    dialog.get_by_role("button", name="Add service").click()
    expect(_toast(page, "Electrocardiogram (12-lead) added to the price list.")).to_be_visible()
    wait_for_db(url, "SELECT 1 FROM service_price WHERE code = 'ECG'")
    assert_accessible(page)
    screenshot(page, SHOTS, "prices-desk")

    page.get_by_label("Search prices").fill("electro")
    row = page.locator("tr[data-code='ECG']")
    expect(row).to_contain_text("£35.00")
    # Lab tests are kept by the laboratory: accounts see their price but cannot change it.
    page.get_by_label("Search prices").fill("sodium")
    expect(page.locator("tr[data-kind='lab']")).to_contain_text("Kept by its department")
    page.get_by_label("Search prices").fill("electro")

    page.get_by_role("button", name="Change price of Electrocardiogram (12-lead)").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New price").fill("thirty")
    dialog.get_by_role("button", name="Save price").click()
    expect(dialog.get_by_role("alert")).to_have_text("Enter the price as an amount like 120 or 120.50.")
    dialog.get_by_label("New price").fill("38.50")
    dialog.get_by_role("button", name="Save price").click()
    expect(_toast(page, "Charges already made keep their price.")).to_be_visible()
    expect(row).to_contain_text("£38.50")
    assert db_value(url, "SELECT price_cents FROM service_price WHERE code = 'ECG'") == 3850
    assert db_rows(url, "SELECT detail FROM audit_event WHERE action = 'service_price.update'") == [
        ("ECG: price £35.00 → £38.50",)]
    assert_accessible(page)
