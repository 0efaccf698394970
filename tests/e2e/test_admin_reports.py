"""The admin's reports: charts for a date range, a refused range, a CSV download."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from playwright.sync_api import expect

from hms_app.services.core.localtime import local_today
from tests.e2e.helpers import (
    assert_accessible,
    db_value,
    expect_chart_drawn,
    form_alert,
    log_in_to,
    screenshot,
    wait_for_db,
)

REPORTS = ["appointments", "utilisation", "lab", "pharmacy", "new-patients"]


def test_admin_reads_the_reports_for_a_chosen_range_and_exports_one(app_server, page, screenshot_dir):
    today = local_today()
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Reports").click()
    page.wait_for_url(f"{app_server.url}/admin/reports")
    expect(page.get_by_role("heading", level=1, name="Reports")).to_be_visible()

    start_field = page.get_by_label("From (required)", exact=True)
    end_field = page.get_by_label("To (required)", exact=True)

    # The last 30 days by default, each report with its chart.
    expect(start_field).to_have_value((today - timedelta(days=29)).isoformat())
    expect(end_field).to_have_value(today.isoformat())
    expect(page.locator("#report-range")).to_contain_text("30 days, charted per day")
    for key in REPORTS:
        expect(page.locator(f"#report-{key} .js-plotly-plot").first).to_be_visible()
    # The demo's month holds appointments, doctors' hours, lab results, stock and new patients.
    for chart in page.locator(".report-chart").all():
        expect_chart_drawn(chart)

    # About half a year up to the demo's coming appointments: charted per month.
    start, end = today - timedelta(days=180), today + timedelta(days=14)
    start_field.fill(start.isoformat())
    end_field.fill(end.isoformat())
    page.get_by_role("button", name="Show reports").click()
    expect(page.locator("#report-range")).to_contain_text(f"{(end - start).days + 1} days, charted per month")
    expect(start_field).to_have_value(start.isoformat())
    for key in REPORTS:
        expect(page.locator(f"#report-{key} .js-plotly-plot").first).to_be_visible()
    expect(page.locator("#report-appointments .js-plotly-plot")).to_have_count(2)
    appointments = page.get_by_role("table", name="Appointments per department and status in the range")
    expect(appointments.get_by_role("rowheader", name="Cardiology")).to_be_visible()
    expect(page.get_by_role("table", name="Slots available and booked per doctor in the range")
           .get_by_role("rowheader", name="Dr. Amelia Hart")).to_be_visible()
    # The demo's day under way has results (Sofia Rossi's cholesterol and troponin); the lab
    # journeys, when they ran first in this server, add more.
    resulted = db_value(app_server.database_url, "SELECT t.name || ' (' || t.code || ')' FROM lab_result r "
                        "JOIN lab_order o ON o.id = r.order_id JOIN lab_test t ON t.id = o.test_id ORDER BY r.id LIMIT 1")
    expect(page.locator("#report-lab").get_by_role("rowheader", name=resulted).first).to_be_visible()
    assert_accessible(page)
    screenshot(page, screenshot_dir, "admin-reports")

    export = page.get_by_role("button", name="Export CSV of appointments by department and status")
    with page.expect_download() as download_info:
        export.click()
    download = download_info.value
    assert download.suggested_filename == f"appointments-{start.isoformat()}-to-{end.isoformat()}.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert rows[0] == ["Period", "Department", "Status", "Appointments"]
    assert any(row[1] == "Cardiology" for row in rows[1:]), rows
    wait_for_db(app_server.database_url, "SELECT count(*) FROM audit_event WHERE action = 'report.export' "
                "AND entity_id = 'appointments' AND detail LIKE ?", (f"{start.isoformat()}..{end.isoformat()};%",))

    # A range the other way round is refused where the form is, and the reports stay as they were.
    start_field.fill(today.isoformat())
    end_field.fill((today - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Show reports").click()
    expect(form_alert(page)).to_have_text("The start date must not be after the end date.")
    expect(page.locator("#report-range")).to_contain_text(f"{(end - start).days + 1} days, charted per month")
    assert_accessible(page)
