"""The link in a new account's confirmation message, opened in a browser, confirms the address.

A backend of its own with ``HMS_SMTP_URL`` pointing at an SMTP server started here (the page
the link opens is served by the backend, so no front end is built). The account is registered
through the service into the server's database; the app's own mail round sends the message.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from playwright.sync_api import expect

from hms_app import settings
from hms_app.db.engine import create_engine, session_scope
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed
from tests.e2e.helpers import assert_accessible, db_rows, screenshot
from tests.services.test_mail import Recorder
from tests.services.test_registration import FORM

EMAIL = "ines.moreau@example.org"
PASSWORD = "Lantern-Meadow-73"


def _login(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        with session_scope(engine=engine) as s:
            return auth.login(session=s, visitor=Anonymous("127.0.0.1"), email=EMAIL, password=PASSWORD).token
    finally:
        engine.dispose()


def _message_to(smtp: Recorder, address: str):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for message in smtp.messages:
            if message["To"] == address:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no message to {address}")


def test_the_link_in_the_message_confirms_the_account(mailing_server, mail_on, page, new_context, screenshot_dir,
                                                      monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_URL", mailing_server.url)
    engine = create_engine(mailing_server.database_url)
    try:
        with session_scope(engine=engine) as s:
            auth.register_patient(session=s, visitor=Anonymous("127.0.0.1"),
                                  form=replace(FORM, email=EMAIL, password=PASSWORD))
    finally:
        engine.dispose()
    with pytest.raises(LoginFailed, match="not confirmed"):
        _login(mailing_server.database_url)

    body = _message_to(mail_on, EMAIL).get_payload(decode=True).decode()
    [link] = re.findall(r"http\S+/confirm-email\?token=\S+", body)
    assert link.startswith(f"{mailing_server.url}/confirm-email?token=")

    # Opening the link changes nothing yet (a mail scanner may fetch it); the button confirms.
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    assert_accessible(page)
    screenshot(page, screenshot_dir, "confirm-email")
    phone = new_context(viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True).new_page()
    phone.goto(link)
    expect(phone.get_by_role("button", name="Confirm my email address")).to_be_visible()
    screenshot(phone, screenshot_dir, "confirm-email-phone")
    assert db_rows(mailing_server.database_url, 'SELECT email_confirmed_at FROM "user" WHERE email = ?',
                   (EMAIL,)) == [(None,)]
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", name="Your email address is confirmed")).to_be_visible()
    assert_accessible(page)
    [(confirmed_at, token_hash)] = db_rows(
        mailing_server.database_url, 'SELECT email_confirmed_at, email_confirm_token_hash FROM "user" WHERE email = ?',
        (EMAIL,))
    assert confirmed_at is not None
    assert token_hash is None
    assert _login(mailing_server.database_url)

    # The same link again: a plain refusal, no traceback.
    page.goto(link)
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    expect(page.get_by_text("not valid, or it has been used already")).to_be_visible()
