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
    )
