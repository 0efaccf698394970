"""Status badges with text, never colour alone."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import shown, t


def status_badge(text: rx.Var | str, *, active: rx.Var | bool) -> rx.Component:
    """``text`` (English, shown in the reader's language, or a translated var) green when ``active``."""
    return rx.badge(shown(text), color_scheme=rx.cond(active, "grass", "gray"), variant="soft", size="2")


def outcome_badge(outcome: rx.Var) -> rx.Component:
    """An audited action's outcome (the code the audit trail keeps), in the reader's words."""
    return rx.badge(
        rx.match(outcome, ("success", t("success")), ("denied", t("denied")), ("failed", t("failed")), outcome),
        color_scheme=rx.match(outcome, ("success", "grass"), ("denied", "red"), ("failed", "orange"), "gray"),
        variant="soft",
        high_contrast=True,  # orange text on orange at 12px falls short of WCAG AA (3.98:1)
    )


def appointment_badge(status: rx.Var, label: rx.Var) -> rx.Component:
    """An appointment's status in words, coloured by meaning (pending amber, confirmed green...)."""
    return rx.badge(
        label,
        color_scheme=rx.match(
            status,
            ("requested", "amber"),
            ("confirmed", "grass"),
            ("completed", "indigo"),
            ("cancelled", "gray"),
            ("declined", "red"),
            ("no_show", "orange"),
            "gray",
        ),
        variant="soft",
        high_contrast=True,
        size="2",
        class_name="appointment-status",
        data_status=status,
    )
