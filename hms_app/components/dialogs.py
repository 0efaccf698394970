"""The one dialog of every page: a title, what it is about, its body, and the buttons that close it.

Radix gives each dialog its focus trap, Escape, the return of focus to what opened it, and
the title and description that name and describe it to screen readers; these functions lay
them out alike everywhere. A dialog is controlled by its state (``open``, and ``on_close``
when Escape, a click outside or a close button shuts it) or opened by a ``trigger``. An
alert dialog (``alert=True``) asks for an answer: no click outside dismisses it.

Titles, descriptions and button labels are plain English texts, shown in the reader's language,
or vars already translated (``components.forms.shown``).
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from hms_app.components.forms import submit_button
from hms_app.components.i18n import shown


def dialog(
    title: str | rx.Var,
    *body: rx.Component,
    description: str | rx.Var | rx.Component | None = None,
    open: rx.Var | None = None,
    on_close: Any = None,
    trigger: rx.Component | None = None,
    alert: bool = False,
    title_aside: rx.Component | None = None,
    buttons: tuple[rx.Component, ...] | list[rx.Component] = (),
    max_width: str | None = None,
) -> rx.Component:
    """A dialog or an alert dialog.

    Args:
        title: what the dialog is, its accessible name.
        body: what it shows below the description.
        description: one line on what it is about (size 2 in a dialog; an alert dialog's
            description is its message, at the text's own size).
        open: the state's condition for showing it.
        on_close: the state's handler that closes it (no argument).
        trigger: the button that opens an uncontrolled dialog.
        alert: an alert dialog, answered by its buttons only.
        title_aside: shown beside the title (a status badge).
        buttons: the buttons that close it, at its foot on the right (``close_button``,
            ``action_button``); a form's buttons belong in the form (``form_buttons``).
        max_width: wider or narrower than Radix's default (600px); on a small screen the dialog
            is narrower still (``fit_to_screen``).
    """
    kit = rx.alert_dialog if alert else rx.dialog
    heading = kit.title(shown(title))
    if title_aside is not None:
        heading = rx.flex(heading, title_aside, spacing="3", align="center")
    parts = [heading]
    if description is not None:
        about = description if isinstance(description, rx.Component) else shown(description)
        parts.append(kit.description(about) if alert else kit.description(about, size="2"))
    parts.extend(body)
    if buttons:
        parts.append(rx.flex(*buttons, spacing="3", justify="end", margin_top="1rem"))
    content = kit.content(*parts, **fit_to_screen(max_width))
    root_props: dict[str, Any] = {}
    if open is not None:
        root_props["open"] = open
    if on_close is not None:
        root_props["on_open_change"] = lambda _open: on_close()
    opener = [kit.trigger(trigger)] if trigger is not None else []
    return kit.root(*opener, content, **root_props)


def fit_to_screen(max_width: str | None = None) -> dict[str, str]:
    """A dialog's size: at most ``max_width`` (Radix's default otherwise) and never wider or
    taller than the screen, scrolling inside itself when its content is longer."""
    return {
        "max_width": f"min({max_width or '600px'}, calc(100vw - 1.5rem))",
        "max_height": "calc(100dvh - 1.5rem)",
        "overflow_y": "auto",
    }


def close_button(label: str | rx.Var = "Close", on_click: Any = None, *, alert: bool = False,
                 **props: Any) -> rx.Component:
    """The quiet button that closes a dialog (an alert dialog's is its cancel)."""
    button = rx.button(shown(label), variant="soft", color_scheme="gray", on_click=on_click, **props)
    return rx.alert_dialog.cancel(button) if alert else rx.dialog.close(button)


def action_button(label: str | rx.Var, on_click: Any, **props: Any) -> rx.Component:
    """An alert dialog's answer: it does ``on_click`` and closes the dialog."""
    return rx.alert_dialog.action(rx.button(shown(label), on_click=on_click, **props))


def form_buttons(submit: str | rx.Var, on_close: Any, *, close: str | rx.Var = "Cancel",
                 **submit_props: Any) -> rx.Component:
    """The foot of a form in a dialog: close without saving, and submit."""
    return rx.hstack(
        close_button(close, on_close, type="button"),
        submit_button(submit, **submit_props),
        justify="end", width="100%",
    )


def confirm_dialog(question: str | rx.Var, consequence: str | rx.Var, *, confirm: str | rx.Var, trigger: rx.Component,
                   on_confirm: Any = None, form: str | rx.Var = "", keep: str | rx.Var = "Cancel",
                   color_scheme: str = "red") -> rx.Component:
    """Ask before a destructive action: what will happen, then Cancel (focused first; Escape too) or do it.

    Args:
        question: names the action and its object ("Void invoice INV-2026-000042?").
        consequence: what follows ("This cannot be undone.").
        confirm: the label of the button that does it.
        trigger: the button that asks.
        on_confirm: the event that does it; or
        form: the id of the form whose submission does it (a reason typed in it goes along).
        keep: the label of the button that does nothing (where "Cancel" would be ambiguous).
    """
    attrs = {} if on_confirm is not None else {"custom_attrs": {"form": form}, "type": "submit"}
    answer = rx.button(shown(confirm), color_scheme=color_scheme, on_click=on_confirm, **attrs)
    return dialog(question, description=consequence, trigger=trigger, alert=True,
                  buttons=[close_button(keep, alert=True), rx.alert_dialog.action(answer)])
