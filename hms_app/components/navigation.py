"""Each role's sidebar: the pages that role works in."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from hms_app.components.i18n import language_picker, t
from hms_app.db.enums import Role
from hms_app.services.core.language import N_
from hms_app.state.auth import SessionState

NAV_ITEMS: dict[Role, list[tuple[str, str, str]]] = {
    Role.ADMIN: [
        (N_("Dashboard"), "/admin", "layout-dashboard"),
        (N_("Users"), "/admin/users", "users"),
        (N_("Departments"), "/admin/departments", "building-2"),
        (N_("Permissions"), "/admin/permissions", "shield-check"),
        (N_("Appointments"), "/admin/appointments", "calendar-days"),
        (N_("Schedules"), "/admin/schedules", "calendar-clock"),
        (N_("Lab catalog"), "/lab/catalog", "test-tubes"),
        (N_("Stock"), "/pharmacy/stock", "package"),
        (N_("Prices"), "/accounts/prices", "tags"),
        (N_("Reports"), "/admin/reports", "chart-column"),
        (N_("Audit trail"), "/admin/audit", "scroll-text"),
        (N_("Break-glass review"), "/admin/break-glass", "shield-alert"),
        (N_("API clients"), "/admin/api-clients", "key-round"),
        (N_("Import data"), "/admin/import", "file-up"),
    ],
    Role.ACCOUNTS: [(N_("Dashboard"), "/accounts", "layout-dashboard"), (N_("Invoices"), "/accounts/invoices", "receipt"),
                    (N_("Prices"), "/accounts/prices", "tags")],
    Role.DOCTOR: [
        (N_("Dashboard"), "/doctor", "layout-dashboard"),
        (N_("Appointments"), "/doctor/appointments", "calendar-days"),
        (N_("Patients"), "/doctor/patients", "users"),
        (N_("My schedule"), "/doctor/schedule", "calendar-clock"),
        (N_("Lab results"), "/doctor/results", "flask-conical"),
    ],
    Role.LAB: [(N_("Dashboard"), "/lab", "layout-dashboard"), (N_("Worklist"), "/lab/worklist", "flask-conical"),
               (N_("Lab catalog"), "/lab/catalog", "test-tubes")],
    Role.PHARMACY: [
        (N_("Dashboard"), "/pharmacy", "layout-dashboard"),
        (N_("Prescription queue"), "/pharmacy/queue", "pill"),
        (N_("Stock"), "/pharmacy/stock", "package"),
        (N_("Stock ledger"), "/pharmacy/ledger", "list-ordered"),
    ],
    Role.PATIENT: [
        (N_("My dashboard"), "/patient", "layout-dashboard"),
        (N_("Book appointment"), "/patient/book", "calendar-plus"),
        (N_("My appointments"), "/patient/appointments", "calendar-days"),
        (N_("My health record"), "/patient/history", "file-heart"),
        (N_("My results"), "/patient/results", "flask-conical"),
        (N_("My prescriptions"), "/patient/prescriptions", "pill"),
        (N_("My invoices"), "/patient/invoices", "receipt"),
    ],
}
COMMON_ITEMS = [
    (N_("Notifications"), "/notifications", "bell"),
    (N_("Change password"), "/account/password", "key-round"),
]


def _link(label: str, href: str, icon: str) -> rx.Component:
    current = rx.State.router.page.path == href
    return rx.link(
        rx.hstack(rx.icon(icon, size=18, aria_hidden="true"), rx.text(t(label)), spacing="2", align="center"),
        href=href,
        aria_current=rx.cond(current, "page", "false"),
        underline="none",
        padding_x="0.75rem",
        padding_y="0.5rem",
        border_radius="var(--radius-2)",
        color=rx.cond(current, "var(--accent-12)", "var(--gray-12)"),
        background=rx.cond(current, "var(--accent-4)", "transparent"),
        font_weight=rx.cond(current, "600", "400"),
        _hover={"background": "var(--accent-3)"},
        white_space="nowrap",
    )


def _same(link: rx.Component) -> rx.Component:
    return link


def _links(wrap: Callable[[rx.Component], rx.Component] = _same) -> rx.Component:
    """The signed-in role's pages, then the pages every role has, one under the other."""
    def items(role: Role) -> rx.Component:
        return rx.fragment(*[wrap(_link(*item)) for item in NAV_ITEMS[role]])

    return rx.flex(
        rx.match(SessionState.user_role, *[(role.value, items(role)) for role in Role], rx.fragment()),
        rx.separator(size="4", margin_y="0.5rem"),
        *[wrap(_link(*item)) for item in COMMON_ITEMS],
        rx.separator(size="4", margin_y="0.5rem"),
        language_picker("nav-language" if wrap is _same else "menu-language"),
        direction="column",
        spacing="1",
    )


def sidebar() -> rx.Component:
    """The navigation at a desk: a column beside the page (hidden on narrow screens, where
    ``menu_button`` opens it)."""
    return rx.el.nav(
        _links(),
        aria_label=t("Main navigation"),
        class_name="wide-only",
        width="15rem",
        flex_shrink="0",
        padding="0.75rem",
        border_inline_end="1px solid var(--gray-5)",
        background="var(--gray-2)",
    )


def menu_button() -> rx.Component:
    """On a narrow screen: the Menu button, which opens the navigation as a sheet from the left.

    A Radix dialog, so it traps focus, closes on Escape or a tap outside and gives focus back
    to the button; choosing a page closes it too. It lives in the browser alone: no event
    reaches the server to open or close it.
    """
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("menu", size=18, aria_hidden="true"), t("Menu"), variant="soft", color_scheme="gray",
                      id="menu-button", class_name="narrow-only"),
        ),
        rx.dialog.content(
            rx.flex(
                rx.dialog.title(t("Menu"), size="4", margin="0"),
                rx.dialog.close(rx.icon_button(rx.icon("x", size=18, aria_hidden="true"), variant="ghost",
                                               color_scheme="gray", aria_label=t("Close menu"))),
                justify="between",
                align="center",
                margin_bottom="0.75rem",
            ),
            rx.dialog.description(t("The pages you can open."), class_name="visually-hidden"),
            rx.el.nav(_links(rx.dialog.close), aria_label=t("Main navigation")),
            class_name="nav-sheet",
        ),
    )
