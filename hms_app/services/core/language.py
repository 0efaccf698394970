"""The one translation function, and the language every text, date and amount is written in.

Every text a person reads goes through ``_`` (or ``ngettext`` where it counts something); the
English text is the message id, so an untranslated message reads in English. The catalogues are
gettext ``.po`` files under ``hms_app/locale`` (``hms i18n extract|update|compile``); the pages'
own texts are looked up in the browser from the same catalogues (``components/i18n.py``).

The language is a context variable: the app sets it for each event from the tab's language
(``state/auth.py``), a live update from the receiving tab's, an e-mail from its recipient's, the
``hms`` command from the hospital's default. A service never takes the language as an argument.

Placeholders are named and in braces (``_("Booked with {doctor}").format(doctor=...)``), so a
translation can put them in its own order.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

from hms_app import settings

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
DOMAIN = "messages"

LANGUAGES: dict[str, str] = {"en": "English", "es": "Español", "ar": "العربية"}  # i18n: not shown: own names
"""The languages shipped complete, each by its own name (how a reader finds theirs in a list)."""
RIGHT_TO_LEFT = frozenset({"ar", "he", "fa", "ur"})
SOURCE_LANGUAGE = "en"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("hms_language", default="")


def default_language() -> str:
    """The hospital's language: its locale's, when shipped; English otherwise."""
    language = settings.LOCALE.language
    return language if language in LANGUAGES else SOURCE_LANGUAGE


def shipped(code: object) -> str:
    """``code`` if it names a shipped language (``es``, ``es-MX``, ``ar_EG``), as its language; else ""."""
    language = str(code or "").strip().replace("_", "-").split("-")[0].lower()
    return language if language in LANGUAGES else ""


def preferred_language(accept_language: object) -> str:
    """The first shipped language of a browser's ``Accept-Language`` header, in its order of
    preference (``q`` weights); "" when it names none of ours."""
    choices = []
    for position, part in enumerate(str(accept_language or "").split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if shipped(tag) and weight > 0:
            choices.append((-weight, position, shipped(tag)))
    return min(choices)[2] if choices else ""


def current_language() -> str:
    """The language of what is being written now."""
    return _current.get() or default_language()


def activate(language: object) -> None:
    """Write in ``language`` (a shipped one; the hospital's otherwise) from now on in this context."""
    _current.set(shipped(language) or default_language())


@contextlib.contextmanager
def use_language(language: object) -> Iterator[str]:
    """Write in ``language`` inside the block (an e-mail in its recipient's language)."""
    reset = _current.set(shipped(language) or default_language())
    try:
        yield _current.get()
    finally:
        _current.reset(reset)


def text_direction(language: str | None = None) -> str:
    """``rtl`` or ``ltr``: how ``language`` (the current one by default) is laid out."""
    return "rtl" if (language or current_language()) in RIGHT_TO_LEFT else "ltr"


@functools.cache
def _locale(language: str, hospital_locale: str) -> Locale:
    hospital = Locale.parse(hospital_locale)
    if hospital.language == language:
        return hospital
    if hospital.territory:
        with contextlib.suppress(UnknownLocaleError, ValueError):
            return Locale.parse(f"{language}_{hospital.territory}")
    return Locale.parse(language)


def current_locale() -> Locale:
    """How dates, times, numbers and money are written now: the current language, in the
    hospital's country where Babel knows the pair (Spanish in a British hospital: ``es_GB``); in the
    hospital's own language, its locale as set (a German hospital, whose pages are in English as
    German is not shipped, still writes ``7. Dez. 2026``)."""
    language = current_language()
    return settings.LOCALE if language == default_language() else _locale(language, str(settings.LOCALE))


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English and a missing catalogue read as the ids)."""
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], DOMAIN)


def _(message: str) -> str:
    """``message`` in the current language."""
    return translations(current_language()).ugettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of ``singular``/``plural`` for ``count`` in the current language (Arabic has six)."""
    return translations(current_language()).ungettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    """``message`` in the sense ``context`` names ("time off" for the noun "Leave")."""
    return translations(current_language()).upgettext(context, message)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for it)
    """Marks ``message`` for the catalogue where it is defined (a label in a table of labels);
    it is translated where it is shown, with ``_``."""
    return message
