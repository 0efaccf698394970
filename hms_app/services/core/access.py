"""Permission and ownership checks, made inside every service call.

``require`` answers "may this role do this at all"; the ``get_*_for`` helpers answer
"is this record the actor's to touch" and treat a forbidden record exactly like a
missing one, so ids cannot be probed.
"""

from __future__ import annotations

from sqlmodel import Session

from hms_app.db.enums import Permission
from hms_app.services.core import audit
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import PasswordChangeRequired, PermissionDenied, SessionExpired


def require(
    session: Session,
    actor: Actor | None,
    permission: Permission,
    *,
    action: str,
    allow_pending_password_change: bool = False,
) -> Actor:
    """Return ``actor`` if it holds ``permission``; otherwise audit the refusal and raise."""
    if not isinstance(actor, Actor):
        audit.deny(session, None, action, "Please log in first.", error=SessionExpired,
                   detail=f"no session; needs {permission.value}")
    if actor.must_change_password and not allow_pending_password_change:
        audit.deny(session, actor, action, "Choose a new password before you continue.",
                   error=PasswordChangeRequired, detail="password change pending")
    if not actor.can(permission):
        audit.deny(session, actor, action, "You do not have permission to do that.",
                   error=PermissionDenied, detail=f"role {actor.role} lacks {permission.value}")
    return actor


def refuse_visitor(session: Session, visitor: Anonymous, action: str, refusal: SessionExpired) -> None:
    """Audit a call that came without a valid session as denied, then raise ``refusal`` again.

    Services check permission only once they have an actor; a call whose session does not
    resolve never reaches them, so its refusal is recorded here.
    """
    audit.deny(session, visitor, action, refusal.message, error=type(refusal), detail=f"no session: {refusal.message}")
