"""Login failures, lockout, role guards, keyboard use of the login form, and logout."""

from __future__ import annotations

import hashlib
import re

from playwright.sync_api import expect

from hms_app.services.administration.auth import LOGIN_FAILED_MESSAGE
from tests.e2e.helpers import (
    DEMO_PASSWORD,
    db_value,
    form_alert,
    log_in,
    log_in_to,
    user_id,
    wait_for_db,
    wait_ready,
)

LOGIN_URL = re.compile(r"/login/?(\?.*)?$")

_FAILURES_OF = "SELECT count(*) FROM audit_event WHERE action = ? AND actor_email = ?"


def _sessions_of(app_server, email: str) -> int:
    return db_value(app_server.database_url,
                    'SELECT count(*) FROM auth_session s JOIN "user" u ON u.id = s.user_id WHERE u.email = ?',
                    (email,))


def test_wrong_password_and_unknown_email_get_one_message_and_no_session(app_server, page, new_context):
    email = "wei.zhang@patients.example"
    sessions_before = db_value(app_server.database_url, "SELECT count(*) FROM auth_session")

    log_in(page, app_server.url, email, "Not-the-password-1")
    wait_for_db(app_server.database_url, _FAILURES_OF, ("login.failed", email))
    expect(form_alert(page)).to_have_text(LOGIN_FAILED_MESSAGE)
    expect(page).to_have_url(LOGIN_URL)

    # A fresh tab, so the message seen cannot be the one left from the first try.
    other = new_context().new_page()
    unknown = "nobody.here@patients.example"
    log_in(other, app_server.url, unknown, DEMO_PASSWORD)
    wait_for_db(app_server.database_url, _FAILURES_OF, ("login.failed", unknown))
    expect(form_alert(other)).to_have_text(LOGIN_FAILED_MESSAGE)
    expect(other).to_have_url(LOGIN_URL)

    assert _sessions_of(app_server, email) == 0
    assert db_value(app_server.database_url, "SELECT count(*) FROM auth_session") == sessions_before
    assert db_value(app_server.database_url, 'SELECT failed_logins FROM "user" WHERE email = ?', (email,)) == 1
    # The password field keeps nothing in the address bar: the form never fell back to a GET.
    assert "password" not in page.url
    assert "password" not in other.url


def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_refused(app_server, page):
    email = "lucy.evans@patients.example"  # used by no other journey
    url = app_server.database_url
    log_in(page, app_server.url, email, "Wrong-password-0")
    wait_for_db(url, _FAILURES_OF, ("login.failed", email), until=lambda n: n == 1)
    for attempt in range(2, 6):
        page.fill("#login-password", f"Wrong-password-{attempt}")
        page.get_by_role("button", name="Log in").click()
        wait_for_db(url, _FAILURES_OF, ("login.failed", email), until=lambda n, a=attempt: n == a)
        expect(form_alert(page)).to_have_text(LOGIN_FAILED_MESSAGE)

    assert db_value(url, _FAILURES_OF, ("login.lockout", email)) == 1
    assert db_value(url, 'SELECT locked_until IS NOT NULL FROM "user" WHERE email = ?', (email,)) == 1

    page.fill("#login-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    wait_for_db(url, _FAILURES_OF, ("login.locked", email))
    expect(form_alert(page)).to_have_text(LOGIN_FAILED_MESSAGE)
    expect(page).to_have_url(LOGIN_URL)
    assert _sessions_of(app_server, email) == 0
    lockout = db_value(url, "SELECT detail FROM audit_event WHERE action = 'login.lockout' AND entity_id = ?",
                       (str(user_id(url, email)),))
    assert lockout == "locked for 15 minutes after 5 failures"


def test_patient_is_sent_home_from_staff_pages(app_server, page):
    log_in_to(page, app_server.url, "james.smith@patients.example", "/patient")
    for path in ("/admin", "/admin/users", "/doctor"):
        page.goto(f"{app_server.url}{path}")
        page.wait_for_url(f"{app_server.url}/patient")
        expect(page.get_by_role("heading", level=1, name="My dashboard")).to_be_visible()
        expect(page.get_by_role("heading", level=1, name="Administration")).to_have_count(0)


def test_visitor_without_session_is_sent_to_login(app_server, page):
    page.goto(f"{app_server.url}/admin")
    page.wait_for_url(LOGIN_URL)
    wait_ready(page)
    assert page.url.endswith("?next=/admin"), page.url
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    expect(page.get_by_text("Users per role")).to_have_count(0)


def test_visitor_opening_the_root_is_sent_to_login(app_server, page):
    page.goto(app_server.url)
    page.wait_for_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()


def test_after_login_the_visitor_returns_to_the_page_asked_for(app_server, page):
    page.goto(f"{app_server.url}/admin/audit")
    page.wait_for_url(LOGIN_URL)
    wait_ready(page)
    assert page.url.endswith("?next=/admin/audit"), page.url
    page.fill("#login-email", "admin@hms.example")
    page.fill("#login-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{app_server.url}/admin/audit")
    expect(page.get_by_role("heading", level=1, name="Audit trail")).to_be_visible()


def _focused(page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")


def test_login_form_works_from_the_keyboard(app_server, page):
    page.goto(f"{app_server.url}/login")
    wait_ready(page)
    page.keyboard.press("Tab")
    assert _focused(page) == "login-email"
    page.keyboard.type("accounts@hms.example")
    page.keyboard.press("Tab")
    assert _focused(page) == "login-password"
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Tab")
    assert _focused(page) == "Log in"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{app_server.url}/accounts")
    expect(page.get_by_role("heading", level=1, name="Accounts dashboard")).to_be_visible()


def test_logout_ends_the_session_on_the_server(app_server, page, context):
    url = app_server.database_url
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    token = next(c["value"] for c in context.cookies() if c["name"] == "hms_session")
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    session_id = db_value(url, "SELECT id FROM auth_session WHERE token_hash = ? AND revoked_at IS NULL",
                          (token_hash,))
    assert session_id is not None

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(LOGIN_URL)
    wait_for_db(url, "SELECT revoked_at FROM auth_session WHERE id = ?", (session_id,))
    assert db_value(url, "SELECT count(*) FROM audit_event WHERE action = 'logout' AND entity_id = ?",
                    (str(session_id),)) == 1
    assert not any(c["name"] == "hms_session" and c["value"] for c in context.cookies())

    page.go_back()
    page.wait_for_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()

    # Even with the old token put back (a copied cookie), the server refuses it.
    context.add_cookies([{"name": "hms_session", "value": token, "url": app_server.url}])
    page.goto(f"{app_server.url}/admin")
    page.wait_for_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
