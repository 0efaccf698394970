"""The second factor of a login: time-based one-time codes (TOTP) and recovery codes.

A password alone opens no session for a user who has enrolled an authenticator, or whose
role requires one: ``auth.login`` then hands out a short-lived login challenge, and only
``auth.complete_login`` (a code) or ``auth.confirm_enrolment`` (a first code from a new
authenticator) turns it into a session. This module holds the pieces those steps share,
and the admin's two levers: the per-role requirement and resetting a user's factor.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app import settings
from hms_app.db.enums import ROLE_LABELS, Permission, Role
from hms_app.db.models import (
    AuthSession,
    LoginChallenge,
    RecoveryCode,
    RoleLoginPolicy,
    SecondFactor,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.core import audit, emails, events
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.passwords import hash_token

STEP_SECONDS = 30
CHALLENGE_SECONDS = 5 * 60
RECOVERY_CODE_COUNT = 10
_TOTP_RE = re.compile(r"^[0-9]{6}$")
_RECOVERY_RE = re.compile(r"^[A-Z2-7]{16}$")


# --- the per-role requirement ----------------------------------------------------------


def required_for_role(session: Session, role: Role | str) -> bool:
    row = session.get(RoleLoginPolicy, str(role))
    return bool(row and row.second_factor_required)


def enrolled_factor(session: Session, user_id: int) -> SecondFactor | None:
    factor = session.get(SecondFactor, user_id)
    return factor if factor is not None and factor.enrolled_at is not None else None


def owed_by(session: Session, user: User) -> bool:
    """Whether this user's login needs a second step: enrolled, or the role requires it."""
    return enrolled_factor(session, user.id) is not None or required_for_role(session, user.role)


@dataclass(frozen=True)
class RequirementRow:
    role: str
    role_label: str
    required: bool


def list_second_factor_requirements(*, session: Session, actor: Actor) -> list[RequirementRow]:
    require(session, actor, Permission.PERMISSIONS_MANAGE, action="second_factor.requirements")
    required = {row.role: row.second_factor_required for row in session.execute(select(RoleLoginPolicy)).scalars()}
    return [RequirementRow(role.value, _(ROLE_LABELS[role]), bool(required.get(role.value))) for role in Role]


def set_second_factor_requirement(*, session: Session, actor: Actor, role: str, required: bool) -> None:
    """Require (or stop requiring) a second factor of every account of ``role``.

    Accounts of the role that have not enrolled are asked to at their next login.
    """
    require(session, actor, Permission.PERMISSIONS_MANAGE, action="second_factor.require")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise ValidationError(_("Choose a role from the list."))
    if not isinstance(required, bool):
        raise ValidationError(_("Say whether the role requires a second factor."))
    row = session.get(RoleLoginPolicy, role) or RoleLoginPolicy(role=Role(role))
    if row.second_factor_required == required and row in session:
        raise Conflict(_("That role's requirement is already so."))
    row.second_factor_required = required
    row.updated_at = utcnow()
    session.add(row)
    audit.record(session, actor, "second_factor.require", entity_type="role", entity_id=role,
                 detail="required" if required else "not required")  # i18n: not shown
    session.commit()


def reset_second_factor(*, session: Session, actor: Actor, user_id: int) -> None:
    """Forget a user's authenticator and recovery codes (a lost phone); their sessions end.

    If their role requires a second factor they enrol again at their next login.
    """
    require(session, actor, Permission.USERS_MANAGE, action="user.reset_second_factor")
    user = access_by_id(session, actor, User, user_id, action="user.reset_second_factor",
                        missing=N_("That account does not exist."), entity_type="user")
    factor = session.get(SecondFactor, user.id)
    if factor is None:
        raise Conflict(_("That account has no second factor to reset."))
    session.delete(factor)
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(sa.update(LoginChallenge).where(LoginChallenge.user_id == user.id,
                                                    LoginChallenge.used_at.is_(None)).values(used_at=utcnow()))
    ended = session.execute(
        sa.update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount or 0
    audit.record(session, actor, "user.reset_second_factor", entity_type="user", entity_id=user.id,
                 patient_id=user.id if user.role == Role.PATIENT else None, detail=f"{ended} sessions ended")  # i18n: not shown
    events.publish(session, events.SESSIONS, user_ids=[user.id])
    session.commit()


# --- login challenges ------------------------------------------------------------------


def open_challenge(session: Session, user: User, ip_address: str) -> str:
    """Record a challenge for ``user`` (in the caller's transaction); return its token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(LoginChallenge(user_id=user.id, token_hash=hash_token(token), created_at=now,
                               expires_at=now + timedelta(seconds=CHALLENGE_SECONDS), ip_address=ip_address[:64]))
    return token


def find_challenge(session: Session, token: object) -> tuple[LoginChallenge, User] | None:
    """The open challenge behind ``token`` and its user, or None (unknown, used or expired)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    row = session.execute(
        select(LoginChallenge, User).join(User, User.id == LoginChallenge.user_id)
        .where(LoginChallenge.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    challenge, user = row
    if challenge.used_at is not None or challenge.expires_at <= utcnow():
        return None
    return challenge, user


# --- codes -----------------------------------------------------------------------------


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=settings.HOSPITAL_NAME)


def qr_data_uri(text: str) -> str:
    """An SVG QR code of ``text`` as a ``data:`` URI (no file, no third-party service)."""
    return segno.make(text, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def normalize_code(code: object) -> str:
    return re.sub(r"[\s-]", "", str(code or ""))[:40].upper()


def is_totp_shape(code: str) -> bool:
    return bool(_TOTP_RE.match(code))


def matching_step(secret: str, code: str, *, after_step: int, at: datetime | None = None) -> int | None:
    """The 30-second step (this one or one either side, for clock drift) whose code is ``code``.

    Steps at or before ``after_step`` are not considered: a code once accepted is never again.
    """
    if not is_totp_shape(code):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int((at or utcnow()).timestamp()) // STEP_SECONDS
    for step in (now_step - 1, now_step, now_step + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def claim_step(session: Session, user_id: int, step: int) -> bool:
    """Move the factor's last used step forward to ``step``; False if another login got there first."""
    result = session.execute(
        sa.update(SecondFactor).where(SecondFactor.user_id == user_id, SecondFactor.last_used_step < step)
        .values(last_used_step=step)
    )
    return (result.rowcount or 0) == 1


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Replace the user's recovery codes with ten new ones; return them (shown once, kept hashed)."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for __ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode()
        session.add(RecoveryCode(user_id=user_id, code_hash=hash_token(raw)))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def use_recovery_code(session: Session, user_id: int, code: str) -> bool:
    """Spend one unused recovery code of the user (in the caller's transaction)."""
    if not _RECOVERY_RE.match(code):
        return False
    result = session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == hash_token(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return (result.rowcount or 0) == 1


def recovery_codes_left(session: Session, user_id: int) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    ).scalar_one()


# --- the operator's console (``hms second-factor``): whoever runs it already holds the server --


def console_set_requirement(session: Session, role: str, required: bool) -> None:
    """Switch a role's requirement from the ``hms`` command (audited as the console)."""
    if role not in {r.value for r in Role}:
        raise ValidationError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}")  # the CLI's  # i18n: not shown
    row = session.get(RoleLoginPolicy, role) or RoleLoginPolicy(role=Role(role))
    row.second_factor_required = required
    row.updated_at = utcnow()
    session.add(row)
    audit.record(session, None, "second_factor.require", entity_type="role", entity_id=role,
                 detail=("required" if required else "not required") + " (hms command)",  # i18n: not shown
                 actor_email="hms command")  # i18n: not shown
    session.commit()


def console_reset(session: Session, email: str) -> bool:
    """Forget one user's authenticator from the ``hms`` command (the last admin lost their phone)."""
    normal = emails.normalised_or_none(email)
    user = session.execute(select(User).where(User.email == normal)).scalar_one_or_none() if normal else None
    if user is None:
        raise NotFound(f"no account with the email {email!r}")  # the CLI's  # i18n: not shown
    factor = session.get(SecondFactor, user.id)
    if factor is None:
        return False
    session.delete(factor)
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record(session, None, "user.reset_second_factor", entity_type="user", entity_id=user.id,
                 detail="hms command", actor_email="hms command")  # i18n: not shown
    session.commit()
    return True
