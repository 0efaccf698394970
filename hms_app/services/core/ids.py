"""Record ids as clients send them: any JSON value, of which only a whole number a row could have is an id."""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import Session

T = TypeVar("T")
MAX_ID = 2**31 - 1
"""The largest id a row can have: every id column is an INTEGER, 32 bits on PostgreSQL, which
refuses a larger number in a query outright instead of finding no row."""


def parse_id(value: object) -> int | None:
    """The id in ``value`` (an int, or a string of ASCII digits), or None.

    Floats and booleans are refused rather than rounded to some other row's id, and numbers
    no id column can hold never reach the database, which would fail on them.
    """
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def get_by_id(session: Session, model: type[T], value: object) -> T | None:
    """The row of ``model`` whose id a client sent, or None when there is none or ``value`` is no id."""
    key = parse_id(value)
    return None if key is None else session.get(model, key)
