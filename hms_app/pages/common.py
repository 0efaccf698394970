"""Pages every role has: notifications."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.services.core.language import N_
from hms_app.services.messaging.notifications import NotificationRow
from hms_app.state.dashboard import NotificationsState


def _notification_row(n: NotificationRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.cond(n.is_read, rx.badge(t("Read"), color_scheme="gray"), rx.badge(t("New"), color_scheme="indigo"))),
        rx.table.cell(rx.text(n.title, weight="medium"), rx.text(n.body, size="2", color="var(--gray-11)")),
        rx.table.cell(n.created_at),
        rx.table.cell(
            rx.cond(
                n.is_read,
                rx.fragment(),
                rx.button(t("Mark read"), size="1", variant="soft", on_click=NotificationsState.mark_read(n.id),
                          aria_label=t("Mark read: {title}", title=n.title)),
            )
        ),
    )


def notifications_page() -> rx.Component:
    return page_shell(
        N_("Notifications"),
        data_table(
            NotificationsState,
            caption=N_("Your notifications, newest first"),
            columns=[("", N_("Status")), ("", N_("Message")), ("", N_("When")), ("", N_("Action"))],
            rows=NotificationsState.rows,
            render_row=_notification_row,
            empty=N_("No notifications yet. Updates about your work and appointments will appear here."),
        ),
        actions=rx.button(t("Mark all as read"), variant="soft", on_click=NotificationsState.mark_all_read),
    )
