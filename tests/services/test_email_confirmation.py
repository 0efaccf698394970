"""With e-mail on, a new account confirms its address by a link before it can log in; a taken or
look-alike address makes no account, its owner is told, and the visitor is answered alike."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.models import EmailOutbox, User
from hms_app.db.types import utcnow
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import LoginFailed, ValidationError
from hms_app.services.core.passwords import hash_token
from hms_app.services.messaging import mail
from tests.services.helpers import IP, STRONG_PASSWORD, audit_events, login_token, resolve, snapshot
from tests.services.test_mail import SENDER, smtp  # noqa: F401  (the SMTP server fixture)
from tests.services.test_registration import FORM, register

pytestmark = pytest.mark.db

MARIA = "maria.garcia@patients.example"
LINK = re.compile(r"(http\S+/confirm-email\?token=([A-Za-z0-9_\-]+))")


def _deliver(engine) -> mail.DeliveryReport:
    return mail.deliver_due(lambda: session_scope(engine=engine), mail.SmtpTransport(settings.SMTP_URL),
                            sender=SENDER)


def _outbox(engine) -> list[EmailOutbox]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(EmailOutbox).order_by(EmailOutbox.id)).scalars())


def _user(engine, user_id: int) -> User:
    with session_scope(write=False, engine=engine) as s:
        return s.get(User, user_id)


def _confirm(engine, token: str) -> None:
    with session_scope(engine=engine) as s:
        auth.confirm_email(session=s, visitor=Anonymous(IP), token=token)


def _token_of(message) -> str:
    [(url, token)] = LINK.findall(message.get_payload(decode=True).decode())
    assert url.startswith(f"{settings.PUBLIC_URL}/confirm-email?token=")
    return token


def test_a_new_account_logs_in_only_after_the_link_in_its_message(seeded, smtp):  # noqa: F811
    assert auth.registration_answer() == auth.REGISTERED_CONFIRM_MESSAGE
    user_id = register(seeded)
    user = _user(seeded, user_id)
    assert user.email_confirmed_at is None
    assert user.email_confirm_token_hash is not None

    # The right password is told that the address waits for confirmation; a wrong one is not.
    with pytest.raises(LoginFailed) as refused:
        login_token(seeded, FORM.email, STRONG_PASSWORD)
    assert refused.value.message == auth.UNCONFIRMED_MESSAGE
    with pytest.raises(LoginFailed) as wrong:
        login_token(seeded, FORM.email, STRONG_PASSWORD + "x")
    assert wrong.value.message == auth.LOGIN_FAILED_MESSAGE

    assert _deliver(seeded).sent == 1
    [message] = smtp.messages
    assert message["To"] == "nadia.rahman@example.org"
    assert message["Subject"] == "Confirm your email address"
    token = _token_of(message)
    assert hash_token(token) == user.email_confirm_token_hash
    # Once sent, the outbox keeps no usable copy of the link.
    [row] = _outbox(seeded)
    assert (row.kind, row.status) == ("account.confirm", "sent")
    assert token not in row.body

    _confirm(seeded, token)
    confirmed = _user(seeded, user_id)
    assert confirmed.email_confirmed_at is not None
    assert confirmed.email_confirm_token_hash is None
    assert resolve(seeded, login_token(seeded, FORM.email, STRONG_PASSWORD)).user_id == user_id
    assert [e.outcome for e in audit_events(seeded, action="email.confirm")] == ["success"]

    # The link works once.
    with pytest.raises(ValidationError, match="not valid, or it has been used"):
        _confirm(seeded, token)


@pytest.mark.parametrize(("typed", "kind"), [
    (MARIA, "account.registration_attempt"),
    ("Maria.Garcia@patients.example.", "account.registration_attempt"),
    ("m\u0430ria.garcia@patients.example", "account.lookalike_attempt"),
])
def test_a_taken_or_look_alike_address_mails_its_owner_and_makes_nothing(seeded, smtp, typed, kind):  # noqa: F811
    assert register(seeded, replace(FORM, email=typed)) is None
    assert register(seeded, replace(FORM, email=typed)) is None  # at most one message an hour
    assert [(r.kind, r.to_address) for r in _outbox(seeded)] == [(kind, MARIA)]
    _deliver(seeded)
    [message] = smtp.messages
    assert message["To"] == MARIA
    body = message.get_payload(decode=True).decode()
    assert typed.strip() not in body
    assert "confirm-email" not in body
    assert f"{settings.PUBLIC_URL}/login" in body
    with session_scope(write=False, engine=seeded) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(User)
                         .where(User.email_confirm_token_hash.is_not(None))).scalar_one() == 0


def test_an_expired_link_is_refused_and_registering_again_sends_a_new_one(seeded, smtp):  # noqa: F811
    first_id = register(seeded, replace(FORM, password="Squatter-Password-1"))
    _deliver(seeded)
    old_token = _token_of(smtp.messages[0])
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(User).where(User.id == first_id)
                  .values(email_confirm_expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    before = snapshot(seeded)
    with pytest.raises(ValidationError, match="expired"):
        _confirm(seeded, old_token)
    assert snapshot(seeded) == before

    # Whoever reads the mailbox wins: registering again gives the account the new details and a new link.
    assert register(seeded) == first_id
    _deliver(seeded)
    new_token = _token_of(smtp.messages[1])
    with pytest.raises(ValidationError, match="not valid"):
        _confirm(seeded, old_token)
    _confirm(seeded, new_token)
    assert resolve(seeded, login_token(seeded, FORM.email, STRONG_PASSWORD)).user_id == first_id
    with pytest.raises(LoginFailed):
        login_token(seeded, FORM.email, "Squatter-Password-1")
    # A confirmed account is not renewed by registering again.
    assert register(seeded, replace(FORM, password="Another-Password-2")) is None


@pytest.mark.parametrize("token", ["", "x", "a" * 43, "a" * 500, "\x00" * 30, None, 12, ["a" * 43]])
def test_a_made_up_token_changes_nothing(seeded, token):
    before = snapshot(seeded)
    with pytest.raises(ValidationError, match="not valid"):
        _confirm(seeded, token)
    assert snapshot(seeded) == before


def test_without_email_a_new_account_logs_in_at_once(seeded, monkeypatch):
    monkeypatch.setattr(settings, "SMTP_URL", "")
    assert auth.registration_answer() == auth.REGISTERED_MESSAGE
    user_id = register(seeded)
    assert _user(seeded, user_id).email_confirm_token_hash is None
    assert resolve(seeded, login_token(seeded, FORM.email, STRONG_PASSWORD)).user_id == user_id
    assert _outbox(seeded) == []
