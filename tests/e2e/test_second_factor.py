"""Two-factor login in the browser: admin requires it of doctors, a doctor enrols with the key
read off the page and logs in with a code, the admin resets it and lifts the requirement.

The codes are computed here with ``pyotp`` from the key the enrolment page shows, as an
authenticator app would.
"""

from __future__ import annotations

import re
import subprocess
import time

import pyotp
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    enter_code,
    form_alert,
    log_in,
    log_in_to,
    screenshot,
    user_id,
    wait_for_db,
)
from tests.e2e.server import BIN, ROOT, server_env

DOCTOR = "rohan.mehta@hms.example"
DOCTOR_NAME = "Dr. Rohan Mehta"


def _required(app_server, role: str) -> int:
    return db_value(app_server.database_url,
                    "SELECT second_factor_required FROM role_login_policy WHERE role = ?", (role,))


def _permissions_page(page, base_url: str) -> None:
    """Admin → Permissions (the admin is logged in)."""
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Permissions").click()
    page.wait_for_url(f"{base_url}/admin/permissions")
    expect(page.get_by_role("heading", level=2, name="Second factor at login")).to_be_visible()


def _next_code(secret: str, after_step: int) -> str:
    """A code of a step later than ``after_step`` (a code is accepted once only), computed from the
    key, as an authenticator would: the server accepts the steps either side of its own, so the
    step after the last one used is good at once, no wait for the clock to reach it."""
    step = max(after_step + 1, int(time.time()) // 30)
    assert step <= int(time.time()) // 30 + 1, f"step {step} is beyond the server's window"
    return pyotp.TOTP(secret).generate_otp(step)


def _last_step(app_server) -> int:
    return db_value(app_server.database_url, "SELECT last_used_step FROM second_factor WHERE user_id = ?",
                    (user_id(app_server.database_url, DOCTOR),)) or 0


def test_a_doctor_enrols_and_logs_in_with_a_code_and_admin_resets_it(app_server, new_context, screenshot_dir):
    base = app_server.url
    admin = new_context().new_page()
    try:
        log_in_to(admin, base, "admin@hms.example", "/admin")
        _permissions_page(admin, base)
        switch = admin.locator("#second-factor-doctor")
        expect(switch).to_have_attribute("aria-checked", "false")
        assert_accessible(admin)
        switch.click()
        expect(switch).to_have_attribute("aria-checked", "true")
        wait_for_db(app_server.database_url, "SELECT second_factor_required FROM role_login_policy "
                    "WHERE role = 'doctor'", until=lambda v: v == 1)

        # The doctor's password alone opens nothing: they set up an authenticator first.
        doctor = new_context().new_page()
        log_in(doctor, base, DOCTOR)
        expect(doctor.get_by_role("heading", level=1, name="Set up your authenticator")).to_be_visible()
        assert doctor.url.startswith(f"{base}/login")
        assert db_value(app_server.database_url, "SELECT count(*) FROM auth_session WHERE user_id = ?",
                        (user_id(app_server.database_url, DOCTOR),)) == 0
        qr = doctor.locator("#enrol-qr")
        expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
        secret = doctor.locator("#enrol-secret").inner_text().strip()
        assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
        assert_accessible(doctor)
        screenshot(doctor, screenshot_dir, "second-factor-enrol")

        enter_code(doctor, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
        expect(form_alert(doctor)).to_contain_text("That code is not right")
        enter_code(doctor, _next_code(secret, 0))
        expect(doctor.get_by_role("heading", level=1, name="Save your recovery codes")).to_be_visible()
        codes = [c.strip() for c in doctor.locator("#recovery-codes li").all_inner_texts()]
        assert len(codes) == 10
        assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", c) for c in codes), codes
        assert_accessible(doctor)
        screenshot(doctor, screenshot_dir, "second-factor-recovery-codes")
        doctor.get_by_role("button", name="I have saved my recovery codes").click()
        doctor.wait_for_url(f"{base}/doctor")
        doctor.get_by_role("button", name="Log out").click()
        doctor.wait_for_url(f"{base}/login")

        # The next login asks for a code; the one used at enrolment is refused, a fresh one works.
        used = _last_step(app_server)
        log_in(doctor, base, DOCTOR)
        expect(doctor.get_by_role("heading", level=1, name="Enter your code")).to_be_visible()
        assert_accessible(doctor)
        enter_code(doctor, pyotp.TOTP(secret).generate_otp(used))
        expect(form_alert(doctor)).to_contain_text("That code is not right")
        enter_code(doctor, _next_code(secret, used))
        doctor.wait_for_url(f"{base}/doctor")
        expect(doctor.locator("#user-name")).to_have_text(DOCTOR_NAME)
        stored = db_value(app_server.database_url, "SELECT secret FROM second_factor WHERE user_id = ?",
                          (user_id(app_server.database_url, DOCTOR),))
        assert secret not in stored

        # Admin resets the doctor's second factor (a lost phone): their session ends at once.
        admin.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users").click()
        admin.wait_for_url(f"{base}/admin/users")
        admin.get_by_label("Search users").fill("rohan")
        # The search answers after a pause; a question opened on the row before would go with the row.
        expect(admin.get_by_role("table", name="User accounts").locator("tbody tr")).to_have_count(1)
        admin.get_by_role("button", name=f"Reset second factor of {DOCTOR_NAME}").click()
        admin.get_by_role("alertdialog").get_by_role("button", name="Reset second factor").click()
        expect(admin.get_by_role("button", name=f"Reset second factor of {DOCTOR_NAME}")).to_have_count(0)
        assert db_value(app_server.database_url, "SELECT count(*) FROM second_factor WHERE user_id = ?",
                        (user_id(app_server.database_url, DOCTOR),)) == 0
        assert [a for (a,) in db_rows(app_server.database_url,
                                      "SELECT action FROM audit_event WHERE action = 'user.reset_second_factor' "
                                      "AND entity_id = ?", (str(user_id(app_server.database_url, DOCTOR)),))] == [
            "user.reset_second_factor"]

        # And lifts the requirement: the doctor's password is enough again.
        _permissions_page(admin, base)
        switch = admin.locator("#second-factor-doctor")
        switch.click()
        expect(switch).to_have_attribute("aria-checked", "false")
        wait_for_db(app_server.database_url, "SELECT second_factor_required FROM role_login_policy "
                    "WHERE role = 'doctor'", until=lambda v: v == 0)
        log_in_to(doctor, base, DOCTOR, "/doctor")
    finally:
        # The other journeys share this server and log doctors in with their password alone.
        subprocess.run([str(BIN / "hms"), "second-factor", "--not-required", "doctor", "--reset", DOCTOR],
                       env=server_env(app_server.data_dir, app_server.port), cwd=ROOT, check=True,
                       capture_output=True)
