"""Permission and ownership checks, made inside every service call.

``require`` answers "may this role do this at all"; ``access_by_id`` answers "is this
record, whose id a client sent, the actor's to touch" and treats a forbidden record
exactly like a missing one, so ids cannot be probed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session

from hms_app import settings
from hms_app.db.engine import begin_write
from hms_app.db.enums import AuditOutcome, Permission
from hms_app.services.core import audit
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import (
    NotFound,
    PasswordChangeRequired,
    PermissionDenied,
    SessionExpired,
)
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_

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
        audit.deny(session, None, action, N_("Please log in first."), error=SessionExpired,
                   detail=f"no session; needs {permission.value}")  # i18n: not shown
    if actor.must_change_password and not allow_pending_password_change:
        audit.deny(session, actor, action, N_("Choose a new password before you continue."),
                   error=PasswordChangeRequired, detail="password change pending")  # i18n: not shown
    if not actor.can(permission):
        audit.deny(session, actor, action, N_("You do not have permission to do that."),
                   error=PermissionDenied, detail=f"role {actor.role} lacks {permission.value}")  # i18n: not shown
    return actor


@dataclass
class _Refusals:
    """The refusals of one connection with no session since its last audit row."""

    visitor: Anonymous
    started: float
    action: str = ""
    message: str = ""
    count: int = 0


class VisitorRefusals:
    """Which refusals of callers with no session to audit at once, and which to count.

    A script can send a refused event thousands of times a second. The first refusal of a
    connection is audited at once; those that follow within ``window`` seconds are counted and
    written as one row when the window ends or the connection closes (``flush_visitor_refusals``).
    Refusals run in worker threads, hence the lock.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._open: dict[str, _Refusals] = {}

    def note(self, connection: str, visitor: Anonymous, action: str, message: str, now: float) -> bool:
        """Whether to audit this refusal at once (True) or count it for the connection's row.

        The window of a connection that has ended must have been taken (``due``) before.
        """
        if not connection or self.window <= 0:
            return True
        with self._lock:
            refusals = self._open.get(connection)
            if refusals is None or now - refusals.started >= self.window:
                self._open[connection] = _Refusals(visitor, now)
                return True
            refusals.count += 1
            refusals.action, refusals.message = action, message
            return False

    def due(self, now: float, connection: str | None = None) -> list[_Refusals]:
        """Take the counts to write: of the windows that have ended, and all of ``connection`` (closed)."""
        with self._lock:
            keys = [key for key, refusals in self._open.items()
                    if key == connection or now - refusals.started >= self.window]
            taken = [self._open.pop(key) for key in keys]
        return [refusals for refusals in taken if refusals.count]

    def pending(self, connection: str) -> bool:
        return connection in self._open


VISITOR_REFUSALS = VisitorRefusals(settings.VISITOR_REFUSAL_WINDOW)


def refuse_visitor(session: Session, visitor: Anonymous, action: str, refusal: SessionExpired, *,
                   connection: str = "") -> None:
    """Audit a call that came without a valid session as denied, then raise ``refusal`` again.

    Services check permission only once they have an actor; a call whose session does not
    resolve never reaches them, so its refusal is recorded here: the first of ``connection``
    (the websocket connection it came on) at once, those that follow within
    ``settings.VISITOR_REFUSAL_WINDOW`` seconds as one row with their count.
    """
    now = time.monotonic()
    flush_visitor_refusals(session, now=now)
    if not VISITOR_REFUSALS.note(connection, visitor, action, refusal.message, now):
        session.rollback()
        raise refusal
    audit.deny(session, visitor, action, refusal.message, error=type(refusal), detail=f"no session: {refusal.message}")  # i18n: not shown


def flush_visitor_refusals(session: Session, *, connection: str | None = None, now: float | None = None) -> int:
    """Write one denied row for each connection's counted refusals: of the windows that have
    ended, and all of ``connection`` when it has closed. Returns how many rows were written."""
    taken = VISITOR_REFUSALS.due(time.monotonic() if now is None else now, connection)
    if not taken:
        return 0
    session.rollback()
    begin_write(session)
    for refusals in taken:
        audit.record(session, refusals.visitor, refusals.action, outcome=AuditOutcome.DENIED,
                     detail=f"{refusals.count} more refusals with no session on this connection within "  # i18n: not shown
                            f"{VISITOR_REFUSALS.window:g} s, the last of {refusals.action}: {refusals.message}")
    session.commit()
    return len(taken)


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
