"""The demo hospital as a newcomer meets it: every role lands on work in progress (issue 16, item 19).

The browser suite's server loads the demo as `make run` does, the day under way included
(`hms_app/operations/demo_day.py`); these journeys only read, so they leave it as it was.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from hms_app.operations import demo_day
from tests.e2e.helpers import log_in_to, screenshot, wait_ready

FIRST_PATIENT = "sofia.rossi@patients.example"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _row(page, text: str):
    return page.locator("tbody tr").filter(has_text=text)


def test_the_first_patient_finds_visits_results_medicines_and_a_bill(app_server, new_context, screenshot_dir):
    page = new_context(**PHONE).new_page()
    log_in_to(page, app_server.url, FIRST_PATIENT, "/patient")
    screenshot(page, screenshot_dir, "demo-day-patient-dashboard-phone")

    page.goto(f"{app_server.url}/patient/appointments")
    wait_ready(page)
    expect(_row(page, "Review of the heart tests")).to_contain_text(re.compile("confirmed", re.I))
    expect(_row(page, "Chest pain when climbing stairs")).to_contain_text(re.compile("completed", re.I))
    screenshot(page, screenshot_dir, "demo-day-patient-appointments-phone")

    page.goto(f"{app_server.url}/patient/results")
    wait_ready(page)
    expect(_row(page, "Cholesterol (total)")).to_contain_text("4.1")
    expect(_row(page, "Troponin")).to_contain_text("Awaiting review by your doctor")
    expect(_row(page, "Troponin")).not_to_contain_text("38")
    screenshot(page, screenshot_dir, "demo-day-patient-results-phone")

    page.goto(f"{app_server.url}/patient/prescriptions")
    wait_ready(page)
    expect(page.get_by_text(re.compile("partly dispensed", re.I)).first).to_be_visible()
    expect(page.get_by_text(re.compile("Atorvastatin")).first).to_be_visible()

    page.goto(f"{app_server.url}/patient/invoices")
    wait_ready(page)
    expect(page.get_by_text(re.compile("partly paid", re.I)).first).to_be_visible()
    screenshot(page, screenshot_dir, "demo-day-patient-invoices-phone")


def test_the_lab_and_the_pharmacy_start_on_waiting_work(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, "lab@hms.example", "/lab")
    page.goto(f"{app_server.url}/lab/worklist")
    wait_ready(page)
    stat = _row(page, "Haemoglobin").filter(has_text="Ana Silva")
    expect(stat).to_contain_text(re.compile("stat", re.I))
    expect(_row(page, "HbA1c").filter(has_text="Sofia Rossi")).to_contain_text(re.compile("in progress", re.I))
    screenshot(page, screenshot_dir, "demo-day-lab-worklist")

    page.context.clear_cookies()
    log_in_to(page, app_server.url, "pharmacy@hms.example", "/pharmacy")
    page.goto(f"{app_server.url}/pharmacy/queue")
    wait_ready(page)
    expect(_row(page, "Ana Silva")).to_contain_text(re.compile("issued", re.I))
    expect(_row(page, "Sofia Rossi")).to_contain_text(re.compile("partly dispensed", re.I))
    screenshot(page, screenshot_dir, "demo-day-pharmacy-queue")


def test_the_doctor_and_accounts_start_on_the_day(app_server, page, screenshot_dir):
    log_in_to(page, app_server.url, "amelia.hart@hms.example", "/doctor")
    for patient, _hour, _minute, _reason in demo_day.TODAYS_CLINIC:  # today's clinic on the desk
        expect(page.get_by_text(patient).first).to_be_visible()
    screenshot(page, screenshot_dir, "demo-day-doctor-desk")
    page.goto(f"{app_server.url}/doctor/results")
    wait_ready(page)
    expect(_row(page, "Troponin")).to_contain_text("Sofia Rossi")
    page.goto(f"{app_server.url}/doctor/appointments")
    wait_ready(page)
    expect(page.get_by_text("Liam Brown").first).to_be_visible()  # a request to answer
    screenshot(page, screenshot_dir, "demo-day-doctor-appointments")

    page.context.clear_cookies()
    log_in_to(page, app_server.url, "accounts@hms.example", "/accounts")
    page.goto(f"{app_server.url}/accounts/invoices")
    wait_ready(page)
    expect(_row(page, "Sofia Rossi").first).to_be_visible()
