"""The project's own errors. Services raise them; the UI shows their message as is.

Every message is written for the person in front of the screen: it says what went wrong
and, where it can, what to do instead.
"""


class HMSError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(HMSError):
    """The actor may not do this."""


class SessionExpired(PermissionDenied):
    """No valid session: never logged in, logged out, expired, revoked or deactivated."""


class PasswordChangeRequired(PermissionDenied):
    """The account must set a new password before doing anything else."""


class NotFound(HMSError):
    """No such record, or not one the actor may see (the two answer alike)."""


class ValidationError(HMSError):
    """The input is not acceptable; nothing was changed."""


class Conflict(HMSError):
    """The change collides with the current state (taken email, slot just booked...)."""


class LoginFailed(HMSError):
    """One message for unknown email, wrong password, disabled and locked accounts."""


class TooManyAttempts(HMSError):
    """Too many failed attempts from the caller's address: refused, unchecked, for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
