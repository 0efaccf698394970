"""The admin brings patients and staff in from CSV files on /admin/import, in a real browser.

One journey: the template, an upload whose birth-date header HMS does not know, the column mapped
by hand, the check that lists the bad line, the import of the good lines, the report, then the
same file again (every good line unchanged), and a staff file.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.helpers import assert_accessible, db_rows, log_in_to, screenshot, wait_ready

ADMIN = "admin@hms.example"
PATIENTS = ("mrn,full_name,Birthday,sex,phone\r\n"
            "MRN-970001,Imogen Importwell,1975-03-02,female,+44 20 7946 0101\r\n"
            "MRN-970002,Oscar Importwell,yesterday,male,\r\n"
            "MRN-970003,Priya Importwell,1990-11-30,F,+44 20 7946 0103\r\n")
STAFF = "email,full_name,role\r\nnadia.importwell@hms.example,Nadia Importwell,lab\r\n"
SHOTS = Path(os.environ.get("HMS_IMPORT_SHOTS", "/tmp/shots/imports"))


def _toast(page, text: str) -> None:
    page.locator("[data-sonner-toast]").filter(has_text=text).first.wait_for()


def _shot(page, directory: Path, name: str) -> None:
    path = screenshot(page, directory, f"import-{name}")
    if SHOTS.parent.is_dir():
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(path, SHOTS / path.name)


def _upload(page, path: Path) -> None:
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    _toast(page, "File read")


def _report_rows(page):
    return page.get_by_role("region", name="What happened to each line").locator("tbody tr")


def _finished(page, text: str) -> None:
    """The job's card says it has ended, its bar full, with ``text`` among its counts."""
    job = page.locator("#import-job")
    expect(job.get_by_role("status")).to_contain_text(text)
    expect(job.get_by_text(re.compile(r"· (Done|Failed)$"))).to_be_visible()
    expect(job.get_by_role("progressbar", name="Import progress")).to_have_attribute("aria-valuenow", "100")


def test_admin_imports_patients_with_a_mapped_column_and_a_bad_line_then_again_and_staff(
        app_server, page, tmp_path, screenshot_dir):
    url = app_server.database_url
    log_in_to(page, app_server.url, ADMIN, "/admin")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Import data").click()
    page.wait_for_url(f"{app_server.url}/admin/import")
    wait_ready(page)
    expect(page.get_by_role("heading", level=1, name="Import data")).to_be_visible()
    _shot(page, screenshot_dir, "empty")

    # The template of the kind chosen: its header row and an example line.
    expect(page.get_by_label("What the file holds")).to_have_value("patients")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download template").click()
    assert download.value.suggested_filename == "patients-template.csv"
    header = download.value.path().read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:3] == ["mrn", "source_id", "full_name"]
    assert "birth_date" in header

    # The upload: "Birthday" is no name HMS knows, so birth date, required, is missing until mapped.
    patients = tmp_path / "patients.csv"
    patients.write_text(PATIENTS, encoding="utf-8")
    _upload(page, patients)
    expect(page.get_by_role("heading", name="Preview of patients.csv")).to_be_visible()
    expect(page.get_by_text("3 data lines", exact=False)).to_be_visible()
    first_lines = page.get_by_role("region", name="First lines of the file")
    expect(first_lines.locator("tbody tr")).to_have_count(3)
    expect(first_lines).to_contain_text("Oscar Importwell")
    birthday = page.get_by_label("Column for Birthday")
    expect(birthday).to_have_value("")
    expect(page.get_by_label("Column for mrn")).to_have_value("mrn")
    expect(page.get_by_role("alert").filter(has_text="birth_date")).to_be_visible()
    expect(page.get_by_role("button", name="Check (dry run)")).to_be_disabled()
    assert_accessible(page)
    birthday.select_option("birth_date")
    expect(page.get_by_role("alert").filter(has_text="birth_date")).to_have_count(0)
    expect(birthday).to_have_value("birth_date")
    _shot(page, screenshot_dir, "preview-mapped")

    # The check: the bad line by its number in the file (the header is line 1), nothing imported.
    page.get_by_role("button", name="Check (dry run)").click()
    _toast(page, "Checking every line")
    _finished(page, "1 with problems")
    page.get_by_label("Outcome").select_option("failed")
    expect(_report_rows(page)).to_have_count(1)
    bad = _report_rows(page).first
    expect(bad.locator("th")).to_have_text("3")
    expect(bad).to_contain_text("MRN-970002")
    expect(bad).to_contain_text("1980-04-23")  # the message shows the form a date must take
    assert db_rows(url, "SELECT mrn FROM patient_profile WHERE mrn LIKE 'MRN-9700%'") == []
    assert_accessible(page)
    _shot(page, screenshot_dir, "problems")

    # The good lines only; the mapping is still the one chosen.
    page.get_by_label("When a line has a problem").select_option("good")
    page.get_by_role("button", name="Import", exact=True).click()
    _toast(page, "Import started")
    _finished(page, "2 created")
    expect(page.locator("#import-job").get_by_role("status")).to_contain_text("1 with problems")
    expect(page.get_by_role("heading", name="Preview of patients.csv")).to_have_count(0)
    assert_accessible(page)
    _shot(page, screenshot_dir, "report")
    rows = db_rows(url, "SELECT p.mrn, u.full_name, p.birth_date, p.sex, p.phone FROM patient_profile p "
                        "JOIN \"user\" u ON u.id = p.user_id WHERE p.mrn LIKE 'MRN-9700%' ORDER BY p.mrn")
    assert rows == [("MRN-970001", "Imogen Importwell", "1975-03-02", "female", "+44 20 7946 0101"),
                    ("MRN-970003", "Priya Importwell", "1990-11-30", "female", "+44 20 7946 0103")]
    # The upload went with the import: no file kept, no upload waiting.
    assert db_rows(url, "SELECT id FROM import_job WHERE status = 'waiting'") == []

    # The same file again: every good line is recognised and left as it is.
    _upload(page, patients)
    page.get_by_label("Column for Birthday").select_option("birth_date")
    expect(page.get_by_role("button", name="Import", exact=True)).to_be_enabled()
    page.get_by_role("button", name="Import", exact=True).click()
    _toast(page, "Import started")
    _finished(page, "2 unchanged")
    expect(page.locator("#import-job").get_by_role("status")).to_contain_text("0 created, 0 updated")
    page.get_by_label("Outcome").select_option("unchanged")
    expect(_report_rows(page)).to_have_count(2)
    assert db_rows(url, "SELECT count(*) FROM patient_profile WHERE mrn LIKE 'MRN-9700%'") == [(2,)]

    # Staff: another kind, its own columns, all lines good.
    page.get_by_label("What the file holds").select_option("staff")
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF, encoding="utf-8")
    _upload(page, staff)
    expect(page.get_by_label("Column for role")).to_have_value("role")
    page.get_by_label("When a line has a problem").select_option("all")
    page.get_by_role("button", name="Import", exact=True).click()
    _finished(page, "1 created")
    assert db_rows(url, "SELECT full_name, role, is_active FROM \"user\" WHERE email = 'nadia.importwell@hms.example'"
                   ) == [("Nadia Importwell", "lab", 1)]

    # The history: newest first, each with its report.
    history = page.get_by_role("region", name="Past imports").locator("tbody tr")
    expect(history.first).to_contain_text("staff.csv")
    expect(history.filter(has_text="patients.csv")).to_have_count(3)
    _shot(page, screenshot_dir, "history")
    page.get_by_label("Search past imports").fill("staff")
    expect(history).to_have_count(1)
    page.get_by_label("Search past imports").fill("")
    expect(history.filter(has_text="patients.csv")).to_have_count(3)
    history.filter(has_text="Dry run").first.get_by_role("button", name=re.compile("Show report of import")).click()
    expect(page.get_by_role("heading", name=re.compile("Patients from patients.csv"))).to_be_visible()
