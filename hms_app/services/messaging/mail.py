"""E-mail: an outbox filled in the same transaction as the event, sent later by ``hms worker``.

A service that confirms, cancels or declines an appointment, enters a lab result or issues an
invoice calls ``queue_email`` in its own transaction: the message exists if and only if the
event does. ``deliver_due`` (the worker) claims one row at a time with a conditional update,
sends it, and marks it sent; a failed send is retried later with growing pauses. Each event
has a unique key, so it is queued at most once, and a row is sent at most once: a row whose
worker stopped between claiming and recording the outcome is not sent again (it may have gone
out) but marked failed for the admin to see.

The texts name no diagnosis, test, result, doctor, department or amount: only that something
is waiting, and a link to log in. Each message is written in its recipient's language
(``User.language``; the hospital's when they have chosen none), its date included.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import AppointmentStatus, Permission
from hms_app.db.models import Appointment, EmailOutbox, EmailPreference, User
from hms_app.db.types import utcnow
from hms_app.services.core import audit, emails
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _, use_language
from hms_app.services.core.localtime import format_day_and_time

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
REMINDER_AHEAD = timedelta(hours=24)


def _retry_pause(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... at most an hour between tries."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


# --- the texts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    subject: str
    lead: str
    link: str


TEMPLATES = {
    "appointment.confirmed": Template(N_("Your appointment is confirmed"),
                                      N_("Your appointment on {when} is confirmed."), "/patient/appointments"),
    "appointment.cancelled": Template(N_("Your appointment has been cancelled"),
                                      N_("Your appointment on {when} has been cancelled."), "/patient/appointments"),
    "appointment.declined": Template(N_("About your appointment request"),
                                     N_("There is news about your appointment request for {when}."),
                                     "/patient/appointments"),
    "appointment.reminder": Template(N_("Reminder: your appointment tomorrow"),
                                     N_("This is a reminder of your appointment on {when}."), "/patient/appointments"),
    "lab.results_ready": Template(N_("Something is waiting for you"), N_("New results are waiting for you."),
                                  "/patient/results"),
    "invoice.issued": Template(N_("Something is waiting for you"), N_("A new invoice is waiting for you."),
                               "/patient/invoices"),
}
"""Subject and lead of each message, marked here and translated as the message is written."""


ACCOUNT_TEMPLATES = {
    "account.confirm": Template(
        N_("Confirm your email address"),
        N_("An account at {hospital} was made with this email address. To confirm that the address is "
           "yours, open this link within {hours} hours; then log in:\n\n{link}\n\n"
           "If you did not ask for an account, ignore this message: without the link the account cannot "
           "be used."), "/confirm-email"),
    "account.registration_attempt": Template(
        N_("Someone tried to register with your email address"),
        N_("Someone tried to make a new account at {hospital} with your email address. Your account is "
           "unchanged. If it was you, log in here; if you have forgotten your password, ask the front desk "
           "to reset it:\n\n{link}\n\nIf it was not you, you need do nothing."), "/login"),
    "account.lookalike_attempt": Template(
        N_("Someone tried to register with an address like yours"),
        N_("Someone tried to make a new account at {hospital} with an email address that looks like yours "
           "but is not the same. It was refused, and your account is unchanged. Be wary of messages that "
           "seem to come from us about it. Your account:\n\n{link}\n\nYou need do nothing."), "/login"),
}
"""Messages about an account itself. They name no address but the recipient's own (not the look-alike
that was tried), and the only secret, a confirmation link, is wiped from the outbox once sent."""
_SENT_WIPES = frozenset({"account.confirm"})


def render_account(kind: str, *, token: str = "") -> tuple[str, str]:
    """Subject and plain-text body of a message about the account (``ACCOUNT_TEMPLATES``), in the
    current language."""
    template = ACCOUNT_TEMPLATES[kind]
    link = f"{settings.PUBLIC_URL}{template.link}" + (f"?token={token}" if token else "")
    lead = _(template.lead).format(hospital=settings.HOSPITAL_NAME, hours=f"{settings.EMAIL_CONFIRM_HOURS:g}",
                                   link=link)
    hello = _("Hello,")
    return _(template.subject), f"{hello}\n\n{lead}\n\n{settings.HOSPITAL_NAME}\n"


def render(kind: str, *, when: datetime | None = None) -> tuple[str, str]:
    """Subject and plain-text body of a message of ``kind``, in the current language."""
    template = TEMPLATES[kind]
    hello = _("Hello,")
    lead = _("{lead} Log in to see the details:").format(lead=_(template.lead).format(when=format_day_and_time(when)))
    privacy = _("For your privacy this e-mail holds no medical or payment details.")
    body = (
        f"{hello}\n\n"
        f"{lead}\n\n"
        f"{settings.PUBLIC_URL}/login?next={template.link}\n\n"
        f"{privacy}\n\n"
        f"{settings.HOSPITAL_NAME}\n"
    )
    return _(template.subject), body


# --- queuing, in the event's transaction ------------------------------------------------


def enabled() -> bool:
    return bool(settings.SMTP_URL)


def reminders_wanted(session: Session, user_id: int) -> bool:
    preference = session.get(EmailPreference, user_id)
    return preference is None or preference.reminders


def queue_email(session: Session, *, user_id: int, kind: str, event_key: str, when: datetime | None = None) -> None:
    """Add a message to the outbox in the caller's transaction; nothing if e-mail is off.

    ``event_key`` names the event (``appointment.confirmed:12``): a second call with the same
    key adds nothing, so an event is mailed at most once.
    """
    if not enabled():
        return
    _queue(session, user_id=user_id, kind=kind, event_key=event_key, text=lambda: render(kind, when=when))


def queue_account_email(session: Session, *, user_id: int, kind: str, event_key: str, token: str = "") -> None:
    """Add a message about the account (``ACCOUNT_TEMPLATES``) to the outbox, in the caller's
    transaction; nothing if e-mail is off. ``token`` goes into a confirmation link."""
    if not enabled():
        return
    _queue(session, user_id=user_id, kind=kind, event_key=event_key, text=lambda: render_account(kind, token=token))


def _queue(session: Session, *, user_id: int, kind: str, event_key: str,
           text: Callable[[], tuple[str, str]]) -> None:
    """Add the message ``text`` writes (subject and body), written in the recipient's language."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or emails.is_placeholder(user.email):
        return  # a placeholder address (an imported person who came without one) can receive nothing
    with use_language(user.language):
        subject, body = text()
    now = utcnow()
    values = {"user_id": user_id, "kind": kind, "event_key": event_key[:120], "to_address": user.email,
              "subject": subject, "body": body, "status": PENDING, "attempts": 0, "next_attempt_at": now,
              "last_error": "", "created_at": now}
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(EmailOutbox)
    session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["event_key"]))


def queue_appointment_email(session: Session, appointment: Appointment, kind: str) -> None:
    queue_email(session, user_id=appointment.patient_id, kind=kind, event_key=f"{kind}:{appointment.id}",
                when=appointment.starts_at)


def queue_reminders(session: Session, *, now: datetime | None = None) -> int:
    """Queue a reminder of every confirmed appointment starting in the next 24 hours (once each).

    A rescheduled appointment gets a new reminder: the key holds the start time.
    """
    if not enabled():
        return 0
    now = now or utcnow()
    rows = session.execute(
        sa.select(Appointment.id, Appointment.patient_id, Appointment.starts_at)
        .where(Appointment.status == AppointmentStatus.CONFIRMED, Appointment.starts_at > now,
               Appointment.starts_at <= now + REMINDER_AHEAD)
    ).all()
    queued = 0
    for appointment_id, patient_id, starts_at in rows:
        if not reminders_wanted(session, patient_id):
            continue
        key = f"appointment.reminder:{appointment_id}:{int(starts_at.timestamp())}"
        before = session.execute(sa.select(sa.func.count()).select_from(EmailOutbox)
                                 .where(EmailOutbox.event_key == key)).scalar_one()
        if before:
            continue
        queue_email(session, user_id=patient_id, kind="appointment.reminder", event_key=key, when=starts_at)
        queued += 1
    session.commit()
    return queued


# --- the user's preference and the admin's view -------------------------------------------


def my_email_reminders(*, session: Session, actor: Actor) -> bool:
    require(session, actor, Permission.PROFILE_OWN, action="email.preference_view")
    return reminders_wanted(session, actor.user_id)


def choose_email_reminders(*, session: Session, actor: Actor, wanted: bool) -> None:
    """Turn one's own appointment reminders by e-mail on or off."""
    require(session, actor, Permission.PROFILE_OWN, action="email.preference")
    if not isinstance(wanted, bool):
        raise ValidationError(_("Say whether you want reminders."))
    preference = session.get(EmailPreference, actor.user_id) or EmailPreference(user_id=actor.user_id)
    preference.reminders = wanted
    preference.updated_at = utcnow()
    session.add(preference)
    audit.record(session, actor, "email.preference", entity_type="user", entity_id=actor.user_id,
                 detail="reminders on" if wanted else "reminders off")  # i18n: not shown
    session.commit()


@dataclass(frozen=True)
class MailStatus:
    enabled: bool
    server: str
    waiting: int
    sent: int
    failed: int


def mail_status(*, session: Session, actor: Actor) -> MailStatus:
    """Whether e-mail is on (and through which server), and the outbox's counts."""
    require(session, actor, Permission.ADMIN_DASHBOARD, action="email.status")
    counts = dict(session.execute(sa.select(EmailOutbox.status, sa.func.count()).group_by(EmailOutbox.status)).all())
    return MailStatus(
        enabled=enabled(),
        server=safe_server(settings.SMTP_URL),
        waiting=counts.get(PENDING, 0) + counts.get(SENDING, 0),
        sent=counts.get(SENT, 0),
        failed=counts.get(FAILED, 0),
    )


def safe_server(url: str) -> str:
    """``host:port`` of the SMTP URL, never its password."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or ''}".rstrip(":")


# --- delivery (``hms worker``) --------------------------------------------------------------


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpTransport:
    """Sends through the server of an ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URL.

    ``user:password@`` in the URL logs in; ``?from=`` sets the sender (default ``no-reply@host``).
    """

    url: str
    timeout: float = 30

    @property
    def sender(self) -> str:
        parts = urlsplit(self.url)
        chosen = parse_qs(parts.query).get("from", [""])[0]
        return chosen or f"no-reply@{parts.hostname or 'localhost'}"

    def send(self, message: EmailMessage) -> None:
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme not in {"smtp", "smtps", "smtp+starttls"}:
            raise ValueError(f"HMS_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://, not {scheme}://")
        host = parts.hostname or "localhost"
        if scheme == "smtps":
            client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=self.timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, parts.port or 25, timeout=self.timeout)
        with client:
            if scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)


def _message(row: EmailOutbox, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{settings.HOSPITAL_NAME} <{sender}>"
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = formatdate(localtime=False)
    # One identity per outbox row: a receiving system can drop a copy that somehow arrives twice.
    message["Message-ID"] = f"<hms-outbox-{row.id}-{int(row.created_at.timestamp())}@{urlsplit(settings.PUBLIC_URL).hostname or 'hms'}>"
    message.set_content(row.body)
    return message


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(session_factory: Callable[[], Session], transport: Transport, *, sender: str,
                now: Callable[[], datetime] = utcnow, limit: int = 50) -> DeliveryReport:
    """Send the messages that are due, each by one worker only; record the outcome of each.

    Args:
        session_factory: opens a write session (a context manager), one per step, so that a
            claim is committed before the message leaves.
        transport: what sends a message (``SmtpTransport`` in production).
        sender: the From address.
    """
    sent = retrying = failed = 0
    with session_factory() as session:
        _give_up_on_stale_sends(session, now())
        due = session.execute(
            sa.select(EmailOutbox.id).where(EmailOutbox.status == PENDING, EmailOutbox.next_attempt_at <= now())
            .order_by(EmailOutbox.next_attempt_at, EmailOutbox.id).limit(limit)
        ).scalars().all()
        session.commit()
    for outbox_id in due:
        with session_factory() as session:
            started = now()
            claimed = session.execute(
                sa.update(EmailOutbox)
                .where(EmailOutbox.id == outbox_id, EmailOutbox.status == PENDING,
                       EmailOutbox.next_attempt_at <= started)
                .values(status=SENDING, attempts=EmailOutbox.attempts + 1, locked_until=started + LEASE)
            ).rowcount
            session.commit()
            if claimed != 1:
                continue  # another worker took it
            row = session.get(EmailOutbox, outbox_id)
            message = _message(row, sender)
            attempts, kind = row.attempts, row.kind
            session.commit()
        try:
            transport.send(message)
        except (OSError, smtplib.SMTPException, ValueError) as error:
            outcome = _record_failure(session_factory, outbox_id, attempts, f"{type(error).__name__}: {error}", now())
            retrying += outcome == PENDING
            failed += outcome == FAILED
            continue
        with session_factory() as session:
            sent_values = {"status": SENT, "sent_at": now(), "locked_until": None, "last_error": ""}
            if kind in _SENT_WIPES:
                # The link's token is kept only as its hash: the message's copy goes once it is sent.
                sent_values["body"] = "(sent; the confirmation link is not kept)"  # i18n: not shown
            session.execute(sa.update(EmailOutbox).where(EmailOutbox.id == outbox_id, EmailOutbox.status == SENDING)
                            .values(**sent_values))
            session.commit()
        sent += 1
    return DeliveryReport(sent, retrying, failed)


def send_round(session_factory: Callable[[], Session], transport: SmtpTransport) -> tuple[int, DeliveryReport]:
    """One round of sending: queue the reminders now due, then deliver what is due.

    Returns:
        How many reminders were queued, and what became of the deliveries.
    """
    with session_factory() as session:
        reminders = queue_reminders(session)
    return reminders, deliver_due(session_factory, transport, sender=transport.sender)


def _record_failure(session_factory: Callable[[], Session], outbox_id: int, attempts: int, error: str,
                    at: datetime) -> str:
    status = FAILED if attempts >= MAX_ATTEMPTS else PENDING
    log.warning("e-mail %s not sent (attempt %s): %s", outbox_id, attempts, error)
    with session_factory() as session:
        session.execute(sa.update(EmailOutbox).where(EmailOutbox.id == outbox_id, EmailOutbox.status == SENDING)
                        .values(status=status, locked_until=None, last_error=error[:300],
                                next_attempt_at=at + _retry_pause(attempts)))
        session.commit()
    return status


def _give_up_on_stale_sends(session: Session, now: datetime) -> None:
    """A row left "sending" past its lease: its worker stopped mid-send. It may have gone out, so
    it is not sent again (never twice), but marked failed for the admin to see."""
    session.execute(
        sa.update(EmailOutbox).where(EmailOutbox.status == SENDING, EmailOutbox.locked_until < now)
        .values(status=FAILED, locked_until=None,
                last_error="the worker stopped while sending; not retried, as it may have been sent")
    )
