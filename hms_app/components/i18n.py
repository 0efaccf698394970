"""The pages' own texts in the reader's language, switched live in the browser.

A page's text is compiled once into the front end, so it cannot be translated on the server:
``t("Book appointment")`` is a var that looks the text up in the browser, in the catalogue of the
tab's language (``SessionState.language``), compiled from the same ``.po`` files as the
server's ``_`` (``assets/i18n/messages.js``). A change of language re-renders every text at
once, without a reload. Placeholders are named, in braces, and may be vars:
``t("{count} unread", count=SessionState.unread_count)``.

Texts the server writes (a toast, a table's rows, a status label) use ``_`` from
``services/core/language.py`` instead.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from reflex.vars.base import VarData

from hms_app.services.core.language import LANGUAGES
from hms_app.state.auth import SessionState

_LIBRARY = "$/public/i18n/hms_i18n.js"


def _js(value: Any) -> tuple[str, VarData | None]:
    if isinstance(value, rx.Var):
        return f"({value!s})", value._get_all_var_data()
    return json.dumps(value, ensure_ascii=False), None


CONTEXT_SEPARATOR = "\x04"
"""gettext's mark between a message's context and its text, in the compiled catalogues' keys."""


def _call(function: str, *args: Any, params: dict[str, Any]) -> rx.Var[str]:
    language = SessionState.language
    parts, data = [str(language)], [language._get_all_var_data(), VarData(imports={_LIBRARY: [function]})]
    for arg in args:
        text, var_data = _js(arg)
        parts.append(text)
        data.append(var_data)
    if params:
        entries = []
        for name, value in params.items():
            text, var_data = _js(value)
            entries.append(f"{json.dumps(name)}: {text}")
            data.append(var_data)
        parts.append("{" + ", ".join(entries) + "}")
    return rx.Var(_js_expr=f"{function}({', '.join(parts)})", _var_type=str,
                  _var_data=VarData.merge(*data)).to(str)


def t(message: str, /, **params: Any) -> rx.Var[str]:
    """``message`` in the tab's language, its ``{placeholders}`` filled from ``params``."""
    return _call("hmsT", message, params=params)


def pt(context: str, message: str, /, **params: Any) -> rx.Var[str]:
    """``message`` in the sense ``context`` names, where English uses one word for two things
    ("Leave" as time off, and as a verb): each is translated on its own."""
    return _call("hmsT", f"{context}{CONTEXT_SEPARATOR}{message}", params=params)


def tn(singular: str, plural: str, count: Any, /, **params: Any) -> rx.Var[str]:
    """The form of ``singular``/``plural`` for ``count`` (``{n}`` in the text) in the tab's language."""
    return _call("hmsTn", singular, plural, count, params=params)


def shown(text: str | rx.Var) -> str | rx.Var:
    """A text a component renders, in the reader's language.

    A component takes its labels as plain English texts (marked ``N_("…")`` where the caller
    writes them, so the catalogue has them) or as vars already in the reader's language
    (``t("…")``, a state's translated text): a plain text is looked up here, a var is shown as
    it is. An empty text stays empty.
    """
    return t(text) if isinstance(text, str) and text else text


class HmsDocument(rx.Component):
    """Sets the page's ``lang``, ``dir`` and title from the tab's language (renders nothing)."""

    library = _LIBRARY
    tag = "HmsDocument"
    language: rx.Var[str]
    title: rx.Var[str]


def document(title: Any = "") -> rx.Component:
    """The page's language, direction and (translated) title, for every page's shell."""
    return HmsDocument.create(language=SessionState.language, title=title)


def language_picker(element_id: str = "language") -> rx.Component:
    """The reader's language, switched at once: on the login page and in every signed-in menu.

    Each language is listed by its own name, so a reader finds theirs whatever the page is in.
    """
    return rx.el.label(
        rx.hstack(
            rx.icon("languages", size=16, aria_hidden="true"),
            rx.text(t("Language"), size="2"),
            spacing="1",
            align="center",
        ),
        rx.el.select(
            *[rx.el.option(name, value=code, lang=code) for code, name in LANGUAGES.items()],
            value=SessionState.language,
            on_change=SessionState.choose_language,
            id=element_id,
            class_name="native-select",
        ),
        html_for=element_id,
        style={"display": "flex", "flex_direction": "column", "gap": "0.25rem"},
    )
