"""Notifications: one row per recipient; the bell shows the unread count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission
from hms_app.db.models import Notification, User
from hms_app.db.types import utcnow
from hms_app.services.core import events
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.language import N_, use_language
from hms_app.services.core.localtime import format_local
from hms_app.services.core.paging import Page, clamp_page, fetch_page


@dataclass(frozen=True)
class NotificationRow:
    id: int
    title: str
    body: str
    link: str
    created_at: str
    is_read: bool


Text = str | Callable[[], str]
"""A notification's title or body: a function that writes it (``lambda: _("Appointment moved")``),
called in the recipient's language, or a text that is the same in every language."""


def notify(session: Session, user_id: int, title: Text, body: Text = "", link: str = "") -> None:
    """Queue a notification for ``user_id`` in the caller's transaction, written in their language
    (``title`` and ``body`` are called, and any date in them formatted, with it current)."""
    with use_language(session.get(User, user_id).language):
        title = title() if callable(title) else title
        body = body() if callable(body) else body
    session.add(Notification(user_id=user_id, title=title[:200], body=body[:1000], link=link[:200]))
    events.publish(session, "notifications", user_ids=[user_id])


# Built once: the bell's count, read at every fresh session resolution and live push.
_UNREAD_OF_USER = sa.select(sa.func.count()).select_from(Notification).where(
    Notification.user_id == sa.bindparam("user_id"), Notification.read_at.is_(None)
)


def unread_count(*, session: Session, actor: Actor) -> int:
    require(session, actor, Permission.NOTIFICATIONS_OWN, action="notification.count",
            allow_pending_password_change=True)
    return session.execute(_UNREAD_OF_USER, {"user_id": actor.user_id}).scalar_one()


def list_notifications(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[NotificationRow]:
    require(session, actor, Permission.NOTIFICATIONS_OWN, action="notification.list")
    page, page_size = clamp_page(page, page_size)
    query = (
        sa.select(Notification)
        .where(Notification.user_id == actor.user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page(
        [
            NotificationRow(
                n.id, n.title, n.body, n.link,
                format_local(n.created_at), n.read_at is not None,
            )
            for (n,) in rows
        ],
        total, page, page_size,
    )


def mark_read(*, session: Session, actor: Actor, notification_id: int) -> None:
    """Mark one of the actor's own notifications read (someone else's answers "not found")."""
    require(session, actor, Permission.NOTIFICATIONS_OWN, action="notification.read")
    notification = access_by_id(session, actor, Notification, notification_id, action="notification.read",
                                missing=N_("That notification does not exist."), entity_type="notification",
                                allowed=lambda n: n.user_id == actor.user_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        session.add(notification)
        events.publish(session, "notifications", user_ids=[actor.user_id])
    session.commit()


def mark_all_read(*, session: Session, actor: Actor) -> int:
    require(session, actor, Permission.NOTIFICATIONS_OWN, action="notification.read_all")
    result = session.execute(
        sa.update(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    events.publish(session, "notifications", user_ids=[actor.user_id])
    session.commit()
    return result.rowcount or 0
