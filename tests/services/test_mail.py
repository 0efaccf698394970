"""E-mail through the outbox, delivered to a real SMTP server (aiosmtpd) started here.

What must hold: each event is mailed exactly once, in the event's own transaction; the texts
carry no clinical content and no amounts; a failing server leads to retries and never to a
second copy; reminders go out once, 24 hours ahead, and not to a patient who turned them off.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus, Role
from hms_app.db.models import EmailOutbox, User
from hms_app.db.types import utcnow
from hms_app.services.booking import appointments
from hms_app.services.core.errors import PermissionDenied, ValidationError
from hms_app.services.laboratory import lab
from hms_app.services.messaging import mail
from tests.conftest import DEMO_EMAIL, login_as
from tests.services.appointment_helpers import call, insert_appointment, user_id
from tests.services.billing_helpers import issued
from tests.services.helpers import audit_events
from tests.services.lab_helpers import (
    open_visit,
    order,
    running,
    use_private_data_dir,
    with_reference_data,
)

PATIENT = DEMO_EMAIL[Role.PATIENT]
OTHER_PATIENT = "james.smith@patients.example"
SENDER = "no-reply@hospital.example"


class Recorder:
    """An SMTP handler that keeps what it receives; it can refuse the first ``refuse`` messages."""

    def __init__(self, refuse: int = 0) -> None:
        self.messages: list[Message] = []
        self.refuse = refuse
        self.tries = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's hook name)
        with self.lock:
            self.tries += 1
            if self.refuse > 0:
                self.refuse -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch) -> Iterator[Recorder]:
    recorder = Recorder()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setattr(settings, "SMTP_URL", f"smtp://127.0.0.1:{port}?from={SENDER}")
        yield recorder
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


def _deliver(engine, *, now=utcnow) -> mail.DeliveryReport:
    return mail.deliver_due(lambda: session_scope(engine=engine), mail.SmtpTransport(settings.SMTP_URL),
                            sender=SENDER, now=now)


def _outbox(engine) -> list[EmailOutbox]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(EmailOutbox).order_by(EmailOutbox.id)).scalars())


def _requested(engine, patient_id: int, doctor_email: str, days: int) -> int:
    starts = (utcnow() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return insert_appointment(engine, patient_id=patient_id, doctor_id=user_id(engine, doctor_email),
                              starts_at=starts, status=AppointmentStatus.REQUESTED)


def _body(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def test_each_event_is_mailed_once_with_no_clinical_content(seeded, actors, smtp):
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    confirmed = _requested(seeded, patient_id, doctor.email, 10)
    declined = _requested(seeded, patient_id, doctor.email, 11)
    cancelled = _requested(seeded, patient_id, doctor.email, 12)
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=confirmed)
    call(seeded, appointments.decline_appointment, actor=doctor, appointment_id=declined,
         reason="Suspected melanoma needs dermatology")
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=cancelled)
    call(seeded, appointments.cancel_appointment, actor=doctor, appointment_id=cancelled,
         reason="Chemotherapy clinic moved")
    invoice_id = issued(seeded, actors[Role.ACCOUNTS], patient_id)
    hospital = with_reference_data(seeded)
    visit = open_visit(hospital, doctor, patient_id)
    order_id = running(hospital, actors[Role.LAB], order(hospital, doctor, visit, "HGB"))
    entered = call(hospital, lab.enter_result, actor=actors[Role.LAB], order_id=order_id, value="6.1",
                   comment="HIV positive")
    call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id)  # critical: mailed on release

    assert sorted(row.event_key for row in _outbox(seeded)) == sorted([
        f"appointment.confirmed:{confirmed}", f"appointment.declined:{declined}",
        f"appointment.confirmed:{cancelled}", f"appointment.cancelled:{cancelled}",
        f"invoice.issued:{invoice_id}", f"lab.results_ready:{order_id}"])
    report = _deliver(seeded)
    assert report == mail.DeliveryReport(sent=6)
    assert _deliver(seeded) == mail.DeliveryReport()  # nothing twice

    assert len(smtp.messages) == 6
    assert {m["To"] for m in smtp.messages} == {PATIENT}
    assert len({m["Message-ID"] for m in smtp.messages}) == 6
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == sorted(["Your appointment is confirmed", "Your appointment is confirmed",
                               "About your appointment request", "Your appointment has been cancelled",
                               "Something is waiting for you", "Something is waiting for you"])
    forbidden = ["melanoma", "dermatology", "chemotherapy", "hiv", "haemoglobin", "hgb", "6.1", "cardiology",
                 "amelia", "hart", "£", "gbp", "invoice inv-", "diagnos"]
    for message in smtp.messages:
        text = (message["Subject"] + "\n" + _body(message)).lower()
        assert f"{settings.PUBLIC_URL}/login".lower() in text
        assert not [word for word in forbidden if word in text], text
    assert {row.status for row in _outbox(seeded)} == {"sent"}


def test_each_message_is_written_in_its_recipients_language(seeded, actors, smtp):
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    with session_scope(engine=seeded) as s:
        s.get(User, patient_id).language = "es"
        s.commit()
    starts = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 in London
    appointment_id = insert_appointment(seeded, patient_id=patient_id, doctor_id=user_id(seeded, doctor.email),
                                        starts_at=starts, status=AppointmentStatus.REQUESTED)
    call(seeded, appointments.confirm_appointment, actor=doctor, appointment_id=appointment_id)  # the doctor's English
    assert _deliver(seeded) == mail.DeliveryReport(sent=1)
    (message,) = smtp.messages
    assert str(make_header(decode_header(message["Subject"]))) == "Su cita está confirmada"
    body = _body(message)
    assert body.startswith("Hola:")
    assert "mar, 4 mar 2031, 10:00" in body  # the date in Spanish too
    assert "Your appointment" not in body


def test_a_failing_server_leads_to_retries_and_one_copy(seeded, actors, smtp):
    smtp.refuse = 2
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    clock = [utcnow()]

    def now() -> datetime:
        return clock[0]

    assert _deliver(seeded, now=now) == mail.DeliveryReport(retrying=1)
    (row,) = _outbox(seeded)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.last_error
    assert _deliver(seeded, now=now) == mail.DeliveryReport()  # not due yet: waits before trying again
    clock[0] += timedelta(minutes=1)
    assert _deliver(seeded, now=now) == mail.DeliveryReport(retrying=1)
    clock[0] += timedelta(minutes=2)
    assert _deliver(seeded, now=now) == mail.DeliveryReport(sent=1)
    clock[0] += timedelta(hours=2)
    assert _deliver(seeded, now=now) == mail.DeliveryReport()
    assert smtp.tries == 3
    assert len(smtp.messages) == 1
    (row,) = _outbox(seeded)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")


def test_a_message_that_keeps_failing_is_given_up_after_the_last_attempt(seeded, actors, smtp):
    smtp.refuse = 100
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    clock = [utcnow()]
    for _ in range(mail.MAX_ATTEMPTS + 2):
        _deliver(seeded, now=lambda: clock[0])
        clock[0] += timedelta(hours=2)
    (row,) = _outbox(seeded)
    assert (row.status, row.attempts) == ("failed", mail.MAX_ATTEMPTS)
    assert smtp.tries == mail.MAX_ATTEMPTS
    assert smtp.messages == []


def test_workers_running_at_once_send_each_message_once(seeded, actors, smtp):
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    for days in range(10, 16):
        call(seeded, appointments.confirm_appointment, actor=doctor,
             appointment_id=_requested(seeded, patient_id, doctor.email, days))
    reports: list[mail.DeliveryReport] = []
    workers = [threading.Thread(target=lambda: reports.append(_deliver(seeded))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(r.sent for r in reports) == 6
    assert len(smtp.messages) == 6
    assert len({m["Message-ID"] for m in smtp.messages}) == 6


def test_a_send_cut_short_is_not_repeated(seeded, actors, smtp):
    """A worker that stopped between claiming a row and recording the outcome may have sent it."""
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    with seeded.begin() as conn:
        conn.execute(sa.update(EmailOutbox).values(status="sending", attempts=1,
                                                   locked_until=utcnow() - timedelta(seconds=1)))
    assert _deliver(seeded) == mail.DeliveryReport()
    (row,) = _outbox(seeded)
    assert row.status == "failed"
    assert "may have been sent" in row.last_error
    assert smtp.messages == []


def test_reminders_go_once_a_day_ahead_and_not_to_who_turned_them_off(seeded, actors, smtp):
    doctor = actors[Role.DOCTOR]
    patient = actors[Role.PATIENT]
    other_id = user_id(seeded, OTHER_PATIENT)
    soon = (utcnow() + timedelta(hours=20)).replace(second=0, microsecond=0)
    mine = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id, starts_at=soon)
    insert_appointment(seeded, patient_id=other_id, doctor_id=doctor.user_id, starts_at=soon + timedelta(hours=1))
    insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id,
                       starts_at=soon + timedelta(days=3))
    insert_appointment(seeded, patient_id=patient.user_id, doctor_id=doctor.user_id,
                       starts_at=soon + timedelta(hours=2), status=AppointmentStatus.REQUESTED)
    call(seeded, mail.choose_email_reminders, actor=actors[Role.PATIENT], wanted=True)
    call(seeded, mail.choose_email_reminders, actor=login_as(seeded, OTHER_PATIENT), wanted=False)

    with session_scope(engine=seeded) as s:
        assert mail.queue_reminders(s) == 1
    with session_scope(engine=seeded) as s:
        assert mail.queue_reminders(s) == 0
    assert [r.event_key for r in _outbox(seeded)] == [f"appointment.reminder:{mine}:{int(soon.timestamp())}"]
    assert _deliver(seeded) == mail.DeliveryReport(sent=1)
    (message,) = smtp.messages
    assert message["Subject"] == "Reminder: your appointment tomorrow"
    assert message["To"] == PATIENT
    assert [e.detail for e in audit_events(seeded, action="email.preference")] == ["reminders on", "reminders off"]


def test_with_no_smtp_url_nothing_is_queued(seeded, actors, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_URL", "")
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    assert _outbox(seeded) == []
    status = call(seeded, mail.mail_status, actor=actors[Role.ADMIN])
    assert (status.enabled, status.server) == (False, "")


def test_the_admin_sees_whether_mail_is_on_and_the_outbox_counts(seeded, actors, smtp):
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    status = call(seeded, mail.mail_status, actor=actors[Role.ADMIN])
    assert status.enabled
    assert status.server.startswith("127.0.0.1:")
    assert (status.waiting, status.sent, status.failed) == (1, 0, 0)
    _deliver(seeded)
    assert call(seeded, mail.mail_status, actor=actors[Role.ADMIN]).sent == 1


@pytest.mark.parametrize("role", [Role.ACCOUNTS, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.PATIENT])
def test_only_admin_sees_the_mail_status(seeded, actors, role):
    with pytest.raises(PermissionDenied):
        call(seeded, mail.mail_status, actor=actors[role])


def test_the_reminder_choice_must_be_yes_or_no(seeded, actors):
    for wanted in ("no", None, 0):
        with pytest.raises(ValidationError):
            call(seeded, mail.choose_email_reminders, actor=actors[Role.PATIENT], wanted=wanted)
    assert call(seeded, mail.my_email_reminders, actor=actors[Role.PATIENT]) is True


def test_the_smtp_url_password_is_never_shown():
    assert mail.safe_server("smtp://user:secret@mail.example:587?from=a@b.example") == "mail.example:587"


def test_an_unreachable_server_is_a_retry_not_a_crash(seeded, actors, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_URL", "smtp://127.0.0.1:9")
    doctor, patient_id = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    call(seeded, appointments.confirm_appointment, actor=doctor,
         appointment_id=_requested(seeded, patient_id, doctor.email, 10))
    started = time.monotonic()
    assert _deliver(seeded) == mail.DeliveryReport(retrying=1)
    assert time.monotonic() - started < 30
