"""The first login of a real hospital: ``hms init`` on an empty database, then the administrator
logs in with the one-time password it printed, sets up an authenticator (a second factor is
required of admins), chooses a new password, and lands on a dashboard that shows the hospital's
own name and settings and the getting-started checklist.

The server here runs on its own database, made by ``hms migrate`` and ``hms init`` alone: no demo.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    enter_code,
    log_in,
    screenshot,
    wait_ready,
)
from tests.e2e.server import BIN, ROOT, start_app

ADMIN = "head@harbour.example"
NAME = "Harbour General Hospital"
NEW_PASSWORD = "Harbour-Lights-2027"
SHOTS = Path("/tmp/shots/init")


@pytest.fixture(scope="module")
def hospital_server(tmp_path_factory):
    """The app on a database ``hms init`` made, and the one-time password it printed."""
    printed: dict[str, str] = {}

    def init_hospital(_data_dir: Path, env: dict[str, str]) -> None:
        subprocess.run([str(BIN / "hms"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        made = subprocess.run(
            [str(BIN / "hms"), "init", "--admin-email", ADMIN, "--admin-name", "Hana Harbour", "--name", NAME,
             "--timezone", "America/Halifax", "--locale", "en-CA", "--currency", "CAD"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        printed["password"] = re.search(r"one-time password: (\S+)", made.stdout).group(1)

    server = start_app(tmp_path_factory.mktemp("first-login"), prepare=init_hospital)
    yield server, printed["password"]
    server.stop()


def _code(secret: str, used_step: int) -> str:
    """A code for a step after ``used_step`` (each is accepted once), as an authenticator gives it."""
    step = max(used_step + 1, int(time.time()) // 30)
    return pyotp.TOTP(secret).generate_otp(step)


def test_the_first_admin_changes_the_password_enrols_and_sees_what_to_set_up(hospital_server, page, screenshot_dir):
    server, one_time = hospital_server
    base, url = server.url, server.database_url
    assert db_value(url, "SELECT count(*) FROM user") == 1
    assert db_value(url, "SELECT count(*) FROM medicine") == 0

    # The password alone opens nothing: the admin sets up an authenticator first.
    log_in(page, base, ADMIN, one_time)
    expect(page.get_by_role("heading", level=1, name="Set up your authenticator")).to_be_visible()
    secret = page.locator("#enrol-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert_accessible(page)
    enter_code(page, _code(secret, 0))
    expect(page.get_by_role("heading", level=1, name="Save your recovery codes")).to_be_visible()
    page.get_by_role("button", name="I have saved my recovery codes").click()

    # Then a new password, before anything else.
    page.wait_for_url(f"{base}/account/password")
    wait_ready(page)
    page.get_by_label("Current password").fill(one_time)
    page.locator("#field-new_password").fill(NEW_PASSWORD)
    page.locator("#field-new_password_confirm").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{base}/admin")
    wait_ready(page)
    assert db_value(url, "SELECT must_change_password FROM user WHERE email = ?", (ADMIN,)) == 0
    assert db_value(url, "SELECT count(*) FROM second_factor WHERE enrolled_at IS NOT NULL") == 1

    # The dashboard: the hospital's own name in the header, its settings, and what to set up.
    expect(page.get_by_role("banner").get_by_text(NAME).first).to_be_visible()
    expect(page.locator("#hospital-name")).to_have_text(NAME)
    expect(page.locator("#hospital-timezone")).to_have_text("America/Halifax")
    expect(page.locator("#hospital-currency")).to_have_text("CAD")
    expect(page.locator("#hospital-source")).to_contain_text("Set once by the hms init command")
    checklist = page.locator("#getting-started")
    expect(checklist.get_by_role("heading", level=2, name="Getting started")).to_be_visible()
    expect(checklist.get_by_role("listitem")).to_have_count(7)
    expect(checklist).to_contain_text("7 of 7 steps still to do")
    expect(page.locator("#setup-departments")).to_contain_text("0 active departments")
    expect(page.locator("#setup-departments").get_by_text("To do")).to_be_visible()
    assert_accessible(page)
    shot = screenshot(page, screenshot_dir, "admin-dashboard-new-hospital")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / "admin-dashboard-new-hospital-1280.png")

    # Each step links to where it is done; a department made there is counted on return.
    page.locator("#setup-departments").get_by_role("link", name="Add departments").click()
    page.wait_for_url(f"{base}/admin/departments")
    wait_ready(page)
    page.get_by_label("New department").fill("Emergency")
    page.get_by_role("button", name="Create department").click()
    expect(page.get_by_text("Department created.")).to_be_visible()
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{base}/admin")
    expect(page.locator("#setup-departments")).to_contain_text("1 active department")
    expect(page.locator("#setup-departments").get_by_text("Done")).to_be_visible()
    expect(page.locator("#getting-started")).to_contain_text("6 of 7 steps still to do")
    assert [a for (a,) in db_rows(url, "SELECT action FROM audit_event WHERE action LIKE 'hospital.%'")] == [
        "hospital.initialise"]
