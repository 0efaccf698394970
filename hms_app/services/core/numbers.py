"""Numbers as people type them into forms and read them: whole numbers and amounts of money.

Money is integer cents of ``settings.CURRENCY`` everywhere; ``format_money`` is how every page,
PDF, e-mail and chart shows it, and ``format_number`` every other number, both in
``settings.LOCALE``.
"""

from __future__ import annotations

from decimal import Decimal

from babel import numbers as babel_numbers

from hms_app import settings
from hms_app.services.core.errors import ValidationError


def _plain_amount(value: object) -> str:
    """An amount as typed or as ``format_money`` wrote it, reduced to ``1234.50``.

    The currency's symbol or code and spaces go. The decimal mark is the locale's or ``.``, followed by
    one or two final digits; any other mark must be the locale's group mark before three digits. So
    ``£1,234.50``, ``120.50`` and (in de-DE) ``1.234,50 €`` read, and ``1.234`` or ``12,50`` in en-GB,
    which could mean two things, are refused rather than guessed.
    """
    text = str(value or "").strip()
    for mark in (babel_numbers.get_currency_symbol(settings.CURRENCY, locale=settings.LOCALE), settings.CURRENCY):
        text = text.replace(mark, "")
    text = "".join(text.split())
    decimal_marks = {".", babel_numbers.get_decimal_symbol(settings.LOCALE)}
    group = babel_numbers.get_group_symbol(settings.LOCALE)
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
        whole, _, fraction = text.partition(".")
        if not whole.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 2)):
            raise ValueError
        cents = int(whole) * 100 + int((fraction or "0").ljust(2, "0"))
    except ValueError:
        raise ValidationError(f"Enter the {label} as an amount like 120 or 120.50.") from None
    if cents > 100_000_000:
        raise ValidationError(f"The {label} is too large.")
    return cents


def parse_int(value: object, label: str, *, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(f"Enter the {label} as a whole number.") from None
    if not low <= number <= high:
        raise ValidationError(f"The {label} must be between {low} and {high}.")
    return number


def _amount(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def format_money(cents: int) -> str:
    """Integer cents in the hospital's currency and locale: ``£1,234.50`` (en-GB), ``1.234,50 £`` (de-DE).

    A refund or a credit reads with a minus sign (``−£5.00``), not a hyphen.
    """
    text = babel_numbers.format_currency(_amount(abs(cents)), settings.CURRENCY, locale=settings.LOCALE)
    return f"−{text}" if cents < 0 else text


def format_number(value: float | int, *, decimals: int = 0) -> str:
    """A count or a measure with the locale's grouping and decimal mark: ``12,345`` · ``12.345``."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=settings.LOCALE)


def format_percent(part: float, whole: float) -> str:
    """``part`` of ``whole`` as a whole percentage in the locale (``42%``, ``42 %``); "–" when ``whole`` is 0."""
    return babel_numbers.format_percent(part / whole, locale=settings.LOCALE) if whole else "–"


def money_axis() -> dict[str, str]:
    """Plotly layout settings that make a chart's money axis read like ``format_money``: the locale's
    decimal and group marks and the currency's symbol on the side the locale writes it."""
    symbol = babel_numbers.get_currency_symbol(settings.CURRENCY, locale=settings.LOCALE)
    sample = babel_numbers.format_currency(Decimal(1), settings.CURRENCY, locale=settings.LOCALE)
    before = sample.startswith(symbol)
    return {"separators": babel_numbers.get_decimal_symbol(settings.LOCALE) + babel_numbers.get_group_symbol(settings.LOCALE),
            "tickprefix": symbol if before else "", "ticksuffix": "" if before else f"\u00a0{symbol}"}
