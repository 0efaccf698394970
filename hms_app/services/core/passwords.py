"""Password hashing (bcrypt, cost 12), the password policy, and the hash of random tokens."""

from __future__ import annotations

import hashlib
import secrets

import bcrypt

from hms_app import settings
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _
from hms_app.services.core.text import storable

MIN_LENGTH = 10
MAX_BYTES = 72  # bcrypt ignores everything after the 72nd byte

# A hash of a random password, verified against when the account does not exist, so an
# unknown email costs the same time as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password-at-all", bcrypt.gensalt(4)).decode()


def _rounds() -> int:
    return max(4, settings.BCRYPT_ROUNDS)


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(_rounds())).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; spends a bcrypt check even when there is no hash."""
    # A lone surrogate (sent as a JSON escape) has no UTF-8 form; no stored password holds one.
    candidate = password.encode("utf-8", "surrogatepass")[:MAX_BYTES]
    if not password_hash:
        bcrypt.checkpw(candidate, _dummy_hash())
        return False
    try:
        return bcrypt.checkpw(candidate, password_hash.encode())
    except ValueError:
        return False


def _dummy_hash() -> bytes:
    global _DUMMY_HASH
    if not _DUMMY_HASH.startswith(f"$2b${_rounds():02d}$"):
        _DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password-at-all", bcrypt.gensalt(_rounds())).decode()
    return _DUMMY_HASH.encode()


def check_password_policy(password: str, *, email: str) -> None:
    """Raise ``ValidationError`` unless ``password`` may be used by the account ``email``."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise ValidationError(_("The password must be at least {count} characters long.").format(count=MIN_LENGTH))
    storable(password, _("password"))
    if len(password.encode()) > MAX_BYTES:
        raise ValidationError(_("The password must be at most {count} bytes long.").format(count=MAX_BYTES))
    normalized = password.strip().lower()
    email = (email or "").strip().lower()
    if email and normalized in {email, email.split("@", 1)[0]}:
        raise ValidationError(_("The password must not be your email address."))


_TEMPORARY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
"""Letters and digits that cannot be misread for one another (no 0/O, 1/l/I) when a temporary
password is read off a screen or a terminal and typed again."""


def temporary_password() -> str:
    """A random password for an account to log in once with and then change (an admin's reset,
    the first admin of ``hms init``): three groups of six characters, about 104 bits."""
    return "-".join("".join(secrets.choice(_TEMPORARY_ALPHABET) for __ in range(6)) for __ in range(3))


def hash_token(token: str) -> str:
    """The SHA-256 stored in place of a random secret the server issued (a session or API
    token, a login challenge, a recovery code). A fast hash suffices for random secrets;
    passwords, which people choose, use bcrypt."""
    return hashlib.sha256(token.encode()).hexdigest()
