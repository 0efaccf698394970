"""Login, sessions, registration and passwords.

A login creates a random token that only the browser keeps; the database holds its
SHA-256. Every later call resolves the token again (``resolve_session``), so a logout,
an expiry, a revocation or a deactivation takes effect at the very next action.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NoReturn

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app import settings
from hms_app.db.engine import begin_write
from hms_app.db.enums import AuditOutcome, Permission, Role, Sex
from hms_app.db.models import (
    AuthSession,
    LoginChallenge,
    PatientProfile,
    RolePermission,
    SecondFactor,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.administration import second_factor
from hms_app.services.core import audit, counters, emails, events, passwords, throttle
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import LoginFailed, SessionExpired, ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import local_today
from hms_app.services.core.passwords import hash_token
from hms_app.services.core.text import checked_line, is_storable, shown
from hms_app.services.messaging import mail

_LOGIN_FAILED = N_(
    "We could not log you in with that email and password. Check them and try again; "
    "after {tries} failed tries in a row an account is locked for {minutes} minutes."
)
_CODE_FAILED = N_(
    "That code is not right, or it has been used already. Enter the current code from your authenticator "
    "app, or one of your recovery codes; after {tries} failed tries in a row an account "
    "is locked for {minutes} minutes."
)


def _with_lockout(message: str) -> str:
    """``message`` (``_LOGIN_FAILED``, ``_CODE_FAILED``) in the current language, with the lockout's figures."""
    return _(message).format(tries=settings.LOCKOUT_THRESHOLD, minutes=settings.LOCKOUT_SECONDS // 60)


LOGIN_FAILED_MESSAGE = _LOGIN_FAILED.format(tries=settings.LOCKOUT_THRESHOLD, minutes=settings.LOCKOUT_SECONDS // 60)
"""The one answer to a failed login, in English (as the refusal reads in the source language)."""
CHALLENGE_EXPIRED_MESSAGE = N_("Your login has timed out. Log in again with your email and password.")
"""Marked here; the refusal carries it translated (compare with ``_(CHALLENGE_EXPIRED_MESSAGE)``)."""
UNCONFIRMED_MESSAGE = N_(
    "Your email address is not confirmed yet. Open the link in the message we sent to it, then log in. "
    "If the link has expired or the message is lost, register again with the same address for a new link."
)
_TOUCH_EVERY = timedelta(seconds=60)
# Built once: the statement every session resolution runs (SQLAlchemy caches its compiled form).
_SESSION_OF_TOKEN = (
    select(AuthSession, User).join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == sa.bindparam("token_hash"))
)
_PERMISSIONS_OF_ROLE = select(RolePermission.permission).where(RolePermission.role == sa.bindparam("role"))


def permissions_for_role(session: Session, role: Role | str) -> frozenset[str]:
    return frozenset(session.execute(_PERMISSIONS_OF_ROLE, {"role": str(role)}).scalars())


def _actor_for(session: Session, user: User, auth: AuthSession | None, ip_address: str) -> Actor:
    return Actor(
        user_id=user.id,
        role=Role(user.role),
        email=user.email,
        full_name=user.full_name,
        permissions=permissions_for_role(session, user.role),
        ip_address=ip_address,
        session_id=auth.id if auth else None,
        must_change_password=user.must_change_password,
        language=user.language or "",
    )


@dataclass(frozen=True)
class LoginResult:
    """A session (``token`` and ``actor``), or, when a second factor is owed, a challenge.

    With a challenge no session exists yet: ``challenge`` goes to ``complete_login`` with a
    code, or, when ``must_enrol``, to ``start_enrolment`` and ``confirm_enrolment``.
    """

    token: str
    actor: Actor | None
    challenge: str = ""
    must_enrol: bool = False


def login(*, session: Session, visitor: Anonymous, email: str, password: str) -> LoginResult:
    """Check the credentials, open a new session and return its token.

    The password is checked outside any transaction: the caller's transaction is ended after
    the account is read, and the writes run in a new one that reads the account afresh.

    Raises:
        LoginFailed: with one message for every kind of failure.
        TooManyAttempts: the visitor's address has failed too often; nothing was checked.
    """
    throttle.check(session, throttle.Kind.LOGIN, visitor.ip_address)
    typed = str(email or "").strip().lower()[:254]
    # No account has an address that does not normalise; such text is only recorded, as shown.
    email_text = shown(typed)
    password_text = str(password or "")
    normal = emails.normalised_or_none(typed)
    user = session.execute(select(User).where(User.email == normal)).scalar_one_or_none() if normal else None
    password_hash = user.password_hash if user else None
    # bcrypt takes a quarter of a second at cost 12: a transaction held open over it would keep
    # SQLite's write lock (taken at its start) from every other writer for that long.
    session.rollback()
    # Always spend one bcrypt check, so the answer takes as long whatever went wrong.
    matches = passwords.verify_password(password_text, password_hash)
    now = utcnow()

    def fail(reason: str, action: str = "login.failed") -> None:
        audit.record(session, visitor, action, entity_type="user", entity_id=user.id if user else "",
                     outcome=AuditOutcome.FAILED, detail=reason, actor_email=email_text)
        throttle.failed(session, throttle.Kind.LOGIN, visitor.ip_address)
        session.commit()
        raise LoginFailed(_with_lockout(_LOGIN_FAILED))

    # The reasons are audit details, in English.
    if user is None:
        fail("unknown email")  # i18n: not shown
    if user.locked_until is not None and user.locked_until > now:
        fail("account locked", "login.locked")  # i18n: not shown
    if not user.is_active:
        fail("account disabled")  # i18n: not shown
    if not matches:
        _count_failure(session, visitor, user, email_text, "password")
        fail(f"wrong password ({user.failed_logins or settings.LOCKOUT_THRESHOLD} in a row)")  # i18n: not shown
    if user.email_confirm_token_hash is not None:
        # Said only after the right password: to anyone else the account looks like any other.
        audit.record(session, visitor, "login.unconfirmed", entity_type="user", entity_id=user.id,
                     outcome=AuditOutcome.FAILED, detail="email address not confirmed", actor_email=email_text)  # i18n: not shown
        session.commit()
        raise LoginFailed(_(UNCONFIRMED_MESSAGE))

    if second_factor.owed_by(session, user):
        # The password is right, but it alone opens nothing: the failure count stands until a code
        # is right too, so wrong codes and wrong passwords lock the account together.
        challenge = second_factor.open_challenge(session, user, visitor.ip_address)
        must_enrol = second_factor.enrolled_factor(session, user.id) is None
        audit.record(session, visitor, "login.password_ok", entity_type="user", entity_id=user.id,
                     actor_email=email_text, detail="enrolment owed" if must_enrol else "code owed")  # i18n: not shown
        session.commit()
        return LoginResult("", None, challenge=challenge, must_enrol=must_enrol)
    return _open_session(session, visitor, user, how="")


def _count_failure(session: Session, visitor: Anonymous, user: User, email_text: str, what: str) -> None:
    """One more failure in a row (a password or a code); the threshold locks the account."""
    failures = user.failed_logins + 1
    if failures >= settings.LOCKOUT_THRESHOLD:
        user.failed_logins = 0
        user.locked_until = utcnow() + timedelta(seconds=settings.LOCKOUT_SECONDS)
        session.execute(sa.update(LoginChallenge).where(LoginChallenge.user_id == user.id,
                                                        LoginChallenge.used_at.is_(None)).values(used_at=utcnow()))
        audit.record(session, visitor, "login.lockout", entity_type="user", entity_id=user.id,
                     outcome=AuditOutcome.FAILED, actor_email=email_text,
                     detail=f"locked for {settings.LOCKOUT_SECONDS // 60} minutes after {failures} failures"  # i18n: not shown
                            + ("" if what == "password" else f", the last a wrong {what}"))  # i18n: not shown
    else:
        user.failed_logins = failures
    session.add(user)


def _open_session(session: Session, visitor: Anonymous, user: User, *, how: str) -> LoginResult:
    """Open a session for ``user`` (every check passed), commit, and return its token."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    auth = AuthSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS),
        ip_address=visitor.ip_address[:64],
    )
    session.add(user)
    session.add(auth)
    session.flush()
    actor = _actor_for(session, user, auth, visitor.ip_address)
    audit.record(session, actor, "login.success", entity_type="auth_session", entity_id=auth.id, detail=how)
    session.commit()
    return LoginResult(token, actor)


def _challenged_user(session: Session, visitor: Anonymous, challenge: object,
                     action: str) -> tuple[LoginChallenge, User]:
    """The open challenge and its user, still allowed to log in; else ``LoginFailed``."""
    found = second_factor.find_challenge(session, challenge)
    if found is None:
        audit.record(session, visitor, action, entity_type="login_challenge", outcome=AuditOutcome.FAILED,
                     detail="unknown, used or expired challenge")  # i18n: not shown
        session.commit()
        raise LoginFailed(_(CHALLENGE_EXPIRED_MESSAGE))
    row, user = found
    if not user.is_active or (user.locked_until is not None and user.locked_until > utcnow()):
        audit.record(session, visitor, action, entity_type="user", entity_id=user.id, outcome=AuditOutcome.FAILED,
                     actor_email=user.email, detail="account locked or disabled")  # i18n: not shown
        session.commit()
        raise LoginFailed(_with_lockout(_CODE_FAILED))
    return row, user


def _wrong_code(session: Session, visitor: Anonymous, user: User, action: str) -> NoReturn:
    _count_failure(session, visitor, user, user.email, "code")
    audit.record(session, visitor, action, entity_type="user", entity_id=user.id, outcome=AuditOutcome.FAILED,
                 actor_email=user.email, detail="wrong or reused code")  # i18n: not shown
    throttle.failed(session, throttle.Kind.LOGIN, visitor.ip_address)
    session.commit()
    raise LoginFailed(_with_lockout(_CODE_FAILED))


def complete_login(*, session: Session, visitor: Anonymous, challenge: str, code: str) -> LoginResult:
    """The second step of a login: a code from the authenticator, or a recovery code.

    A code is accepted once only; wrong codes count toward the same lockout as wrong passwords.

    Raises:
        LoginFailed: a wrong, reused or late code, or a locked account (one message for all).
        TooManyAttempts: the visitor's address has failed too often; nothing was checked.
    """
    throttle.check(session, throttle.Kind.LOGIN, visitor.ip_address)
    row, user = _challenged_user(session, visitor, challenge, "login.second_factor_failed")
    factor = second_factor.enrolled_factor(session, user.id)
    if factor is None:
        raise LoginFailed(_(CHALLENGE_EXPIRED_MESSAGE))
    typed = second_factor.normalize_code(code)
    step = second_factor.matching_step(factor.secret, typed, after_step=factor.last_used_step)
    if step is not None and second_factor.claim_step(session, user.id, step):
        how = "authenticator code"  # i18n: not shown
    elif step is None and second_factor.use_recovery_code(session, user.id, typed):
        how = f"recovery code ({second_factor.recovery_codes_left(session, user.id)} left)"  # i18n: not shown
    else:
        _wrong_code(session, visitor, user, "login.second_factor_failed")
    row.used_at = utcnow()
    session.add(row)
    return _open_session(session, visitor, user, how=how)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text and as a QR code."""

    secret: str
    uri: str
    qr_data_uri: str


def start_enrolment(*, session: Session, visitor: Anonymous, challenge: str) -> Enrolment:
    """A new authenticator secret for a user who must enrol before their first session.

    Calling it again replaces the secret that was not yet confirmed.
    """
    _row, user = _challenged_user(session, visitor, challenge, "second_factor.enrol")
    if second_factor.enrolled_factor(session, user.id) is not None:
        raise LoginFailed(_(CHALLENGE_EXPIRED_MESSAGE))
    secret = second_factor.new_secret()
    factor = session.get(SecondFactor, user.id) or SecondFactor(user_id=user.id, secret=secret)
    factor.secret = secret
    factor.last_used_step = 0
    factor.created_at = utcnow()
    session.add(factor)
    audit.record(session, visitor, "second_factor.enrol_start", entity_type="user", entity_id=user.id,
                 actor_email=user.email)
    session.commit()
    uri = second_factor.provisioning_uri(secret, user.email)
    return Enrolment(secret, uri, second_factor.qr_data_uri(uri))


@dataclass(frozen=True)
class EnrolledLogin:
    result: LoginResult
    recovery_codes: list[str]


def confirm_enrolment(*, session: Session, visitor: Anonymous, challenge: str, code: str) -> EnrolledLogin:
    """Confirm a new authenticator with its first code; open the session and hand out recovery codes.

    Raises:
        LoginFailed: a wrong code (counted toward the lockout) or a timed-out login.
        TooManyAttempts: the visitor's address has failed too often; nothing was checked.
    """
    throttle.check(session, throttle.Kind.LOGIN, visitor.ip_address)
    row, user = _challenged_user(session, visitor, challenge, "second_factor.enrol")
    factor = session.get(SecondFactor, user.id)
    if factor is None or factor.enrolled_at is not None:
        raise LoginFailed(_(CHALLENGE_EXPIRED_MESSAGE))
    step = second_factor.matching_step(factor.secret, second_factor.normalize_code(code),
                                       after_step=factor.last_used_step)
    if step is None or not second_factor.claim_step(session, user.id, step):
        _wrong_code(session, visitor, user, "second_factor.enrol")
    factor.enrolled_at = utcnow()
    session.add(factor)
    codes = second_factor.new_recovery_codes(session, user.id)
    row.used_at = utcnow()
    session.add(row)
    audit.record(session, visitor, "second_factor.enrol", entity_type="user", entity_id=user.id,
                 actor_email=user.email, detail=f"{len(codes)} recovery codes issued")  # i18n: not shown
    return EnrolledLogin(_open_session(session, visitor, user, how="new authenticator"), codes)  # i18n: not shown


@dataclass(frozen=True)
class SessionLease:
    """A resolved session and until when its caller may act on it without resolving it again.

    ``recheck_at`` is the earliest of the session's absolute expiry, its idle expiry and the
    moment its idle clock is due to be touched again, as the session row gave them: a caller that
    keeps the actor no longer than that honours both expiries and touches the clock as often as
    ``resolve_session`` would. Revocation (logout, deactivation, resets, permission changes) is
    the caller's to watch: services publish a ``sessions`` or ``permissions`` change for it.
    """

    actor: Actor
    recheck_at: datetime


def resolve_session(*, session: Session, token: str, ip_address: str = "") -> Actor:
    """The actor behind ``token``, or ``SessionExpired``.

    Checks revocation, the absolute and idle expiry, and that the account is still active;
    refreshes the idle clock at most once a minute.
    """
    return lease_session(session=session, token=token, ip_address=ip_address).actor


def lease_session(*, session: Session, token: str, ip_address: str = "") -> SessionLease:
    """``resolve_session``, with until when its answer holds (``SessionLease``)."""
    if not token or not isinstance(token, str) or len(token) > 200 or not is_storable(token):
        raise SessionExpired(_("Please log in."))
    row = session.execute(_SESSION_OF_TOKEN, {"token_hash": hash_token(token)}).first()
    if row is None:
        raise SessionExpired(_("Please log in."))
    auth, user = row
    now = utcnow()
    idle = timedelta(seconds=settings.SESSION_IDLE_SECONDS)
    if auth.revoked_at is not None:
        raise SessionExpired(_("You have been logged out. Please log in again."))
    if not user.is_active:
        raise SessionExpired(_("This account has been deactivated."))
    if auth.expires_at <= now or auth.last_seen_at + idle <= now:
        # The read ends first: the write takes the lock as it begins (SQLite), also when the caller's
        # session is a read-only one (``session_scope(write=False)``).
        session.commit()
        begin_write(session)
        auth.revoked_at = now
        session.add(auth)
        audit.record(session, Anonymous(ip_address), "session.expired", entity_type="auth_session",
                     entity_id=auth.id, actor_email=user.email)
        session.commit()
        raise SessionExpired(_("Your session has expired. Please log in again."))
    last_seen = auth.last_seen_at
    if now - last_seen >= _TOUCH_EVERY:
        # In a transaction of its own: on SQLite a caller's read-only transaction cannot become a
        # write one once another writer has committed since it began (it fails at once, "database
        # is locked"); a transaction whose first statement writes waits its turn instead.
        session.commit()
        session.execute(
            sa.update(AuthSession).where(AuthSession.id == auth.id).values(last_seen_at=now)
        )
        session.commit()
        last_seen = now
    recheck_at = min(auth.expires_at, last_seen + idle, last_seen + _TOUCH_EVERY)
    return SessionLease(_actor_for(session, user, auth, ip_address), recheck_at)


def logout(*, session: Session, actor: Actor) -> None:
    """End the actor's session on the server."""
    if actor.session_id is None:
        return
    session.execute(
        sa.update(AuthSession)
        .where(AuthSession.id == actor.session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.record(session, actor, "logout", entity_type="auth_session", entity_id=actor.session_id)
    events.publish(session, events.SESSIONS, user_ids=[actor.user_id])
    session.commit()


def revoke_user_sessions(session: Session, user_id: int) -> int:
    """End every open session of a user (in the caller's transaction); the tabs that keep one
    drop it once the transaction commits (a ``sessions`` change)."""
    events.publish(session, events.SESSIONS, user_ids=[user_id])
    result = session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount or 0


def change_password(*, session: Session, actor: Actor, current_password: str, new_password: str) -> None:
    """Change one's own password; other sessions of the account are ended."""
    require(session, actor, Permission.PROFILE_OWN, action="password.change", allow_pending_password_change=True)
    throttle.check(session, throttle.Kind.PASSWORD, actor.ip_address)
    user = session.get(User, actor.user_id)
    if not passwords.verify_password(str(current_password or ""), user.password_hash):
        throttle.failed(session, throttle.Kind.PASSWORD, actor.ip_address)
        session.commit()
        audit.deny(session, actor, "password.change", N_("Your current password is not correct."),
                   error=ValidationError, entity_type="user", entity_id=user.id)
    new_password = str(new_password or "")
    passwords.check_password_policy(new_password, email=user.email)
    if passwords.verify_password(new_password, user.password_hash):
        raise ValidationError(_("The new password must differ from the current one."))
    user.password_hash = passwords.hash_password(new_password)
    user.must_change_password = False
    session.add(user)
    session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.id != actor.session_id)
        .values(revoked_at=utcnow())
    )
    audit.record(session, actor, "password.change", entity_type="user", entity_id=user.id)
    events.publish(session, events.SESSIONS, user_ids=[user.id])
    session.commit()


@dataclass(frozen=True)
class Registration:
    full_name: str
    email: str
    password: str
    birth_date: str
    phone: str


def clean_phone(value: object, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if not text and not required:
        return ""
    if not re.fullmatch(r"\+?[0-9 ()\-]{6,25}", text):
        raise ValidationError(_("Enter a phone number of digits, spaces and + ( ) - only, like +44 20 7946 0000."))
    return text


def parse_birth_date(value: object) -> date:
    try:
        born = date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise ValidationError(_("Enter the birth date as a date, like 1980-04-23.")) from None
    today = local_today()
    if born > today:
        raise ValidationError(_("The birth date cannot be in the future."))
    if born.year < today.year - 130:
        raise ValidationError(_("Check the birth date: it is more than 130 years ago."))
    return born


REGISTERED_MESSAGE = N_(
    "Thank you. If this address can have an account here, it is ready: log in with your email and password. "
    "If you cannot, the address already has an account, or is too like one that has: log in with that "
    "account's password, ask the front desk to reset it, or register with another address."
)
REGISTERED_CONFIRM_MESSAGE = N_(
    "Thank you. We are sending a message to that address: open its link to confirm the address, then log in. "
    "If no message arrives within a few minutes, the address already has an account, or is too like one "
    "that has: log in with that account, ask the front desk, or register with another address."
)


def registration_answer() -> str:
    """What a visitor is told after registering: the same for a new, a taken and a look-alike address."""
    return _(REGISTERED_CONFIRM_MESSAGE if mail.enabled() else REGISTERED_MESSAGE)


def register_patient(*, session: Session, visitor: Anonymous, form: Registration) -> int | None:
    """A patient creates their own account and receives a medical record number.

    A taken address, or one that looks like a taken one (the same confusable skeleton), makes
    no account; the visitor is told the same as for a new one (``registration_answer``), and,
    with e-mail on, the account's owner gets a message that someone tried. With e-mail on a new
    account can log in only once its address is confirmed by the link sent to it; registering
    an unconfirmed address again gives it the new details and a new link (so whoever owns the
    mailbox wins, not whoever registered first).

    Returns:
        The new (or renewed unconfirmed) account's id; None when no account was made. The
        visitor is not told which.
    """
    throttle.attempt(session, throttle.Kind.REGISTER, visitor.ip_address)
    full_name = checked_line(form.full_name, _("full name"), limit=120)
    email = emails.normalise(form.email)
    born = parse_birth_date(form.birth_date)
    phone = clean_phone(form.phone)
    passwords.check_password_policy(str(form.password or ""), email=email)
    skeleton = emails.skeleton(email)
    # Hashed whatever the outcome, so that a taken address is not told apart by a quicker answer.
    password_hash = passwords.hash_password(str(form.password))
    session.rollback()
    existing = session.execute(
        select(User).where(sa.or_(User.email == email, User.email_skeleton == skeleton)).order_by(User.id)
    ).scalars().first()
    if existing is not None and not _renewable(existing, email):
        _answer_taken(session, visitor, existing, email)
        return None
    token = secrets.token_urlsafe(32) if mail.enabled() else ""
    if existing is not None:
        user = existing
        user.full_name, user.password_hash = full_name, password_hash
        profile = session.get(PatientProfile, user.id)
        profile.birth_date, profile.phone = born, phone
        session.add(profile)
        action = "patient.register_again"
    else:
        user = User(email=email, email_skeleton=skeleton, full_name=full_name, role=Role.PATIENT,
                    password_hash=password_hash)
        action = "patient.register"
    if token:
        user.email_confirm_token_hash = hash_token(token)
        user.email_confirm_expires_at = utcnow() + timedelta(hours=settings.EMAIL_CONFIRM_HOURS)
    session.add(user)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # Another registration of this address (or a look-alike) won the race just now.
        session.rollback()
        winner = session.execute(
            select(User).where(sa.or_(User.email == email, User.email_skeleton == skeleton))
        ).scalars().first()
        if winner is not None:
            _answer_taken(session, visitor, winner, email)
        return None
    if existing is None:
        session.add(PatientProfile(user_id=user.id, mrn=counters.next_mrn(session), birth_date=born,
                                   sex=Sex.UNKNOWN, phone=phone))
    audit.record(session, visitor, action, entity_type="user", entity_id=user.id,
                 patient_id=user.id, actor_email=email, detail="confirmation link sent" if token else "")  # i18n: not shown
    if token:
        mail.queue_account_email(session, user_id=user.id, kind="account.confirm", token=token,
                                 event_key=f"account.confirm:{user.id}:{user.email_confirm_token_hash[:16]}")
    session.commit()
    return user.id


def _renewable(user: User, email: str) -> bool:
    """An unconfirmed patient account of this very address: registering again renews it."""
    return (user.email == email and user.role == Role.PATIENT and user.email_confirmed_at is None
            and user.email_confirm_token_hash is not None and mail.enabled())


def _answer_taken(session: Session, visitor: Anonymous, owner: User, email: str) -> None:
    """No account for a taken or look-alike address: audited, and the owner told (at most hourly)."""
    lookalike = owner.email != email
    audit.record(session, visitor, "patient.register", entity_type="user", entity_id=owner.id,
                 outcome=AuditOutcome.FAILED, actor_email=shown(email),
                 detail="looks like an existing account's address" if lookalike  # i18n: not shown
                 else "address already has an account")  # i18n: not shown
    kind = "account.lookalike_attempt" if lookalike else "account.registration_attempt"
    mail.queue_account_email(session, user_id=owner.id, kind=kind,
                             event_key=f"{kind}:{owner.id}:{int(utcnow().timestamp()) // 3600}")
    session.commit()


LINK_INVALID_MESSAGE = N_("This confirmation link is not valid, or it has been used already. If your address is confirmed, "
                        "log in; if not, register again with the same address for a new link.")
LINK_EXPIRED_MESSAGE = N_("This confirmation link has expired. Register again with the same address for a new link.")


def confirm_email(*, session: Session, visitor: Anonymous, token: object) -> None:
    """Confirm the address of the account whose confirmation link carries ``token``; it may then log in.

    Raises:
        ValidationError: an unknown, used or expired link (nothing changes).
    """
    text = token if isinstance(token, str) else ""
    user = None
    if 20 <= len(text) <= 200 and is_storable(text):
        user = session.execute(select(User).where(User.email_confirm_token_hash == hash_token(text))).scalar_one_or_none()
    if user is None or user.email_confirm_expires_at is None or user.email_confirm_expires_at <= utcnow():
        audit.record(session, visitor, "email.confirm", entity_type="user", entity_id=user.id if user else "",
                     outcome=AuditOutcome.FAILED, detail="expired link" if user else "unknown or used link")  # i18n: not shown
        session.commit()
        raise ValidationError(_(LINK_EXPIRED_MESSAGE if user else LINK_INVALID_MESSAGE))
    user.email_confirmed_at = utcnow()
    user.email_confirm_token_hash = None
    user.email_confirm_expires_at = None
    session.add(user)
    audit.record(session, visitor, "email.confirm", entity_type="user", entity_id=user.id, actor_email=user.email,
                 patient_id=user.id if user.role == Role.PATIENT else None)
    session.commit()
