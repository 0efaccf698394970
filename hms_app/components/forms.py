"""Form fields that always carry a visible label tied to their input."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import shown, t
from hms_app.state.auth import SessionState


def field(
    label: str | rx.Var,
    name: str,
    *,
    type: str = "text",
    required: bool = False,
    placeholder: str | rx.Var = "",
    autocomplete: str = "off",
    hint: str | rx.Var = "",
    field_id: str = "",
    **props,
) -> rx.Component:
    """A labelled text input; ``name`` is the key in the submitted form data."""
    input_id = field_id or f"field-{name}"
    hint_id = f"{input_id}-hint"
    return rx.vstack(
        rx.el.label(shown(label),
                    rx.cond(required, rx.text.span(" ", t("(required)"), color="var(--gray-11)"), rx.fragment()),
                    html_for=input_id, font_weight="500", font_size="0.9rem"),
        rx.input(
            id=input_id,
            name=name,
            type=type,
            required=required,
            placeholder=shown(placeholder),
            auto_complete=autocomplete,
            aria_describedby=hint_id if isinstance(hint, rx.Var) or hint else None,
            width="100%",
            **props,
        ),
        rx.cond(hint != "", rx.text(shown(hint), id=hint_id, size="1", color="var(--gray-11)"), rx.fragment()),
        spacing="1",
        width="100%",
        align="stretch",
    )


def select_field(label: str | rx.Var, name: str, options: list[tuple[str, str | rx.Var]] | rx.Var, *,
                 required: bool = False, field_id: str = "", default: str = "", **props) -> rx.Component:
    """A labelled native ``<select>``: keyboard and screen-reader friendly everywhere.

    The options are (value, shown text): a plain text is translated, a var list's texts are the
    state's (already in the reader's language).
    """
    input_id = field_id or f"field-{name}"
    if isinstance(options, list):
        choices = [rx.el.option(shown(text), value=value) for value, text in options]
    else:
        choices = [rx.foreach(options, lambda o: rx.el.option(o[1], value=o[0]))]
    return rx.vstack(
        rx.el.label(shown(label), html_for=input_id, font_weight="500", font_size="0.9rem"),
        rx.el.select(
            *choices,
            id=input_id,
            name=name,
            required=required,
            default_value=default,
            class_name="native-select",
            **props,
        ),
        spacing="1",
        width="100%",
        align="stretch",
    )


def filter_select(label: str | rx.Var, element_id: str, options: list[tuple[str, str | rx.Var]],
                  on_change) -> rx.Component:
    """A labelled native ``<select>`` above a table that filters it as soon as it changes."""
    return rx.vstack(
        rx.el.label(shown(label), html_for=element_id, font_weight="500", font_size="0.9rem"),
        rx.el.select(*[rx.el.option(shown(text), value=value) for value, text in options], id=element_id,
                     class_name="native-select", on_change=on_change),
        spacing="1",
    )


def form_error(message: rx.Var) -> rx.Component:
    """The last error of a form, announced to screen readers."""
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
        rx.fragment(),
    )


def submit_button(label: str | rx.Var, **props) -> rx.Component:
    """A form's submit button: while a submission of the tab is with the server it shows a spinner
    and takes no click (``SessionState.submitting``, set by ``_hold_submits``)."""
    return rx.button(shown(label), type="submit", loading=SessionState.submitting, **props)


def request_key_field(key: rx.Var) -> rx.Component:
    """The key the server issued when the form opened, submitted with it as ``request_key``: both
    clicks of a double click carry the same key, so the second writes nothing
    (``services.core.receipts``)."""
    return rx.el.input(type="hidden", name="request_key", value=key)
