"""Numbers as people type them into forms and read them: whole numbers and amounts of money.

Money is integer cents of ``settings.CURRENCY`` everywhere; ``format_money`` is how every page,
PDF, e-mail and chart shows it, and ``format_number`` every other number, both in the locale of
the current language (``language.current_locale``: the hospital's ``settings.LOCALE`` when the
reader uses the hospital's language). Typed amounts are read in that same locale.
"""

from __future__ import annotations

from decimal import Decimal

from babel import numbers as babel_numbers

from hms_app import settings
from hms_app.services.core import language
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _

_DIRECTION_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))
"""Left-to-right, right-to-left and Arabic letter marks: invisible, and written into amounts by CLDR."""


def _plain_amount(value: object) -> str:
    """An amount as typed or as ``format_money`` wrote it, reduced to ``1234.50``.

    The currency's symbol or code, spaces and the direction marks some locales write (Arabic's) go.
    The decimal mark is the locale's or ``.``, followed by one or two final digits; any other mark
    must be the locale's group mark before three digits. So
    ``£1,234.50``, ``120.50`` and (in de-DE) ``1.234,50 €`` read, and ``1.234`` or ``12,50`` in en-GB,
    which could mean two things, are refused rather than guessed.
    """
    locale = language.current_locale()
    text = str(value or "").strip()
    for mark in (babel_numbers.get_currency_symbol(settings.CURRENCY, locale=locale), settings.CURRENCY):
        text = text.replace(mark, "")
    text = "".join(text.translate(_DIRECTION_MARKS).split())
    decimal_marks = {".", babel_numbers.get_decimal_symbol(locale)}
    group = babel_numbers.get_group_symbol(locale)
    whole, fraction = text, ""
    for position in (len(text) - 2, len(text) - 3):
        if position > 0 and text[position] in decimal_marks and text[position + 1:].isdigit():
            whole, fraction = text[:position], text[position + 1:]
            break
    groups = whole.split(group) if group in ".," else [whole]
    if len(groups) > 1 and not (groups[0].isdigit() and all(len(g) == 3 for g in groups[1:])):
        return text  # a stray mark: let the caller refuse it
    return "".join(groups) + (f".{fraction}" if fraction else "")


def parse_money(value: object, label: str) -> int:
    """A non-negative amount typed as ``120``, ``120.50``, ``1,234.50`` or ``£120.50`` into integer cents."""
    text = _plain_amount(value)
    try:
        whole, _point, fraction = text.partition(".")
        if not whole.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 2)):
            raise ValueError
        cents = int(whole) * 100 + int((fraction or "0").ljust(2, "0"))
    except ValueError:
        raise ValidationError(_("Enter the {label} as an amount like 120 or 120.50.").format(label=label)) from None
    if cents > 100_000_000:
        raise ValidationError(_("The {label} is too large.").format(label=label))
    return cents


def parse_int(value: object, label: str, *, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(_("Enter the {label} as a whole number.").format(label=label)) from None
    if not low <= number <= high:
        raise ValidationError(_("The {label} must be between {low} and {high}.").format(label=label, low=low, high=high))
    return number


def _amount(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def format_money(cents: int) -> str:
    """Integer cents in the hospital's currency and locale: ``£1,234.50`` (en-GB), ``1.234,50 £`` (de-DE).

    A refund or a credit reads with a minus sign (``−£5.00``), not a hyphen.
    """
    text = babel_numbers.format_currency(_amount(abs(cents)), settings.CURRENCY, locale=language.current_locale())
    return f"−{text}" if cents < 0 else text


def format_number(value: float | int, *, decimals: int = 0) -> str:
    """A count or a measure with the locale's grouping and decimal mark: ``12,345`` · ``12.345``."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=language.current_locale())


def format_percent(part: float, whole: float) -> str:
    """``part`` of ``whole`` as a whole percentage in the locale (``42%``, ``42 %``); "–" when ``whole`` is 0."""
    return babel_numbers.format_percent(part / whole, locale=language.current_locale()) if whole else "–"


def money_axis() -> dict[str, str]:
    """Plotly layout settings that make a chart's money axis read like ``format_money``: the locale's
    decimal and group marks and the currency's symbol on the side the locale writes it."""
    locale = language.current_locale()
    symbol = babel_numbers.get_currency_symbol(settings.CURRENCY, locale=locale)
    sample = babel_numbers.format_currency(Decimal(1), settings.CURRENCY, locale=locale)
    before = sample.startswith(symbol)
    return {"separators": babel_numbers.get_decimal_symbol(locale) + babel_numbers.get_group_symbol(locale),
            "tickprefix": symbol if before else "", "ticksuffix": "" if before else f"\u00a0{symbol}"}
