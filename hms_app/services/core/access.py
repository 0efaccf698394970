"""Permission and ownership checks, made inside every service call.

``require`` answers "may this role do this at all"; ``access_by_id`` answers "is this
record, whose id a client sent, the actor's to touch" and treats a forbidden record
exactly like a missing one, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from hms_app.db.enums import Permission
from hms_app.services.core import audit
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import (
    NotFound,
    PasswordChangeRequired,
    PermissionDenied,
    SessionExpired,
)
from hms_app.services.core.ids import parse_id

T = TypeVar("T")


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


def access_by_id(
    session: Session,
    actor: Actor,
    model: type[T],
    object_id: object,
    *,
    action: str,
    missing: str,
    entity_type: str,
    allowed: Callable[[T], bool] | None = None,
    lock: bool = False,
    patient_of: Callable[[T], int | None] | None = None,
) -> T:
    """The row of ``model`` whose id a client sent, if the actor may touch it.

    An id that is no id, a row that does not exist and a row that ``allowed`` refuses all
    answer alike: the refusal is audited (``action``, ``entity_type`` and the id as sent)
    and ``NotFound(missing)`` is raised. Check the permission with ``require`` first.

    Args:
        allowed: whether the actor may touch this row (their own, their patient's...);
            every existing row when None.
        lock: read the row ``FOR UPDATE``, fresh from the database, for a change that
            depends on its current state.
        patient_of: the patient to name in the audit row of a refused existing row.
    """
    key = parse_id(object_id)
    row = None
    if key is not None:
        row = (session.get(model, key, with_for_update=True, populate_existing=True) if lock
               else session.get(model, key))
    if row is None or (allowed is not None and not allowed(row)):
        audit.deny(session, actor, action, missing, error=NotFound, entity_type=entity_type,
                   entity_id=str(object_id)[:64],
                   patient_id=patient_of(row) if patient_of is not None and row is not None else None)
    return row
