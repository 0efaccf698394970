"""The running app sends its outbox itself: no ``hms worker`` needs to be started.

A server of its own, with ``HMS_SMTP_URL`` pointing at an SMTP server (aiosmtpd) started here
and a one-second round; a message queued in the app's database leaves once, and its row says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hms_app import settings
from hms_app.db.engine import create_engine, session_scope
from hms_app.services.messaging import mail
from tests.e2e.helpers import db_value, user_id
from tests.e2e.server import AppServer, start_app
from tests.services.test_mail import SENDER, Recorder, smtp  # noqa: F401  (the SMTP server fixture)

PATIENT = "liam.brown@patients.example"  # used by no other journey


@pytest.fixture
def mailing_server(smtp, tmp_path) -> Iterator[AppServer]:  # noqa: F811  (smtp is the fixture imported above)
    server = start_app(tmp_path, extra_env={"HMS_SMTP_URL": settings.SMTP_URL, "HMS_MAIL_INTERVAL": "1"})
    try:
        yield server
    finally:
        server.stop()


def test_the_app_sends_a_queued_message_once_without_a_worker(mailing_server, smtp):  # noqa: F811
    patient = user_id(mailing_server.database_url, PATIENT)
    engine = create_engine(mailing_server.database_url)
    try:
        with session_scope(engine=engine) as session:
            mail.queue_email(session, user_id=patient, kind="lab.results_ready", event_key=f"lab.results_ready:sending-{patient}")
            session.commit()
    finally:
        engine.dispose()

    deadline = time.monotonic() + 60
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # three more rounds: a second copy would have left by now

    assert [m["To"] for m in smtp.messages] == [PATIENT]
    assert SENDER in smtp.messages[0]["From"]
    assert db_value(mailing_server.database_url, "SELECT status FROM email_outbox WHERE user_id = ?",
                    (patient,)) == "sent"
