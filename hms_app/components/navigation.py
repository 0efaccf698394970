"""Each role's sidebar: the pages that role works in."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from hms_app.db.enums import Role
from hms_app.state.auth import SessionState

NAV_ITEMS: dict[Role, list[tuple[str, str, str]]] = {
    Role.ADMIN: [
        ("Dashboard", "/admin", "layout-dashboard"),
        ("Users", "/admin/users", "users"),
        ("Departments", "/admin/departments", "building-2"),
        ("Permissions", "/admin/permissions", "shield-check"),
        ("Appointments", "/admin/appointments", "calendar-days"),
        ("Schedules", "/admin/schedules", "calendar-clock"),
        ("Lab catalog", "/lab/catalog", "test-tubes"),
        ("Stock", "/pharmacy/stock", "package"),
        ("Prices", "/accounts/prices", "tags"),
        ("Reports", "/admin/reports", "chart-column"),
        ("Audit trail", "/admin/audit", "scroll-text"),
        ("Break-glass review", "/admin/break-glass", "shield-alert"),
        ("API clients", "/admin/api-clients", "key-round"),
        ("Import data", "/admin/import", "file-up"),
    ],
    Role.ACCOUNTS: [("Dashboard", "/accounts", "layout-dashboard"), ("Invoices", "/accounts/invoices", "receipt"),
                    ("Prices", "/accounts/prices", "tags")],
    Role.DOCTOR: [
        ("Dashboard", "/doctor", "layout-dashboard"),
        ("Appointments", "/doctor/appointments", "calendar-days"),
        ("Patients", "/doctor/patients", "users"),
        ("My schedule", "/doctor/schedule", "calendar-clock"),
        ("Lab results", "/doctor/results", "flask-conical"),
    ],
    Role.LAB: [("Dashboard", "/lab", "layout-dashboard"), ("Worklist", "/lab/worklist", "flask-conical"),
               ("Lab catalog", "/lab/catalog", "test-tubes")],
    Role.PHARMACY: [
        ("Dashboard", "/pharmacy", "layout-dashboard"),
        ("Prescription queue", "/pharmacy/queue", "pill"),
        ("Stock", "/pharmacy/stock", "package"),
        ("Stock ledger", "/pharmacy/ledger", "list-ordered"),
    ],
    Role.PATIENT: [
        ("My dashboard", "/patient", "layout-dashboard"),
        ("Book appointment", "/patient/book", "calendar-plus"),
        ("My appointments", "/patient/appointments", "calendar-days"),
        ("My health record", "/patient/history", "file-heart"),
        ("My results", "/patient/results", "flask-conical"),
        ("My prescriptions", "/patient/prescriptions", "pill"),
        ("My invoices", "/patient/invoices", "receipt"),
    ],
}
COMMON_ITEMS = [
    ("Notifications", "/notifications", "bell"),
    ("Change password", "/account/password", "key-round"),
]


def _link(label: str, href: str, icon: str) -> rx.Component:
    current = rx.State.router.page.path == href
    return rx.link(
        rx.hstack(rx.icon(icon, size=18, aria_hidden="true"), rx.text(label), spacing="2", align="center"),
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


def _links(wrap: Callable[[rx.Component], rx.Component] = lambda link: link) -> rx.Component:
    """The signed-in role's pages, then the pages every role has, one under the other."""
    def items(role: Role) -> rx.Component:
        return rx.fragment(*[wrap(_link(*item)) for item in NAV_ITEMS[role]])

    return rx.flex(
        rx.match(SessionState.user_role, *[(role.value, items(role)) for role in Role], rx.fragment()),
        rx.separator(size="4", margin_y="0.5rem"),
        *[wrap(_link(*item)) for item in COMMON_ITEMS],
        direction="column",
        spacing="1",
    )


def sidebar() -> rx.Component:
    """The navigation at a desk: a column beside the page (hidden on narrow screens, where
    ``menu_button`` opens it)."""
    return rx.el.nav(
        _links(),
        aria_label="Main navigation",
        class_name="wide-only",
        width="15rem",
        flex_shrink="0",
        padding="0.75rem",
        border_right="1px solid var(--gray-5)",
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
            rx.button(rx.icon("menu", size=18, aria_hidden="true"), "Menu", variant="soft", color_scheme="gray",
                      id="menu-button", class_name="narrow-only"),
        ),
        rx.dialog.content(
            rx.flex(
                rx.dialog.title("Menu", size="4", margin="0"),
                rx.dialog.close(rx.icon_button(rx.icon("x", size=18, aria_hidden="true"), variant="ghost",
                                               color_scheme="gray", aria_label="Close menu")),
                justify="between",
                align="center",
                margin_bottom="0.75rem",
            ),
            rx.dialog.description("The pages you can open.", class_name="visually-hidden"),
            rx.el.nav(_links(rx.dialog.close), aria_label="Main navigation"),
            class_name="nav-sheet",
        ),
    )
