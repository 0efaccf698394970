"""Each role's sidebar: the pages that role works in."""

from __future__ import annotations

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
        ("Reports", "/admin/reports", "chart-column"),
        ("Audit trail", "/admin/audit", "scroll-text"),
        ("Break-glass review", "/admin/break-glass", "shield-alert"),
        ("API clients", "/admin/api-clients", "key-round"),
    ],
    Role.ACCOUNTS: [("Dashboard", "/accounts", "layout-dashboard"), ("Invoices", "/accounts/invoices", "receipt")],
    Role.DOCTOR: [
        ("Dashboard", "/doctor", "layout-dashboard"),
        ("Appointments", "/doctor/appointments", "calendar-days"),
        ("Patients", "/doctor/patients", "users"),
        ("My schedule", "/doctor/schedule", "calendar-clock"),
        ("Lab results", "/doctor/results", "flask-conical"),
    ],
    Role.LAB: [("Dashboard", "/lab", "layout-dashboard"), ("Worklist", "/lab/worklist", "flask-conical")],
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


def _items(role: Role) -> rx.Component:
    return rx.fragment(*[_link(*item) for item in NAV_ITEMS[role]])


def sidebar() -> rx.Component:
    return rx.el.nav(
        rx.flex(
            rx.match(
                SessionState.user_role,
                *[(role.value, _items(role)) for role in Role],
                rx.fragment(),
            ),
            rx.separator(size="4", margin_y="0.5rem", display=["none", "none", "block"]),
            *[_link(*item) for item in COMMON_ITEMS],
            direction=rx.breakpoints(initial="row", md="column"),
            wrap=rx.breakpoints(initial="wrap", md="nowrap"),
            spacing="1",
        ),
        aria_label="Main navigation",
        width=rx.breakpoints(initial="100%", md="15rem"),
        flex_shrink="0",
        padding="0.75rem",
        border_right=rx.breakpoints(initial="none", md="1px solid var(--gray-5)"),
        border_bottom=rx.breakpoints(initial="1px solid var(--gray-5)", md="none"),
        background="var(--gray-2)",
    )
