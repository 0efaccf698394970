"""Changes that services publish, delivered to listeners only after the commit.

A service says which users or roles a change concerns (``publish``); once its transaction
commits, every registered listener receives the change. The UI layer registers the one
listener that pushes changes to open pages; services never know about it. A rolled-back
transaction publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

log = logging.getLogger(__name__)
_PENDING = "hms_pending_changes"


@dataclass(frozen=True)
class Change:
    """Something changed that the pages of these users or roles show."""

    topic: str
    user_ids: frozenset[int] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)


SESSIONS = "sessions"
"""Topic of a change that ends or alters the sessions of ``user_ids`` (logout, deactivation, password
or second-factor reset, password change): whoever keeps a resolved session of theirs drops it."""
PERMISSIONS = "permissions"
"""Topic of a change of what ``roles`` may do: whoever keeps an actor of such a role drops it."""

_listeners: list[Callable[[Change], None]] = []


def subscribe(listener: Callable[[Change], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Callable[[Change], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def publish(session: Session, topic: str, *, user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> None:
    """Queue a change on the session; it is delivered if and when the session commits."""
    session.info.setdefault(_PENDING, []).append(
        Change(topic, frozenset(int(u) for u in user_ids), frozenset(str(r) for r in roles))
    )


@sa.event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    changes = session.info.pop(_PENDING, [])
    for change in changes:
        for listener in list(_listeners):
            try:
                listener(change)
            except Exception:  # a broken listener must not undo a committed change
                log.exception("change listener failed for %s", change.topic)


@sa.event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)
