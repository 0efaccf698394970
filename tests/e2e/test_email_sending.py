"""The running app sends its outbox itself: no ``hms worker`` needs to be started.

A backend of its own (no browser is needed, so no front end is built), with ``HMS_SMTP_URL``
pointing at an SMTP server (aiosmtpd) started here and a one-second round; a message queued in
the app's database leaves once, and its row says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hms_app import settings
from hms_app.db.engine import create_engine, session_scope
from hms_app.services.messaging import mail
from tests.e2e.helpers import db_rows, user_id
from tests.e2e.server import AppServer, start_backend
from tests.services.test_mail import SENDER, Recorder, smtp  # noqa: F401  (the SMTP server fixture)

PATIENT = "liam.brown@patients.example"  # used by no other journey
LATER_PATIENT = "kwame.mensah@patients.example"


@pytest.fixture
def mailing_server(smtp, tmp_path) -> Iterator[AppServer]:  # noqa: F811  (smtp is the fixture imported above)
    server = start_backend(tmp_path, extra_env={"HMS_SMTP_URL": settings.SMTP_URL, "HMS_MAIL_INTERVAL": "1"})
    try:
        yield server
    finally:
        server.stop()


def _queue(database_url: str, patient: int, key: str) -> None:
    engine = create_engine(database_url)
    try:
        with session_scope(engine=engine) as session:
            mail.queue_email(session, user_id=patient, kind="lab.results_ready", event_key=key)
            session.commit()
    finally:
        engine.dispose()


def _to_our_patients(smtp) -> list[str]:  # noqa: F811
    """Whom the messages to this test's patients went to, in the order they left; the demo's
    day under way mails other patients (results, reminders) while the test runs."""
    return [m["To"] for m in smtp.messages if m["To"] in (PATIENT, LATER_PATIENT)]


def _wait_for_messages(smtp, count: int) -> None:  # noqa: F811
    deadline = time.monotonic() + 60
    while len(_to_our_patients(smtp)) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_the_app_sends_a_queued_message_once_without_a_worker(mailing_server, smtp):  # noqa: F811
    patient = user_id(mailing_server.database_url, PATIENT)
    _queue(mailing_server.database_url, patient, f"lab.results_ready:sending-{patient}")
    _wait_for_messages(smtp, 1)

    # A message queued after the first left goes out in a later round. Each round sends what is
    # due oldest first, so a second copy of the first message would have left before it.
    later = user_id(mailing_server.database_url, LATER_PATIENT)
    _queue(mailing_server.database_url, later, f"lab.results_ready:sending-{later}")
    _wait_for_messages(smtp, 2)

    assert _to_our_patients(smtp) == [PATIENT, LATER_PATIENT]
    assert SENDER in smtp.messages[0]["From"]
    assert db_rows(mailing_server.database_url, "SELECT status, attempts FROM email_outbox WHERE user_id = ?",
                   (patient,)) == [("sent", 1)]
