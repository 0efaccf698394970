"""Hooks a page onto the live hub: when a watched counter changes, an event re-fetches."""

from __future__ import annotations

import reflex as rx


def live_refresh(counter: rx.Var, handler) -> rx.Component:
    """An invisible element re-mounted whenever ``counter`` changes; mounting calls ``handler``.

    Every change of the counter triggers one re-fetch through the page's permission-checked
    handler (the first mount, at page load, does too, which costs one cheap query).
    """
    return rx.el.span(key=counter.to_string(), on_mount=handler, hidden=True, aria_hidden="true")
