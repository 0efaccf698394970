"""The shell every signed-in page lives in: header, sidebar, one main landmark."""

from __future__ import annotations

import reflex as rx

from hms_app import settings
from hms_app.components.i18n import document, language_picker, shown, t, tn
from hms_app.components.navigation import menu_button, sidebar
from hms_app.components.table import label_table_cells
from hms_app.state.auth import SessionState


def skip_link() -> rx.Component:
    return rx.el.a(
        t("Skip to main content"),
        href="#main-content",
        class_name="skip-link",
    )


def notification_bell() -> rx.Component:
    return rx.link(
        rx.box(
            rx.icon("bell", size=20, aria_hidden="true"),
            rx.cond(
                SessionState.unread_count > 0,
                rx.badge(SessionState.unread_count, color_scheme="red", variant="solid",
                         position="absolute", top="-8px", inset_inline_end="-10px", radius="full", size="1"),
            ),
            position="relative",
        ),
        href="/notifications",
        aria_label=rx.cond(
            SessionState.unread_count > 0,
            tn("Notifications: {n} unread", "Notifications: {n} unread", SessionState.unread_count),
            t("Notifications: none unread"),
        ),
        color="var(--gray-12)",
        padding="0.4rem",
    )


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            menu_button(),
            rx.hstack(
                rx.icon("hospital", size=26, color="var(--accent-11)", aria_hidden="true"),
                rx.text(settings.HOSPITAL_NAME, weight="bold", size="4", class_name="phone-hidden"),
                align="center",
                spacing="2",
            ),
            rx.spacer(),
            rx.hstack(
                notification_bell(),
                rx.vstack(
                    rx.text(SessionState.user_name, weight="medium", size="2", id="user-name"),
                    rx.text(SessionState.role_label, size="1", color="var(--gray-11)", id="user-role"),
                    spacing="0",
                    align="end",
                ),
                rx.button(
                    rx.icon("log-out", size=16, aria_hidden="true"),
                    rx.el.span(t("Log out"), class_name="phone-hidden"),
                    on_click=SessionState.logout,
                    variant="soft",
                    color_scheme="gray",
                ),
                align="center",
                spacing=rx.breakpoints(initial="3", sm="4"),
            ),
            width="100%",
            align="center",
            wrap="wrap",
            spacing="2",
        ),
        padding_x="1rem",
        padding_y="0.6rem",
        border_bottom="1px solid var(--gray-5)",
        background="white",
    )


def page_shell(title: str | rx.Var, *children: rx.Component, actions: rx.Component | None = None) -> rx.Component:
    """A signed-in page: header, the role's sidebar and a main landmark titled ``title`` (an English
    text, translated here, or a ``t(...)`` var).

    Every table on the page gets its cells labelled for the narrow-screen cards.
    """
    children = tuple(label_table_cells(child) for child in children)
    title = shown(title)
    return rx.box(
        document(t("{page} · {hospital}", page=title, hospital=settings.HOSPITAL_NAME)),
        skip_link(),
        header(),
        rx.flex(
            sidebar(),
            rx.el.main(
                rx.vstack(
                    rx.hstack(
                        rx.heading(title, as_="h1", size="6"),
                        rx.spacer(),
                        actions or rx.fragment(),
                        width="100%",
                        align="center",
                        wrap="wrap",
                        spacing="2",
                    ),
                    *children,
                    spacing="5",
                    width="100%",
                ),
                id="main-content",
                tab_index=-1,
                flex="1",
                min_width="0",
                padding=rx.breakpoints(initial="1rem", md="1.5rem"),
            ),
            min_height="calc(100vh - 57px)",
        ),
    )


def public_shell(title: str | rx.Var, *children: rx.Component) -> rx.Component:
    """A page for visitors (login, registration): a centred card in a main landmark, with the
    language picker above it."""
    title = shown(title)
    return rx.box(
        document(t("{page} · {hospital}", page=title, hospital=settings.HOSPITAL_NAME)),
        rx.el.main(
            rx.center(
                rx.card(
                    rx.vstack(
                        rx.hstack(
                            rx.icon("hospital", size=30, color="var(--accent-11)", aria_hidden="true"),
                            rx.text(settings.HOSPITAL_NAME, weight="bold", size="4"),
                            align="center",
                            spacing="2",
                        ),
                        rx.heading(title, as_="h1", size="6"),
                        *children,
                        rx.separator(size="4"),
                        language_picker("login-language"),
                        spacing="4",
                        width="100%",
                    ),
                    width="100%",
                    max_width="28rem",
                    size="3",
                ),
                min_height="100vh",
                padding="1rem",
            ),
            id="main-content",
        ),
        background="var(--gray-2)",
    )
