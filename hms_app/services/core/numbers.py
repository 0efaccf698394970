"""Numbers as people type them into forms: whole numbers and amounts of money.

Money is integer cents everywhere; ``format_money`` is how the UI shows it.
"""

from __future__ import annotations

from hms_app.services.core.errors import ValidationError


def parse_money(value: object, label: str) -> int:
    """A non-negative amount typed as ``120`` or ``120.50`` into integer cents."""
    text = str(value or "").strip().replace(",", "")
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


def format_money(cents: int) -> str:
    return f"{cents / 100:,.2f}"
