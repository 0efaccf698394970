"""Status badges with text, never colour alone."""

from __future__ import annotations

import reflex as rx


def status_badge(text: rx.Var | str, *, active: rx.Var | bool) -> rx.Component:
    return rx.badge(text, color_scheme=rx.cond(active, "grass", "gray"), variant="soft", size="2")


def outcome_badge(outcome: rx.Var) -> rx.Component:
    return rx.badge(
        outcome,
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
