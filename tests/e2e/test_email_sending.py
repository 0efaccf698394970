"""The running app sends its outbox itself: no ``hms worker`` needs to be started.

The run's mailing backend (``tests/e2e/conftest.py``: no browser is needed, so no front end is
built), with ``HMS_SMTP_URL`` pointing at an SMTP server (aiosmtpd) and a one-second round; a message queued in
the app's database leaves once, and its row says so.
"""

from __future__ import annotations

import time

from hms_app.db.engine import create_engine, session_scope
from hms_app.services.messaging import mail
from tests.e2e.helpers import db_rows, user_id
from tests.e2e.server import AppServer
from tests.services.test_mail import SENDER, Recorder

PATIENT = "liam.brown@patients.example"  # used by no other journey
LATER_PATIENT = "kwame.mensah@patients.example"


def _queue(database_url: str, patient: int, key: str) -> None:
    engine = create_engine(database_url)
    try:
        with session_scope(engine=engine) as session:
            mail.queue_email(session, user_id=patient, kind="lab.results_ready", event_key=key)
            session.commit()
    finally:
        engine.dispose()


def _to_our_patients(smtp: Recorder) -> list[str]:
    """Whom the messages to this test's patients went to, in the order they left; the demo's
    day under way mails other patients (results, reminders) while the test runs."""
    return [m["To"] for m in smtp.messages if m["To"] in (PATIENT, LATER_PATIENT)]


def _wait_for_messages(smtp: Recorder, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(_to_our_patients(smtp)) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_the_app_sends_a_queued_message_once_without_a_worker(mailing_server: AppServer, mail_on: Recorder):
    smtp = mail_on
    patient = user_id(mailing_server.database_url, PATIENT)
    _queue(mailing_server.database_url, patient, f"lab.results_ready:sending-{patient}")
    _wait_for_messages(smtp, 1)

    # A message queued after the first left goes out in a later round. Each round sends what is
    # due oldest first, so a second copy of the first message would have left before it.
    later = user_id(mailing_server.database_url, LATER_PATIENT)
    _queue(mailing_server.database_url, later, f"lab.results_ready:sending-{later}")
    _wait_for_messages(smtp, 2)

    assert _to_our_patients(smtp) == [PATIENT, LATER_PATIENT]
    assert all(SENDER in m["From"] for m in smtp.messages if m["To"] in (PATIENT, LATER_PATIENT))
    assert db_rows(mailing_server.database_url, "SELECT status, attempts FROM email_outbox WHERE user_id = ?",
                   (patient,)) == [("sent", 1)]
